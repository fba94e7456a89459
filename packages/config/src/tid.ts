import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';

const storage = new AsyncLocalStorage<string>();

/** A fresh transaction id: 16 hex characters, short enough for every log line. */
export function newTid(): string {
  return randomBytes(8).toString('hex');
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
