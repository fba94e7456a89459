import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

import { type AppContext, backoffDelay, type Bus, runApp, type RunningApp, type TransportSubscription } from '@steem-bot/bus';
import {
  AppError,
  type Catalogue,
  catalogue,
  type ChainOpName,
  checkVariables,
  type Config,
  configError,
  type EmailRequest,
  type EventPayload,
  type Logger,
  readEnvironment,
  serializeError,
  type TaskName,
  type TaskPayload,
  type TaskReply,
  type VariableDefs,
  type VariableValues,
  withTid,
} from '@steem-bot/config';
import type { Database } from '@steem-bot/store';

import { Chain, type KeyRole } from './chain';
import { withDeadline } from './deadline';
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
  /**
   * Aborted when this try outlives BOT_HANDLER_TIMEOUT_MS (or the bot's `handlerTimeoutMs`): the
   * try has then failed and will be retried. A promise cannot be cancelled, so pass the signal on
   * (`fetch(url, { signal })`) or check it, and stop: a handler that ignores it runs on, unawaited,
   * possibly next to its own retry.
   */
  signal: AbortSignal;
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

/** What a bot's `setup` gets. */
export interface BotSetupContext<V extends VariableDefs = VariableDefs> {
  db: Database;
  config: Config<'chain' | 'bot'>;
  log: Logger;
  /** The bot's own variables, parsed (see `variables`). */
  vars: VariableValues<V>;
}

export interface BotDefinition<V extends VariableDefs = VariableDefs> {
  /** App name: the PM2 app, the log prefix, `DATA_DIR/bot-<name>.sqlite`, and its tasks' first segment. */
  name: string;
  /** One handler per op type; the bot subscribes to exactly these. */
  on: OpHandlers;
  /** Tasks addressed to this bot (`<name>.<model>.<verb>`), e.g. sent by the clock. */
  tasks?: BotTaskHandlers;
  /**
   * Ops for which this returns false are skipped without calling a handler. If it (or
   * `concurrency.key`) throws, the op fails like a throwing handler: retried, then dead-lettered.
   */
  filter?: (name: OpName, op: Record<string, unknown>) => boolean;
  /** Run up to `limit` handlers at once, in order per `key` (e.g. per author). Default: one at a time, in chain order. */
  concurrency?: { limit: number; key: (name: OpName, op: Record<string, unknown>) => string };
  /** Keys the bot's chain actions sign with; checked at start-up. */
  keys?: KeyRole[];
  /** Overrides of BOT_RETRY_ATTEMPTS / BOT_RETRY_BASE_MS / BOT_RETRY_MAX_MS. */
  retry?: { attempts?: number; baseMs?: number; maxMs?: number };
  /** Overrides BOT_HANDLER_TIMEOUT_MS: the longest try of one handler. */
  handlerTimeoutMs?: number;
  /**
   * The bot's own environment variables, declared with `variable(doc, default, schema)` from
   * `@steem-bot/config` and read (from `.env` and the environment) at start. An invalid value
   * stops the bot with the config error list (exit 78); a required one (default `undefined`)
   * that is unset leaves the bot idle: online, handling nothing, with one log line saying what to set.
   */
  variables?: V;
  /** Runs once at start, before the subscription: create the bot's tables here. */
  setup?(ctx: BotSetupContext<V>): void | Promise<void>;
}

/** A started bot. */
export interface RunningBot extends RunningApp {
  /** Position of the last op fully handled (the checkpoint). */
  checkpoint(): number | null;
  /** The subscription to the broadcaster. */
  readonly subscription: TransportSubscription;
  readonly store: BotStore;
  /** True when the bot started idle for want of its required variables (it handles nothing). */
  readonly idle: boolean;
}

