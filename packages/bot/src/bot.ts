import { type AppContext, type Bus, runApp, type RunningApp, type TransportSubscription } from '@steem-bot/bus';
import {
  AppError,
  type Catalogue,
  catalogue,
  type CatalogueShape,
  type ChainOpName,
  checkVariables,
  type Config,
  configError,
  type EventPayload,
  extendCatalogue,
  type ExtendedCatalogue,
  type Logger,
  readEnvironment,
  type TaskDef,
  type VariableDefs,
  type VariableValues,
} from '@steem-bot/config';
import { becomeActive } from '@steem-bot/store';
import type { z } from 'zod';

import { type AccountNeed, accountRoles, type Chain, SignerLink } from './chain';
import { CheckpointWriter } from './checkpoint';
import { DeadLetterReplayer, type DeadLetterTasks, deadLetterTasks, registerDeadLetterTasks } from './dead-letters';
import { type Mail, mailFor } from './mail';
import { OpRunner, Stopped } from './op-runner';
import { openBotStore } from './open-store';
import { type BotState, type BotStore, stateOf } from './store';

/** The events a bot can handle: every chain op, and the broadcaster's block events. */
export type OpName = ChainOpName | 'block.applied' | 'block.reverted';

/** What a handler gets besides the op. `S` is what the bot's `setup` returned. */
export interface OpContext<N extends OpName = OpName, S = undefined> {
  name: N;
  /** The op's stable position (block * 1,000,000 + index in block): the dedupe key of its side effects. */
  position: number;
  tid: string;
  /** 1 on the first try, then 2, 3, ... on retries (and on a dead-letter replay). */
  attempt: number;
  /** A child logger: every line carries the bot, the op and its TID. */
  log: Logger;
  /** Chain actions through the signer; the n-th of a try has the key `<bot>:<position>:<n>`. */
  chain: Chain;
  mail: Mail;
  /** The bot's own state, kept in its store (make writes idempotent by position). */
  kv: BotState;
  /** What `setup` returned. */
  state: S;
  /**
   * Aborted when this try outlives BOT_HANDLER_TIMEOUT_MS (or the bot's `handlerTimeoutMs`): the
   * try has then failed and will be retried. A promise cannot be cancelled, so pass the signal on
   * (`fetch(url, { signal })`) or check it, and stop: a handler that ignores it runs on, unawaited,
   * possibly next to its own retry.
   */
  signal: AbortSignal;
}

export type OpHandlers<S = undefined> = {
  [N in OpName]?: (op: EventPayload<Catalogue, N>, ctx: OpContext<N, S>) => unknown;
};

export interface BotTaskContext<S = undefined> {
  tid: string;
  /** The sender's idempotency key (the clock's is one per tick): the dedupe key of the task's side effects. */
  key: string | undefined;
  log: Logger;
  chain: Chain;
  mail: Mail;
  /** The bot's own state, as in op handlers. */
  kv: BotState;
  state: S;
}
/** A bot's own tasks: name (`<bot>.<model>.<verb>`) -> payload and reply schemas, as in the catalogue. */
export type BotTasks = Readonly<Record<string, TaskDef>>;

/** One handler per task the bot declares: its payload parsed by the task's schema, its reply typed. */
export type BotTaskHandlers<S = undefined, T extends BotTasks = BotTasks> = {
  [N in keyof T & string]?: (
    payload: z.output<T[N]['payload']>,
    ctx: BotTaskContext<S>,
  ) => z.output<T[N]['reply']> | Promise<z.output<T[N]['reply']>>;
};

/**
 * The catalogue a bot's bus uses: the project's, plus the bot's own tasks and the SDK's
 * `<bot>.deadletter.replay|discard` (`bot.catalogue`).
 */
export type BotCatalogue<N extends string = string, T extends BotTasks = BotTasks> = ExtendedCatalogue<
  Catalogue,
  N,
  { tasks: DeadLetterTasks<N> & T }
>;

/** What a bot's `setup` gets. */
export interface BotSetupContext<V extends VariableDefs = VariableDefs> {
  /** The bot's own state, as in op handlers (e.g. to set initial values). */
  kv: BotState;
  config: Config<'chain' | 'bot' | 'store'>;
  log: Logger;
  /** The bot's own variables, parsed (see `variables`). */
  vars: VariableValues<V>;
}

export interface BotDefinition<
  V extends VariableDefs = VariableDefs,
  S = undefined,
  T extends BotTasks = Record<never, TaskDef>,
  N extends string = string,
