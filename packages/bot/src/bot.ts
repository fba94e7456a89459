import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

import { type AppContext, backoffDelay, type Bus, runApp, type RunningApp, type TransportSubscription } from '@steem-bot/bus';
import {
  AppError,
  type Catalogue,
  type ChainOpName,
  type Config,
  type EmailRequest,
  type EventPayload,
  type Logger,
  serializeError,
  type TaskName,
  type TaskPayload,
  type TaskReply,
  withTid,
} from '@steem-bot/config';
import type { Database } from '@steem-bot/store';

import { Chain, type KeyRole } from './chain';
import { Dispatcher } from './dispatcher';
import { BotStore } from './store';

/** The events a bot can handle: every chain op, and the broadcaster's block events. */
export type OpName = ChainOpName | 'block.applied' | 'block.reverted';

/** Queue an email through the mailer; a replayed op never sends a second one. */
export interface Mail {
  send(request: EmailRequest): Promise<{ id: string; status: string }>;
}

/** What a handler gets besides the op. */
export interface OpContext<N extends OpName = OpName> {
  name: N;
  /** The op's stable position (block * 1,000,000 + index in block): the dedupe key of its side effects. */
  position: number;
  tid: string;
  /** 1 on the first try, then 2, 3, ... on retries (and on a dead-letter replay). */
  attempt: number;
  /** A child logger: every line carries the bot, the op and its TID. */
  log: Logger;
  chain: Chain;
  mail: Mail;
  /** The bot's own SQLite file, for state it keeps (make writes idempotent by position). */
  db: Database;
}

export type OpHandlers = { [N in OpName]?: (op: EventPayload<Catalogue, N>, ctx: OpContext<N>) => unknown };

export interface BotTaskContext {
  tid: string;
  /** The sender's idempotency key (the clock's is one per tick): the dedupe key of the task's side effects. */
  key: string | undefined;
  log: Logger;
  chain: Chain;
  mail: Mail;
  db: Database;
}
export type BotTaskHandlers = {
  [N in TaskName<Catalogue>]?: (
    payload: TaskPayload<Catalogue, N>,
    ctx: BotTaskContext,
  ) => TaskReply<Catalogue, N> | Promise<TaskReply<Catalogue, N>>;
};

export interface BotDefinition {
  /** App name: the PM2 app, the log prefix, `DATA_DIR/bot-<name>.sqlite`, and its tasks' first segment. */
  name: string;
  /** One handler per op type; the bot subscribes to exactly these. */
  on: OpHandlers;
  /** Tasks addressed to this bot (`<name>.<model>.<verb>`), e.g. sent by the clock. */
  tasks?: BotTaskHandlers;
  /** Ops for which this returns false are skipped without calling a handler. */
  filter?: (name: OpName, op: Record<string, unknown>) => boolean;
  /** Run up to `limit` handlers at once, in order per `key` (e.g. per author). Default: one at a time, in chain order. */
  concurrency?: { limit: number; key: (name: OpName, op: Record<string, unknown>) => string };
  /** Keys the bot's chain actions sign with; checked at start-up. */
  keys?: KeyRole[];
  /** Overrides of BOT_RETRY_ATTEMPTS / BOT_RETRY_BASE_MS / BOT_RETRY_MAX_MS. */
  retry?: { attempts?: number; baseMs?: number; maxMs?: number };
  /** Runs once at start, before the subscription: create the bot's tables here. */
  setup?: (ctx: { db: Database; config: Config<'chain' | 'bot'>; log: Logger }) => void | Promise<void>;
}

/** A started bot. */
export interface RunningBot extends RunningApp {
  /** Position of the last op fully handled (the checkpoint). */
  checkpoint(): number | null;
  /** The subscription to the broadcaster. */
  readonly subscription: TransportSubscription;
  readonly store: BotStore;
}

export interface Bot {
  readonly definition: BotDefinition;
  /** Start with a given config, logger and bus (tests; `run` uses the real ones). */
  start(ctx: AppContext<'chain' | 'bot'>): Promise<RunningBot>;
  /** The whole of a bot's `main.ts`: run it as a PM2 app. */
  run(): void;
}