export interface Bot {
  readonly definition: BotDefinition;
  /**
   * Start with a given config, logger and bus (tests; `run` uses the real ones). `env` holds the
   * bot's own variables; by default they are read from `.env` and `process.env`.
   */
  start(ctx: AppContext<'chain' | 'bot'>, env?: Record<string, string | undefined>): Promise<RunningBot>;
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
export function createBot<V extends VariableDefs = VariableDefs>(definition: BotDefinition<V>): Bot {
  if (!/^[a-z][a-z0-9-]{0,31}$/.test(definition.name)) {
    throw new AppError('ERR_BOT_INVALID', `bot name "${definition.name}" must be lower-case letters, digits and dashes`);
  }
  for (const task of Object.keys(definition.tasks ?? {})) {
    if (!task.startsWith(`${definition.name}.`))
      throw new AppError('ERR_BOT_INVALID', `task ${task} is not addressed to ${definition.name}`);
  }
  return {
    definition,
    start: (ctx, env) => startBot(definition, ctx, env ?? readEnvironment({ app: definition.name })),
    run: () =>
      void runApp({
        app: definition.name,
        sections: ['chain', 'bot'],
        drainMs: 8_000,
        start: (ctx) => startBot(definition, ctx, readEnvironment({ app: definition.name })),
      }),
  };
}

async function startBot<V extends VariableDefs>(
  def: BotDefinition<V>,
  { config, logger, bus }: AppContext<'chain' | 'bot'>,
  env: Record<string, string | undefined>,
): Promise<RunningBot> {
  const { values: vars, problems, missing } = checkVariables(def.variables ?? ({} as V), env);
  if (problems.length > 0) throw configError(problems);
  const store = new BotStore(join(config.DATA_DIR, `bot-${def.name}.sqlite`));
  if (missing.length > 0) return idleBot(def, store, logger, missing);
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
    await def.setup?.({ db: store.db, config, log: logger, vars });
  } catch (err) {
    store.close();
    throw err;
  }

  const retry = {
    attempts: def.retry?.attempts ?? config.BOT_RETRY_ATTEMPTS,
    baseMs: def.retry?.baseMs ?? config.BOT_RETRY_BASE_MS,
    maxMs: def.retry?.maxMs ?? config.BOT_RETRY_MAX_MS,
  };
  const timeoutMs = def.handlerTimeoutMs ?? config.BOT_HANDLER_TIMEOUT_MS;
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

