import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';

const storage = new AsyncLocalStorage<string>();

// randomBytes per id costs a syscall-sized chunk of time; draw ids from a pool instead.
const POOL_IDS = 512;
let pool = Buffer.alloc(0);
let offset = 0;

/** A fresh transaction id: 16 hex characters, short enough for every log line. */
export function newTid(): string {
  if (offset >= pool.length) {
    pool = randomBytes(8 * POOL_IDS);
    offset = 0;
  }
  offset += 8;
  return pool.toString('hex', offset - 8, offset);
}

/** The TID of the message being handled, if any. */
export function currentTid(): string | undefined {
  return storage.getStore();
}

/**
 * Run `fn` with `tid` as the current TID: log lines written and messages sent inside it carry
 * that TID, which is how one TID follows a chain op -> bot reaction -> email through every log.
 */
export function withTid<T>(tid: string, fn: () => T): T {
  return storage.run(tid, fn);
}