> {
  /**
   * App name: the PM2 app, the log prefix, its store (`DATA_DIR/bot-<name>.sqlite`, or its rows in
   * PostgreSQL), its single-active-instance lock, and its tasks' first segment.
   */
  name: N;
  /**
   * The bot's own environment variables, declared with `variable(doc, default, schema)` from
   * `@steem-bot/config` and read (from `.env` and the environment) at start. An invalid value
   * stops the bot with the config error list (exit 78); a required one (default `undefined`)
   * that is unset leaves the bot idle: online, handling nothing, with one log line saying what to set.
   */
  variables?: V;
  /**
   * The accounts the bot acts for through `ctx.chain` (a name: its posting key; or `{account,
   * roles}`), or a function of its variables returning them. At start the bot asks the signer
   * and stops (ERR_BOT_KEY_MISSING, exit 78) if the signer holds no such key. The first is the
   * default `account` of the chain actions.
   */
  accounts?: readonly AccountNeed[] | ((vars: VariableValues<V>) => readonly AccountNeed[]);
  /**
   * Runs once at start, before the subscription. What it returns is `ctx.state` in every handler
   * (keep the bot's settings there, not in module variables); what it must remember across
   * restarts goes in `ctx.kv`.
   */
  setup?(ctx: BotSetupContext<V>): S | Promise<S>;
  /** One handler per op type; the bot subscribes to exactly these. */
  on: OpHandlers<S>;
  /**
   * The bot's own entries of the catalogue, declared here, not in `config`: `tasks` maps each
   * name (`<name>.<model>.<verb>`; another prefix is refused) to its payload and reply schemas,
   * each with a TSDoc line. The bot's bus validates what arrives against them; senders that do
   * not import the bot (the clock, the console) send them by name.
   */
  catalogue?: { readonly tasks: T };
  /** One handler per task of `catalogue.tasks` (e.g. sent by the clock). */
  tasks?: NoInfer<[keyof T] extends [never] ? Record<string, never> : BotTaskHandlers<S, T>>;
  /**
   * Ops for which this returns false are skipped without calling a handler. If it (or
   * `concurrency.key`) throws, the op fails like a throwing handler: retried, then dead-lettered.
   */
  filter?: (name: OpName, op: Record<string, unknown>) => boolean;
  /** Run up to `limit` handlers at once, in order per `key` (e.g. per author). Default: one at a time, in chain order. */
  concurrency?: { limit: number; key: (name: OpName, op: Record<string, unknown>) => string };
  /** Overrides of BOT_RETRY_ATTEMPTS / BOT_RETRY_BASE_MS / BOT_RETRY_MAX_MS. */
  retry?: { attempts?: number; baseMs?: number; maxMs?: number };
  /** Overrides BOT_HANDLER_TIMEOUT_MS: the longest try of one handler. */
  handlerTimeoutMs?: number;
  /** How long the start-up check of `accounts` waits for the signer to answer (default 60 s). */
  signerWaitMs?: number;
}

/** A started bot. */
export interface RunningBot extends RunningApp {
  /** Position of the last op fully handled, as last written to the store (the checkpoint). */
  checkpoint(): number | null;
  /** The subscription to the broadcaster. */
  readonly subscription: TransportSubscription;
  readonly store: BotStore;
  /** True when the bot started idle for want of its required variables (it handles nothing). */
  readonly idle: boolean;
}

export interface Bot<C extends CatalogueShape = CatalogueShape> {
  readonly definition: BotDefinition<VariableDefs, unknown, BotTasks>;
  /** The bot's catalogue (see `BotCatalogue`): what its bus is created with. */
  readonly catalogue: C;
  /**
   * Start with a given config, logger and bus (tests; `run` uses the real ones); the bus is
   * created with `catalogue`. `env` holds the bot's own variables; by default they are read
   * from `.env` and `process.env`.
   */
  start(ctx: AppContext<'chain' | 'bot' | 'store', C>, env?: Record<string, string | undefined>): Promise<RunningBot>;
  /** The whole of a bot's `main.ts`: run it as a PM2 app. */
  run(): void;
}

const REPLAY_POLL_MS = 1_000;
const SOURCE = 'broadcaster';

/** Define a bot: typed handlers per op type; see the package README for the guarantees. */
export function createBot<
  V extends VariableDefs = VariableDefs,
  S = undefined,
  T extends BotTasks = Record<never, TaskDef>,
  N extends string = string,
