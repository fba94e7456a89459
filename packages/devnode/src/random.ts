import { createHash } from 'node:crypto';

/** A small seeded PRNG (mulberry32): the same seed gives the same chain on every run. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Hex digest of the parts, for deterministic ids. */
export function sha1(...parts: Array<string | number>): string {
  return createHash('sha1').update(parts.join(':')).digest('hex');
}

/** A block id: the number as 8 hex digits, then 32 more. */
export function blockId(num: number, salt: string): string {
  return num.toString(16).padStart(8, '0') + salt.slice(0, 32);
}