  /**
   * Run a handler with retries; resolves to the error of the last try, or undefined on success.
   * With `recheck` (the filter or the key threw when the op arrived, or a dead-letter replay),
   * every try first runs the filter and the key again: their failure is the try's failure.
   */
  const runHandler = async (
    name: OpName,
    payload: Record<string, unknown>,
    position: number,
    tid: string,
    recheck: boolean,
  ): Promise<{ error: unknown; attempts: number } | undefined> => {
    const handler = def.on[name] as ((op: unknown, ctx: OpContext) => unknown) | undefined;
    if (!handler) return undefined;
    const log = logger.child({ op: name, pos: position });
    for (let attempt = 1, counted = 1; ; attempt++) {
      let stage = 'handler';
      try {
        if (recheck) {
          stage = 'filter';
          if (def.filter && !def.filter(name, payload)) return undefined;
          stage = 'concurrency.key';
          def.concurrency?.key(name, payload);
          stage = 'handler';
        }
        const mail = mailFor(`${def.name}:${position}`);
        await withDeadline(
          (signal) => withTid(tid, () => handler(payload, { name, position, tid, attempt, log, chain, mail, db: store.db, signal })),
          timeoutMs,
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
        if (err instanceof Stopped || stopping.signal.aborted) throw new Stopped();
        const transient = err instanceof AppError && TRANSIENT.has(err.code);
        if (!transient && counted >= retry.attempts) return { error: err, attempts: attempt };
        if (!transient) counted++;
        const delay = backoffDelay(transient ? 30 : counted - 1, retry.baseMs, retry.maxMs);
        withTid(tid, () =>
          log.warn(
            { err, attempt },
            `${name} ${stage} failed (try ${attempt}${transient ? ', bus unavailable' : `/${retry.attempts}`}); retrying in ${delay} ms`,
          ),
        );
        await sleep(delay);
      }
    }
  };

  const dispatcher = new Dispatcher(def.concurrency?.limit ?? 1, (position) => store.saveCheckpoint(position));

  const onOp = (name: OpName, payload: Record<string, unknown>, position: number, tid: string): Promise<void> => {
    let wanted = def.on[name] !== undefined;
    let key: string | undefined;
    let threw = false;
    try {
      if (wanted) wanted = def.filter?.(name, payload) ?? true;
      if (wanted && def.concurrency) key = def.concurrency.key(name, payload);
    } catch {
      // Retried like a failing handler. Without its key the op runs outside any key's order.
      threw = true;
      wanted = true;
    }
    return dispatcher.submit(position, key, async () => {
      if (!wanted) return true;
      try {
        const failure = await runHandler(name, payload, position, tid, threw);
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
  }
  // The operator's Replay and Discard (the console) arrive as tasks, for bots the catalogue lists them for.
  const deadLetterTasks = registerDeadLetterTasks(def.name, bus as Bus<Catalogue>, store, logger, () => void replayDeadLetters());
  if (def.tasks || deadLetterTasks) await bus.serve();

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
        const failure = await runHandler(letter.name as OpName, letter.payload, letter.position, letter.tid, true);
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
    idle: false,
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

/**
 * A bot whose required variables are unset: online (PM2 sees it ready, not errored), handling
 * nothing, having said once what to set.
 */
function idleBot(def: BotDefinition, store: BotStore, logger: Logger, missing: string[]): RunningBot {
  const names = missing.length === 1 ? `${missing[0]} is` : `${missing.slice(0, -1).join(', ')} and ${missing.at(-1)} are`;
  const docs = missing.map((name) => `${name}: ${def.variables?.[name]?.doc ?? ''}`).join(' ');
  logger.warn(`idle, handling nothing, until ${names} set in .env or the environment (then: npx pm2 restart ${def.name}). ${docs}`);
  // Nothing else holds the event loop open: no subscription, no tasks.
  const keepAlive = setInterval(() => undefined, 1 << 30);
  return {
    subscription: { position: null, ready: Promise.resolve(), close: () => undefined },
    store,
    idle: true,
    checkpoint: () => store.checkpoint(),
    stop() {
      clearInterval(keepAlive);
      store.close();
      return Promise.resolve();
    },
  };
}

/** Handle `<bot>.deadletter.replay` and `.discard` when the catalogue has them; false when it does not. */
function registerDeadLetterTasks(name: string, bus: Bus<Catalogue>, store: BotStore, logger: Logger, replayNow: () => void): boolean {
  const replay = `${name}.deadletter.replay` as 'watcher.deadletter.replay';
  const discard = `${name}.deadletter.discard` as 'watcher.deadletter.discard';
  if (!(replay in catalogue.tasks) || !(discard in catalogue.tasks)) return false;
  bus.handle(replay, ({ id }) => {
    const letter = store.deadLetter(id);
    if (!letter) throw new AppError('ERR_BOT_NOT_FOUND', `bot ${name} has no dead letter #${id}`);
    if (!store.requestReplay(id)) return { id, state: letter.state };
    logger.info({ deadLetter: id }, `dead letter #${id} (${letter.name} at ${letter.position}) queued for replay`);
    replayNow();
    return { id, state: 'replay' as const };
  });
  bus.handle(discard, ({ id }) => {
    const letter = store.discardDeadLetter(id);
    if (!letter) throw new AppError('ERR_BOT_NOT_FOUND', `bot ${name} has no dead letter #${id} waiting (dead)`);
    withTid(letter.tid, () =>
      logger.warn(
        { deadLetter: id, pos: letter.position, op: letter.name, payload: letter.payload },
        `dead letter #${id} discarded by the operator`,
      ),
    );
    return { id, state: 'discarded' as const };
  });
  return true;
}

function describe(err: unknown): string {
  const e = serializeError(err);
  return `${e.code}: ${e.message}`;
}