>(definition: BotDefinition<V, S, T, N>): Bot<BotCatalogue<N, T>> {
  const own = botCatalogue(definition);
  return {
    definition: definition as unknown as BotDefinition<VariableDefs, unknown, BotTasks>,
    catalogue: own,
    start: (ctx, env) => startBot(definition, own, ctx as unknown as AnyContext, env ?? readEnvironment({ app: definition.name })),
    run: () =>
      void runApp({
        app: definition.name,
        sections: ['chain', 'bot', 'store'],
        catalogue: own,
        drainMs: 8_000,
        start: (ctx) => startBot(definition, own, ctx as unknown as AnyContext, readEnvironment({ app: definition.name })),
      }),
  };
}

// Inside, the bot's bus is used for the project's catalogue (ops, signer, mailer) and by name for its own tasks.
type AnyContext = AppContext<'chain' | 'bot' | 'store'>;

/** Check a bot's name and tasks (ERR_BOT_INVALID, naming each problem) and build its catalogue. */
function botCatalogue<N extends string, T extends BotTasks>(definition: {
  name: N;
  catalogue?: { tasks: T };
  tasks?: object;
}): BotCatalogue<N, T> {
  const { name } = definition;
  if (!/^[a-z][a-z0-9-]{0,31}$/.test(name)) {
    throw new AppError('ERR_BOT_INVALID', `bot name "${name}" must be lower-case letters, digits and dashes`);
  }
  const declared: BotTasks = definition.catalogue?.tasks ?? {};
  const sdk = deadLetterTasks(name);
  const problems = [
    ...Object.keys(declared)
      .filter((task) => task in sdk)
      .map((task) => `task ${task} is declared by the SDK for every bot`),
    ...Object.keys(definition.tasks ?? {})
      .filter((task) => !(task in declared))
      .map((task) => `task ${task} has a handler but is not in the bot's catalogue.tasks`),
    ...Object.keys(declared)
      .filter((task) => !(task in sdk) && !(definition.tasks && task in definition.tasks))
      .map((task) => `task ${task} is declared but has no handler in tasks`),
  ];
  if (problems.length > 0) throw new AppError('ERR_BOT_INVALID', `bot ${name}: ${problems.join('; ')}`);
  try {
    return extendCatalogue(catalogue, name, { tasks: { ...sdk, ...declared } }) as unknown as BotCatalogue<N, T>;
  } catch (err) {
    throw new AppError('ERR_BOT_INVALID', `bot ${name}: ${(err as Error).message}`);
  }
}

/**
 * Assemble a bot from its parts: variables, the single-active-instance lock, store, signer link,
 * setup, op runner, tasks, dead letters.
 */
