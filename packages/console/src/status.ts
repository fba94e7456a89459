import { hostname } from 'node:os';

import type { Bus } from '@steem-bot/bus';
import { readAmqpStreams, readStreams, type StreamStatus } from '@steem-bot/bus';
import { loadSchedules } from '@steem-bot/clock';
import { blockOfPosition, type Catalogue, catalogue, type Config, createLogger, type TaskReply } from '@steem-bot/config';

import { type ClockFigures, readClockFigures } from './clock-misses';
import type { Pm2App } from './pm2';
import { openReaders, type ReaderConfig, type StoreReaders } from './readers';
import {
  type DeadLetterView,
  type EndpointView,
  type MailerView,
  readBot,
  readMailer,
  readSigner,
  readTicks,
  readWebhooks,
  type SignerView,
  type TicksView,
} from './stores';

/** One PM2 app as the status shows it. */
export interface AppStatus {
  name: string;
  /** PM2's state: online, stopping, stopped, launching, errored, one-launch-status. */
  status: string;
  restarts: number;
  memory_bytes: number;
  /** Milliseconds since it came online; null unless online. */
  uptime_ms: number | null;
  pid: number | null;
  /** Where it runs: the host of the PM2 daemon, its bus transport and its store (from its env, else the console's). */
  host: string;
  transport: string;
  store: string;
}

export type BroadcasterStatus = TaskReply<Catalogue, 'broadcaster.status.get'>;

export interface BotStatus {
  name: string;
  /** Position of the last op fully handled; null before its first op. */
  checkpoint: number | null;
  block: number | null;
  /** Blocks behind the broadcaster's head; null when either is unknown. */
  lag_blocks: number | null;
  dead_letters: number;
  /**
   * Ops dead-lettered since the bot's store was created: on SQLite replayed and discarded ones too;
   * on PostgreSQL the ones it keeps (replayed too, discarded ones no longer).
   */
  dead_letters_total: number;
  dead: DeadLetterView[];
}

export interface ClockStatus {
  id: string;
  task: string;
  next: string | null;
  /** Fires, overlap skips and misses from the clock's store; null without one. */
  figures: ClockFigures | null;
}

/** What `npm run status`, `npm run status -- --json`, the console page and /metrics all show. */
export interface SystemStatus {
  at: string;
  apps: AppStatus[];
  broadcaster: BroadcasterStatus | { error: string };
  streams: StreamStatus[] | { error: string };
  bots: BotStatus[];
  mailer: MailerView | null;
  signer: SignerView | null;
  webhooks: EndpointView[] | null;
  clock: ClockStatus[] | { error: string };
  /** The clock's ticks. */
  ticks: TicksView | null;
}

export interface CollectOptions {
  config: Pick<Config, 'CLOCK_SCHEDULES' | 'BUS_TRANSPORT' | 'BUS_AMQP_URLS'> & ReaderConfig;
  /** The stores to read (default: opened from `config` for this one collection, then closed). */
  stores?: StoreReaders;
  /** A bus to call `broadcaster.status.get` with. */
  bus: Pick<Bus<Catalogue>, 'call'>;
  /** The PM2 apps (empty when PM2 runs none). */
  apps: Pm2App[];
  now?: number;
  /** Timeout of each status call (default 2000 ms). */
  callTimeoutMs?: number;
}

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

async function clockStatus(o: CollectOptions, stores: StoreReaders, now: number): Promise<SystemStatus['clock']> {
  let schedules: ReturnType<typeof loadSchedules>;
  try {
    schedules = loadSchedules(o.config.CLOCK_SCHEDULES);
  } catch (err) {
    return { error: message(err) };
  }
  const figures = await readClockFigures(stores, schedules, now).catch(() => undefined);
  return schedules.map((s) => {
    const next = s.pattern.nextRun(new Date(now));
    return { id: s.id, task: s.task, next: next ? next.toISOString() : null, figures: figures?.[s.id] ?? null };
  });
}

/**
 * Collect the whole system's status. The broadcaster answers over the bus; streams, bots, the
 * mailer, the signer, webhooks and the clock's ticks expose no status call yet, so their stores
 * are read, read-only (SQLite files or PostgreSQL, as STORE says); the clock's schedules come from
 * its schedule file.
 */
export async function collectStatus(o: CollectOptions): Promise<SystemStatus> {
  if (o.stores) return collectFrom(o, o.stores);
  const stores = openReaders(o.config);
  try {
    return await collectFrom(o, stores);
  } finally {
    await stores.close();
  }
}

async function collectFrom(o: CollectOptions, stores: StoreReaders): Promise<SystemStatus> {
  const now = o.now ?? Date.now();
  const dataDir = o.config.DATA_DIR;
  const apps: AppStatus[] = o.apps.map((a) => ({
    name: a.name,
    status: a.status,
    restarts: a.restarts,
    memory_bytes: a.memory,
    uptime_ms: a.status === 'online' && a.since !== null ? Math.max(0, now - a.since) : null,
    pid: a.pid,
    host: hostname(),
    transport: String(a.env.BUS_TRANSPORT ?? o.config.BUS_TRANSPORT),
    store: String(a.env.STORE ?? o.config.STORE),
  }));

  let broadcaster: SystemStatus['broadcaster'];
  try {
    broadcaster = await o.bus.call('broadcaster.status.get', {}, { timeoutMs: o.callTimeoutMs ?? 2_000 });
  } catch (err) {
    broadcaster = { error: message(err) };
  }
  const head = 'error' in broadcaster ? null : broadcaster.head_block;

  const orNull = async <T>(read: () => Promise<T | undefined>): Promise<T | null> => {
    try {
      return (await read()) ?? null;
    } catch {
      return null;
    }
  };

  const stored = (await orNull(() => stores.botNames())) ?? [];
  const botNames = new Set([...o.apps.filter((a) => a.bot).map((a) => a.name), ...stored]);
  const bots: BotStatus[] = [];
  for (const name of [...botNames].sort()) {
    const bot = await orNull(() => readBot(stores, name));
    const block = bot?.checkpoint == null ? null : blockOfPosition(bot.checkpoint);
    bots.push({
      name,
      checkpoint: bot?.checkpoint ?? null,
      block,
      lag_blocks: head !== null && block !== null ? Math.max(0, head - block) : null,
      dead_letters: bot?.dead_total ?? 0,
      dead_letters_total: bot?.dead_ever ?? 0,
      dead: bot?.dead ?? [],
    });
  }

  // On RabbitMQ the streams are the broker's stream queues (their head and floor; no bytes).
  let streams: SystemStatus['streams'];
  try {
    streams =
      o.config.BUS_TRANSPORT === 'rabbitmq'
        ? await readAmqpStreams(
            o.config.BUS_AMQP_URLS,
            Object.keys(catalogue.publishers ?? {}),
            createLogger({ app: 'status', level: 'silent' }),
          )
        : readStreams(dataDir);
  } catch (err) {
    streams = { error: message(err) };
  }

  return {
    at: new Date(now).toISOString(),
    apps,
    broadcaster,
    streams,
    bots,
    mailer: await orNull(() => readMailer(stores, now)),
    signer: await orNull(() => readSigner(stores)),
    webhooks: await orNull(() => readWebhooks(stores)),
    ticks: await orNull(() => readTicks(stores)),
    clock: await clockStatus(o, stores, now),
  };
}
