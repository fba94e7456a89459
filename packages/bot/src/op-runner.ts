import { setTimeout as delay } from 'node:timers/promises';

import { backoffDelay } from '@steem-bot/bus';
import { AppError, type Logger, withTid } from '@steem-bot/config';

import type { CheckpointWriter } from './checkpoint';
import { withDeadline } from './deadline';
import { describe } from './describe';
import { Dispatcher } from './dispatcher';
import type { BotStore } from './store';

/**
 * The bus is down (a broker unreachable too), the receiver restarting, or the bot's own store
 * (PostgreSQL) unreachable: not the op's fault, so such failures never dead-letter an op; the bot
 * keeps retrying at the longest delay.
 */
export const TRANSIENT = new Set([
  'ERR_BUS_TIMEOUT',
  'ERR_BUS_NO_HANDLER',
  'ERR_BUS_CLOSED',
  'ERR_BUS_UNAVAILABLE',
  'ERR_BOT_STORE_UNAVAILABLE',
]);

/** The bot is stopping: a try waiting for its next attempt gives up without counting as a failure. */
export class Stopped extends Error {}

/** What one try of a handler is told. */
export interface TryInfo {
  name: string;
  position: number;
  tid: string;
  attempt: number;
  log: Logger;
  signal: AbortSignal;
}

export interface OpRunnerOptions {
  /** The handler of each op name the bot handles. */
  handlers: Readonly<Record<string, ((op: unknown, ctx: never) => unknown) | undefined>>;
  /** Builds the context a handler gets for one try. */
  context(info: TryInfo): unknown;
  filter?: ((name: never, op: Record<string, unknown>) => boolean) | undefined;
  concurrency?: { limit: number; key: (name: never, op: Record<string, unknown>) => string } | undefined;
  retry: { attempts: number; baseMs: number; maxMs: number };
  timeoutMs: number;
  store: BotStore;
  /** Where the contiguous prefix of finished ops is checkpointed. */
  checkpoints: CheckpointWriter;
  logger: Logger;
}

/**
 * Ops in, handler tries out: filter and concurrency key, retries with backoff and a deadline per
 * try, dead letters after the last try, and the checkpoint of the contiguous prefix of finished ops.
 */
export class OpRunner {
  private readonly stopping = new AbortController();
  private readonly dispatcher: Dispatcher;

  constructor(private readonly o: OpRunnerOptions) {
    this.dispatcher = new Dispatcher(o.concurrency?.limit ?? 1, (position) => o.checkpoints.save(position));
  }

  /** Hand an op in (in position order); resolves once it is queued. */
  submit(name: string, payload: Record<string, unknown>, position: number, tid: string): Promise<void> {
    const { o } = this;
    let wanted = o.handlers[name] !== undefined;
    let key: string | undefined;
    let threw = false;
    try {
      if (wanted) wanted = o.filter?.(name as never, payload) ?? true;
      if (wanted && o.concurrency) key = o.concurrency.key(name as never, payload);
    } catch {
      // Retried like a failing handler. Without its key the op runs outside any key's order.
      threw = true;
      wanted = true;
    }
    return this.dispatcher.submit(position, key, async () => {
      if (!wanted) return true;
      try {
        const failure = await this.run(name, payload, position, tid, threw);
        if (failure) {
          const letter = { position, name, payload, tid, error: describe(failure.error), attempts: failure.attempts };
          const id = await this.untilStored(() => o.store.addDeadLetter(letter), tid);
          withTid(tid, () =>
            o.logger.error(
              { err: failure.error, pos: position, deadLetter: id },
              `${name} at ${position} dead-lettered as #${id} after ${failure.attempts} tries; moving on`,
            ),
          );
        }
        return true;
      } catch (err) {
        if (err instanceof Stopped) return false;
        throw err;
      }
    });
  }

  /**
   * Run a handler with retries; resolves to the error of the last try, or undefined on success.
   * With `recheck` (the filter or the key threw when the op arrived, or a dead-letter replay),
   * every try first runs the filter and the key again: their failure is the try's failure.
   */
  readonly run = async (
    name: string,
    payload: Record<string, unknown>,
    position: number,
    tid: string,
    recheck: boolean,
  ): Promise<{ error: unknown; attempts: number } | undefined> => {
    const { o } = this;
    const handler = o.handlers[name] as ((op: unknown, ctx: unknown) => unknown) | undefined;
    if (!handler) return undefined;
    const log = o.logger.child({ op: name, pos: position });
    for (let attempt = 1, counted = 1; ; attempt++) {
      let stage = 'handler';
      try {
        if (recheck) {
          stage = 'filter';
          if (o.filter && !o.filter(name as never, payload)) return undefined;
          stage = 'concurrency.key';
          o.concurrency?.key(name as never, payload);
          stage = 'handler';
        }
        await withDeadline(
          (signal) => withTid(tid, () => handler(payload, o.context({ name, position, tid, attempt, log, signal }))),
          o.timeoutMs,
          (late) =>
            withTid(tid, () =>
              log.warn(
                { err: late?.error, attempt },
                `${name} handler try ${attempt}, abandoned after its timeout, ${late ? 'failed' : 'succeeded'} late`,
              ),
            ),
        );
        return undefined;
      } catch (err) {
        if (err instanceof Stopped || this.stopping.signal.aborted) throw new Stopped();
        const transient = err instanceof AppError && TRANSIENT.has(err.code);
        if (!transient && counted >= o.retry.attempts) return { error: err, attempts: attempt };
        if (!transient) counted++;
        const wait = backoffDelay(transient ? 30 : counted - 1, o.retry.baseMs, o.retry.maxMs);
        withTid(tid, () =>
          log.warn(
            { err, attempt },
            `${name} ${stage} failed (try ${attempt}${transient ? ', bus unavailable' : `/${o.retry.attempts}`}); retrying in ${wait} ms`,
          ),
        );
        // Rejects at once when the bot stops, so a handler waiting for its next try does not hold up the drain.
        await delay(wait, undefined, { signal: this.stopping.signal }).catch(() => Promise.reject(new Stopped()));
      }
    }
  };

  /**
   * Write to the store, trying again (at the longest delay) while it fails: a dead letter that
   * could not be written keeps its position open, so the checkpoint waits for it.
   */
  private async untilStored<T>(write: () => Promise<T>, tid: string): Promise<T> {
    for (;;) {
      try {
        return await write();
      } catch (err) {
        if (this.stopping.signal.aborted) throw new Stopped();
        const wait = this.o.retry.maxMs;
        withTid(tid, () => this.o.logger.warn({ err }, `dead letter not written; trying again in ${wait} ms`));
        await delay(wait, undefined, { signal: this.stopping.signal }).catch(() => Promise.reject(new Stopped()));
      }
    }
  }

  /** Stop retrying, wait for the handlers in flight, and write the last checkpoint. */
  async stop(): Promise<void> {
    this.stopping.abort();
    await this.dispatcher.idle();
    await this.o.checkpoints.flush();
  }
}