async function startBot<V extends VariableDefs, S, T extends BotTasks, N extends string>(
  def: BotDefinition<V, S, T, N>,
  own: CatalogueShape,
  { config, logger, bus }: AppContext<'chain' | 'bot' | 'store'>,
  env: Record<string, string | undefined>,
): Promise<RunningBot> {
  // A bus made with another catalogue (a test's) would refuse the bot's tasks: say so plainly.
  const lacking = Object.keys(own.tasks).filter((task) => !(task in bus.catalogue.tasks));
  if (lacking.length > 0) {
    throw new AppError('ERR_BOT_INVALID', `the bus of bot ${def.name} lacks its tasks ${lacking.join(', ')}: create it with bot.catalogue`);
  }
  const { values: vars, problems, missing } = checkVariables(def.variables ?? ({} as V), env);
  if (problems.length > 0) throw configError(problems);
  if (missing.length > 0) return idleBot(def, await openBotStore(config, def.name, logger), logger, missing);
  // STORE=postgres: one instance of the bot acts; a standby (on any host) waits here, not ready,
  // subscribed to nothing, until the active one dies.
  const active = await becomeActive(config, logger, `bot-${def.name}`, (err) => {
    // Another instance may already handle ops: stop at once; PM2 restarts this one as a standby.
    logger.fatal({ err }, `lost the connection holding the active-${def.name} lock; exiting at once`);
    process.exit(1);
  });
  let store: BotStore;
  try {
    store = await openBotStore(config, def.name, logger);
  } catch (err) {
    await active?.release();
    throw err;
  }
  let signer: SignerLink | undefined;
  let state: S;
  let from: number | null;
  try {
    from = await store.checkpoint();
    const needs = accountRoles(typeof def.accounts === 'function' ? def.accounts(vars) : (def.accounts ?? []));
    await SignerLink.check(bus, needs, logger.child({ component: 'chain' }), def.signerWaitMs ?? 60_000);
    signer = new SignerLink(bus, [...needs.keys()], logger.child({ component: 'chain' }));
    state = (await def.setup?.({ kv: stateOf(store), config, log: logger, vars })) as S;
  } catch (err) {
    signer?.close();
    await store.close();
    await active?.release();
    throw err;
  }
  const link = signer;
  const kv = stateOf(store);
  const checkpoints = new CheckpointWriter(store, from, logger);

  const runner = new OpRunner({
    handlers: def.on as OpRunnerHandlers,
    context: ({ name, position, tid, attempt, log, signal }) => ({
      name,
      position,
      tid,
      attempt,
      log,
      signal,
      chain: link.chainFor(`${def.name}:${position}`, signal),
      mail: mailFor(bus, `${def.name}:${position}`),
      kv,
      state,
    }),
    filter: def.filter,
    concurrency: def.concurrency,
    retry: {
      attempts: def.retry?.attempts ?? config.BOT_RETRY_ATTEMPTS,
      baseMs: def.retry?.baseMs ?? config.BOT_RETRY_BASE_MS,
      maxMs: def.retry?.maxMs ?? config.BOT_RETRY_MAX_MS,
    },
    timeoutMs: def.handlerTimeoutMs ?? config.BOT_HANDLER_TIMEOUT_MS,
    store,
    checkpoints,
    logger,
  });

  if (def.tasks) {
    const typedBus = bus as unknown as Bus<{ events: Record<never, z.ZodType>; tasks: BotTasks }>;
    for (const [task, handler] of Object.entries(def.tasks) as Array<[string, (p: unknown, c: BotTaskContext<S>) => unknown]>) {
      typedBus.handle(task, (payload, ctx) => {
        const prefix = `${def.name}:task:${ctx.key ?? ctx.tid}`;
        const context = { tid: ctx.tid, key: ctx.key, log: logger.child({ task }), kv, state };
        return handler(payload, { ...context, chain: link.chainFor(prefix), mail: mailFor(bus, prefix) }) as never;
      });
    }
  }
  // The operator's Replay and Discard (the console) arrive as tasks, which every bot handles.
  const replayer = new DeadLetterReplayer(store, runner.run, logger, (err) => err instanceof Stopped, REPLAY_POLL_MS);
  registerDeadLetterTasks(def.name, bus as unknown as Bus<CatalogueShape>, store, logger, () => replayer.replayNow());
  await bus.serve();

  // block.applied is always subscribed: it moves the checkpoint on in blocks without wanted ops,
  // so a restart resumes close to the head.
  const names = new Set<OpName>([...(Object.keys(def.on) as OpName[]), 'block.applied']);
  const handlers = Object.fromEntries(
    [...names].map((name) => [
      name,
      (payload: Record<string, unknown>, ctx: { pos: number; tid: string }) => runner.submit(name, payload, ctx.pos, ctx.tid),
    ]),
  );
  logger.info(from === null ? 'no checkpoint: starting with live ops' : `resuming after position ${from}`);
  const subscription = bus.subscribe(SOURCE, handlers, { from });

  return {
    subscription,
    store,
    idle: false,
    checkpoint: () => checkpoints.position,
    async stop() {
      subscription.close();
      replayer.stop();
      link.close();
      await runner.stop();
      await store.close();
      // Given up after the last checkpoint is written, so that a standby takes over at once from there.
      await active?.release();
    },
  };
}

type OpRunnerHandlers = ConstructorParameters<typeof OpRunner>[0]['handlers'];

/**
 * A bot whose required variables are unset: online (PM2 sees it ready, not errored), handling
 * nothing, having said once what to set.
 */
async function idleBot<V extends VariableDefs, S, T extends BotTasks, N extends string>(
  def: BotDefinition<V, S, T, N>,
  store: BotStore,
  logger: Logger,
  missing: string[],
): Promise<RunningBot> {
  const names = missing.length === 1 ? `${missing[0]} is` : `${missing.slice(0, -1).join(', ')} and ${missing.at(-1)} are`;
  const docs = missing.map((name) => `${name}: ${def.variables?.[name]?.doc ?? ''}`).join(' ');
  logger.warn(`idle, handling nothing, until ${names} set in .env or the environment (then: npx pm2 restart ${def.name}). ${docs}`);
  const position = await store.checkpoint();
  // Nothing else holds the event loop open: no subscription, no tasks.
  const keepAlive = setInterval(() => undefined, 1 << 30);
  return {
    subscription: { position: null, ready: Promise.resolve(), close: () => undefined },
    store,
    idle: true,
    checkpoint: () => position,
    async stop() {
      clearInterval(keepAlive);
      await store.close();
    },
  };
}