// The bus is down or the receiver restarting: not the op's fault, so such failures never
// dead-letter an op; the bot keeps retrying at the longest delay.
const TRANSIENT = new Set(['ERR_BUS_TIMEOUT', 'ERR_BUS_NO_HANDLER', 'ERR_BUS_CLOSED']);
const REPLAY_POLL_MS = 1_000;
const SOURCE = 'broadcaster';

class Stopped extends Error {}

/** Define a bot: typed handlers per op type; see the package README for the guarantees. */
export function createBot(definition: BotDefinition): Bot {
  if (!/^[a-z][a-z0-9-]{0,31}$/.test(definition.name)) {
    throw new AppError('ERR_BOT_INVALID', `bot name "${definition.name}" must be lower-case letters, digits and dashes`);
  }
  for (const task of Object.keys(definition.tasks ?? {})) {
    if (!task.startsWith(`${definition.name}.`))
      throw new AppError('ERR_BOT_INVALID', `task ${task} is not addressed to ${definition.name}`);
  }
  return {
    definition,
    start: (ctx) => startBot(definition, ctx),
    run: () => void runApp({ app: definition.name, sections: ['chain', 'bot'], drainMs: 8_000, start: (ctx) => startBot(definition, ctx) }),
  };
}

async function startBot(def: BotDefinition, { config, logger, bus }: AppContext<'chain' | 'bot'>): Promise<RunningBot> {
  const store = new BotStore(join(config.DATA_DIR, `bot-${def.name}.sqlite`));
  const chain = await Chain.create({
    live: config.BOT_LIVE,
    account: config.STEEM_ACCOUNT,
    keys: { posting: config.STEEM_POSTING_KEY, active: config.STEEM_ACTIVE_KEY },
    needs: def.keys ?? [],
    intervalMs: config.BOT_CHAIN_INTERVAL_MS,
    nodes: config.STEEM_NODES,
    logger: logger.child({ component: 'chain' }),
  }).catch((err: unknown) => {
    store.close();
    throw err;
  });
  if (!config.BOT_LIVE && def.keys?.length) logger.warn('dry run: chain actions are logged, not broadcast (BOT_LIVE=1 to broadcast)');
  try {
    await def.setup?.({ db: store.db, config, log: logger });
  } catch (err) {
    store.close();
    throw err;
  }

  const retry = {
    attempts: def.retry?.attempts ?? config.BOT_RETRY_ATTEMPTS,
    baseMs: def.retry?.baseMs ?? config.BOT_RETRY_BASE_MS,
    maxMs: def.retry?.maxMs ?? config.BOT_RETRY_MAX_MS,
  };
  const stopping = new AbortController();
  // Rejects at once when the bot stops, so a handler waiting for its next try does not hold up the drain.
  const sleep = (ms: number): Promise<void> => delay(ms, undefined, { signal: stopping.signal }).catch(() => Promise.reject(new Stopped()));

  const mailFor = (keyPrefix: string): Mail => {
    let n = 0;
    return {
      send: (request) =>
        bus.send('mailer.email.send', request as TaskPayload<Catalogue, 'mailer.email.send'>, { idempotencyKey: `${keyPrefix}:${n++}` }),
    };
  };

  /** Run a handler with retries; resolves to the error of the last try, or undefined on success. */
  const runHandler = async (
    name: OpName,
    payload: Record<string, unknown>,
    position: number,
    tid: string,
  ): Promise<{ error: unknown; attempts: number } | undefined> => {
    const handler = def.on[name] as ((op: unknown, ctx: OpContext) => unknown) | undefined;
    if (!handler) return undefined;
    const log = logger.child({ op: name, pos: position });
    for (let attempt = 1, counted = 1; ; attempt++) {
      const ctx: OpContext = { name, position, tid, attempt, log, chain, mail: mailFor(`${def.name}:${position}`), db: store.db };
      try {
        await withTid(tid, () => handler(payload, ctx));
        return undefined;
      } catch (err) {
        if (err instanceof Stopped || stopping.signal.aborted) throw new Stopped();
        const transient = err instanceof AppError && TRANSIENT.has(err.code);
        if (!transient && counted >= retry.attempts) return { error: err, attempts: attempt };
        if (!transient) counted++;
        const delay = backoffDelay(transient ? 30 : counted - 1, retry.baseMs, retry.maxMs);
        withTid(tid, () =>
          log.warn(
            { err, attempt },
            `${name} handler failed (try ${attempt}${transient ? ', bus unavailable' : `/${retry.attempts}`}); retrying in ${delay} ms`,
          ),
        );
        await sleep(delay);
      }
    }
  };

  const dispatcher = new Dispatcher(def.concurrency?.limit ?? 1, (position) => store.saveCheckpoint(position));

  const onOp = (name: OpName, payload: Record<string, unknown>, position: number, tid: string): Promise<void> => {
    const wanted = def.on[name] !== undefined && (def.filter?.(name, payload) ?? true);
    const key = wanted && def.concurrency ? def.concurrency.key(name, payload) : undefined;
    return dispatcher.submit(position, key, async () => {
      if (!wanted) return true;
      try {
        const failure = await runHandler(name, payload, position, tid);
        if (failure) {
          const id = store.addDeadLetter({ position, name, payload, tid, error: describe(failure.error), attempts: failure.attempts });
          withTid(tid, () =>
            logger.error(
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
  };

  if (def.tasks) {
    const typedBus = bus as Bus<Catalogue>;
    for (const [task, handler] of Object.entries(def.tasks) as Array<[TaskName<Catalogue>, (p: unknown, c: BotTaskContext) => unknown]>) {
      typedBus.handle(
        task,
        (payload, ctx) =>
          handler(payload, {
            tid: ctx.tid,
            key: ctx.key,
            log: logger.child({ task }),
            chain,
            mail: mailFor(`${def.name}:task:${ctx.key ?? ctx.tid}`),
            db: store.db,
          }) as never,
      );
    }
    await bus.serve();
  }

  // block.applied is always subscribed: it moves the checkpoint on in blocks without wanted ops,
  // so a restart resumes close to the head.
  const names = new Set<OpName>([...(Object.keys(def.on) as OpName[]), 'block.applied']);
  const handlers = Object.fromEntries(
    [...names].map((name) => [
      name,
      (payload: Record<string, unknown>, ctx: { pos: number; tid: string }) => onOp(name, payload, ctx.pos, ctx.tid),
    ]),
  );
  const from = store.checkpoint();
  logger.info(from === null ? 'no checkpoint: starting with live ops' : `resuming after position ${from}`);
  const subscription = bus.subscribe(SOURCE, handlers, { from });

  const replayTimer = setInterval(() => void replayDeadLetters(), REPLAY_POLL_MS);
  let replaying = false;
  const replayDeadLetters = async (): Promise<void> => {
    if (replaying) return;
    replaying = true;
    try {
      for (const letter of store.deadLetters('replay')) {
        logger.info({ deadLetter: letter.id }, `replaying dead letter #${letter.id} (${letter.name} at ${letter.position})`);
        const failure = await runHandler(letter.name as OpName, letter.payload, letter.position, letter.tid);
        if (failure) store.replayFailed(letter.id, describe(failure.error), failure.attempts);
        else store.replaySucceeded(letter.id);
        logger.info(`dead letter #${letter.id} ${failure ? 'failed again' : 'replayed'}`);
      }
    } catch (err) {
      if (!(err instanceof Stopped)) logger.error({ err }, 'dead-letter replay failed');
    } finally {
      replaying = false;
    }
  };
  void replayDeadLetters();

  return {
    subscription,
    store,
    checkpoint: () => store.checkpoint(),
    async stop() {
      subscription.close();
      clearInterval(replayTimer);
      stopping.abort();
      await dispatcher.idle();
      store.close();
    },
  };
}

function describe(err: unknown): string {
  const e = serializeError(err);
  return `${e.code}: ${e.message}`;
}
