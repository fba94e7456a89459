import { AppError } from '@steem-bot/config';

/** A JSON value: what the bot's state holds (declare object shapes with `type`, not `interface`). */
export type Json = null | boolean | number | string | readonly Json[] | { readonly [key: string]: Json };

/** A dead-lettered op: its handler failed every try. */
export interface DeadLetter {
  id: number;
  position: number;
  name: string;
  payload: Record<string, unknown>;
  tid: string;
  error: string;
  attempts: number;
  created_at: number;
  /** dead: waiting for an operator; replay: asked to run again; replayed: it then succeeded. */
  state: 'dead' | 'replay' | 'replayed';
  replayed_at: number | null;
}

export type NewDeadLetter = Pick<DeadLetter, 'position' | 'name' | 'payload' | 'tid' | 'error' | 'attempts'>;

/**
 * The bot's own state (`ctx.kv` in handlers and `setup`): JSON values by key, in the bot's store
 * (its SQLite file, or PostgreSQL rows of its own). No tables, no migrations. Every call is
 * atomic; `update` and `updateMany` are read-modify-write under a lock (concurrent handlers and
 * instances never lose an update). Side effects run at least once: make a write idempotent by
 * the op's position (keep the last position counted with the counts, as the digest does).
 */
export interface BotState {
  /** The value at `key`, or undefined. */
  get<T extends Json = Json>(key: string): Promise<T | undefined>;
  set(key: string, value: Json): Promise<void>;
  /** Remove `key`; true if it was there. */
  delete(key: string): Promise<boolean>;
  /**
   * Atomically replace the value at `key` by `fn(current)` (undefined removes it); resolves to
   * the new value. `fn` is synchronous and should only compute.
   */
  update<T extends Json = Json>(key: string, fn: (current: T | undefined) => T | undefined): Promise<T | undefined>;
  /**
   * Atomically read `keys` and apply `fn`'s changes: a key it returns is written (undefined
   * removes it), a key it leaves out is unchanged. Resolves to the values after the change.
   */
  updateMany<K extends string>(
    keys: readonly K[],
    fn: (current: Partial<Record<K, Json>>) => Partial<Record<K, Json | undefined>>,
  ): Promise<Partial<Record<K, Json>>>;
  /** Remove the keys starting with `prefix` last written more than `olderThanMs` ago; resolves to how many. */
  prune(prefix: string, olderThanMs: number): Promise<number>;
}

/**
 * A bot's store: its checkpoint, its dead letters and its own state (`BotState`). SQLite
 * (`DATA_DIR/bot-<name>.sqlite`) by default; with STORE=postgres, rows of its own in the shared
 * `bot_*` tables of DATABASE_SCHEMA, so several bots, on several hosts, share one database.
 */
export interface BotStore extends BotState {
  /** Position of the last op fully handled (or dead-lettered), or null on the first start. */
  checkpoint(): Promise<number | null>;
  /** Move the checkpoint forward (never back). */
  saveCheckpoint(position: number): Promise<void>;
  addDeadLetter(letter: NewDeadLetter): Promise<number>;
  deadLetters(state?: DeadLetter['state']): Promise<DeadLetter[]>;
  deadLetter(id: number): Promise<DeadLetter | undefined>;
  /** Ask the running bot (or the next start) to run a dead letter's handler again. */
  requestReplay(id: number): Promise<boolean>;
  /** Delete a dead letter waiting for an operator (state dead); returns it, or undefined if there is none. */
  discardDeadLetter(id: number): Promise<DeadLetter | undefined>;
  replaySucceeded(id: number): Promise<void>;
  replayFailed(id: number, error: string, attempts: number): Promise<void>;
  close(): Promise<void>;
}

/** Only the state part of a store: what handlers get as `ctx.kv`. */
export function stateOf(store: BotState): BotState {
  return {
    get: (key) => store.get(key),
    set: (key, value) => store.set(key, value),
    delete: (key) => store.delete(key),
    update: (key, fn) => store.update(key, fn),
    updateMany: (keys, fn) => store.updateMany(keys, fn),
    prune: (prefix, olderThanMs) => store.prune(prefix, olderThanMs),
  };
}

/** `update` through `updateMany`. */
export async function updateOne<T extends Json>(
  state: Pick<BotState, 'updateMany'>,
  key: string,
  fn: (current: T | undefined) => T | undefined,
): Promise<T | undefined> {
  const after = await state.updateMany([key], (current) => ({ [key]: fn(current[key] as T | undefined) }));
  return after[key] as T | undefined;
}

/**
 * What an `updateMany` function asks for, checked: the values to write (as JSON text), the keys to
 * remove, and the values after. `fn` gets its own copy of `current`.
 */
export function planUpdate<K extends string>(
  keys: readonly K[],
  current: Partial<Record<K, Json>>,
  fn: (current: Partial<Record<K, Json>>) => Partial<Record<K, Json | undefined>>,
): { writes: Array<[K, string]>; removes: K[]; after: Partial<Record<K, Json>> } {
  const plan = { writes: [] as Array<[K, string]>, removes: [] as K[], after: { ...current } };
  for (const [key, value] of Object.entries(fn(structuredClone(current))) as Array<[K, Json | undefined]>) {
    if (!keys.includes(key)) throw new AppError('ERR_BOT_STATE', `a state update wrote key ${key}, which it did not name`);
    if (value === undefined) {
      plan.removes.push(key);
      delete plan.after[key];
    } else {
      const text = toJson(key, value);
      plan.writes.push([key, text]);
      plan.after[key] = JSON.parse(text) as Json;
    }
  }
  return plan;
}

/** A state key: a non-empty string of at most 512 characters. */
export function checkKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0 || key.length > 512)
    throw new AppError('ERR_BOT_STATE', `a state key is a string of 1 to 512 characters, not ${JSON.stringify(key)?.slice(0, 40)}`);
}

/** The JSON text of a state value; refuses what JSON cannot carry (undefined, functions, cycles). */
export function toJson(key: string, value: unknown): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new AppError('ERR_BOT_STATE', `state ${key}: not JSON (${(err as Error).message})`);
  }
  if (text === undefined) throw new AppError('ERR_BOT_STATE', `state ${key}: ${typeof value} is not a JSON value`);
  return text;
}
