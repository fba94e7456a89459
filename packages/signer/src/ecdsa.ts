import { createECDH, createHash, randomBytes } from 'node:crypto';

// secp256k1's group order.
const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const HALF_N = N >> 1n;

const toBig = (b: Buffer): bigint => BigInt(`0x${b.toString('hex') || '0'}`);
const to32 = (n: bigint): Buffer => Buffer.from(n.toString(16).padStart(64, '0'), 'hex');

function modPow(base: bigint, exp: bigint, mod: bigint): bigint {
  let result = 1n;
  let b = base % mod;
  for (let e = exp; e > 0n; e >>= 1n) {
    if (e & 1n) result = (result * b) % mod;
    b = (b * b) % mod;
  }
  return result;
}

/** The point k·G, uncompressed, computed natively (OpenSSL through ECDH). */
function multiplyG(k: Buffer): Buffer {
  const ecdh = createECDH('secp256k1');
  ecdh.setPrivateKey(k);
  return ecdh.getPublicKey();
}

/** steemd's is_canonical: neither r nor s has its top bit set or a needless leading zero byte. */
function isCanonical(r: Buffer, s: Buffer): boolean {
  const ok = (x: Buffer): boolean => !((x[0] as number) & 0x80) && !(x[0] === 0 && !((x[1] as number) & 0x80));
  return ok(r) && ok(s);
}

/**
 * A compact recoverable secp256k1 signature of a sha256 digest, in the form steemd expects
 * (65 bytes: 27 + 4 + recovery id, r, s; canonical, low S). Computed with Node's native EC point
 * multiplication and BigInt arithmetic: steem-js's pure-JS ECDSA takes seconds per signature
 * in a busy test runner. The nonce comes from the CSPRNG, a fresh one per try.
 */
export function signDigest(digest: Buffer, privateKey: Buffer): Buffer {
  const d = toBig(privateKey);
  const z = toBig(digest);
  for (;;) {
    const kBytes = randomBytes(32);
    const k = toBig(kBytes);
    if (k === 0n || k >= N) continue;
    const R = multiplyG(kBytes);
    const rx = toBig(R.subarray(1, 33));
    const r = rx % N;
    if (r === 0n || rx >= N) continue; // rx >= N would need recovery ids 2-3, which steemd does not take
    let s = (modPow(k, N - 2n, N) * (z + r * d)) % N;
    if (s === 0n) continue;
    let recovery = (R[64] as number) & 1;
    if (s > HALF_N) {
      s = N - s;
      recovery ^= 1;
    }
    const rb = to32(r);
    const sb = to32(s);
    if (!isCanonical(rb, sb)) continue;
    return Buffer.concat([Buffer.from([27 + 4 + recovery]), rb, sb]);
  }
}

/** sha256 of the parts. */
export const sha256 = (...parts: Buffer[]): Buffer => createHash('sha256').update(Buffer.concat(parts)).digest();
