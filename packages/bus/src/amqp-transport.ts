import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

import {
  AppError,
  deserializeError,
  type Logger,
  maskUrlCredentials,
  newTid,
  type SerializedError,
  serializeError,
} from '@steem-bot/config';
import { type Channel, type ChannelModel, type ConfirmChannel, connect, type ConsumeMessage } from 'amqplib';
import Database from 'better-sqlite3';

import { AmqpLink } from './amqp-link';
import { isObject, type WireEvent, type WireTask } from './frames';
import { OrderedDelivery } from './ordered-delivery';
import type {
  ServeHooks,
  ServeOptions,
  StreamInfo,
  SubscribeHandlers,
  TaskKeyStore,
  Transport,
  TransportServer,
  TransportSubscription,
} from './transport';

/** Settings of the RabbitMQ transport (the bus's part of the Config, plus the logger). */
export interface AmqpOptions {
  /** Every broker node, tried in order (BUS_AMQP_URLS). */
  urls: readonly string[];
  logger: Logger;
  /** First segment of every queue and exchange name (tests use their own). Default `steem-bot`. */
  prefix: string;
  /** Where the receiver remembers task keys (`<dataDir>/amqp/<app>.task-keys.sqlite`); in memory without it. */
  dataDir?: string;
  maxMessageBytes: number;
  /** Stream retention (x-max-age), BUS_RETENTION_HOURS. */
  retentionHours: number;
  /** Stream retention (x-max-length-bytes), BUS_RETENTION_BYTES. */
  retentionBytes: number;
  /** Stream segment size (x-stream-max-segment-size-bytes): retention drops whole segments. */
  segmentBytes: number;
  /** Deliveries of a task before it is dead-lettered (x-delivery-limit). */
  deliveryLimit: number;
  /** Unacknowledged tasks per serving process. */
  taskPrefetch: number;
  /** Unacknowledged stream messages per subscription (the stream's flow control). */
  eventPrefetch: number;
  /** How long `serve` and `append` wait for a broker before they fail with ERR_BUS_UNAVAILABLE. */
  brokerWaitMs: number;
}

export type AmqpTransportOptions = Pick<AmqpOptions, 'urls' | 'logger'> & Partial<AmqpOptions>;

export const AMQP_DEFAULTS: Omit<AmqpOptions, 'urls' | 'logger' | 'dataDir'> = {
  prefix: 'steem-bot',
  maxMessageBytes: 1024 * 1024,
  retentionHours: 168,
  retentionBytes: 8 * 1024 ** 3,
  segmentBytes: 500 * 1000 * 1000,
  deliveryLimit: 5,
  taskPrefetch: 32,
  eventPrefetch: 1000,
  brokerWaitMs: 30_000,
};

/** The queue and exchange names of one prefix. */
export function amqpNames(prefix: string): {
  stream(app: string): string;
  tasks(app: string): string;
  dead(app: string): string;
  taskExchange: string;
  deadExchange: string;
} {
  return {
    stream: (app) => `${prefix}.events.${app}`,
    tasks: (app) => `${prefix}.tasks.${app}`,
    dead: (app) => `${prefix}.dead.${app}`,
    taskExchange: `${prefix}.tasks`,
    deadExchange: `${prefix}.dead`,
  };
}

/** A stream message: the event plus the position of the message before it (`prev`), for gaps. */
interface StreamRecord extends WireEvent {
  prev: number;
}
/** Name of the marker a server writes where a stream starts (or its floor moves up): no event. */
const FLOOR_MARK = 'bus.floor';
const REPLY_TO = 'amq.rabbitmq.reply-to';
/**
 * Task name of a backfill request (subscriber -> publisher): `{after, until, names, queue}`; the
 * publisher sends `{event}` messages then `{done, backfill}` (or `{done, error}`) to `queue`.
 */
const BACKFILL = 'bus.backfill';

function streamArgs(o: AmqpOptions): Record<string, unknown> {
  return {
    'x-queue-type': 'stream',
    'x-max-age': `${o.retentionHours}h`,
    'x-max-length-bytes': o.retentionBytes,
    'x-stream-max-segment-size-bytes': Math.min(o.segmentBytes, Math.max(1, Math.floor(o.retentionBytes / 4))),
  };
}

function parseRecord(content: Buffer): StreamRecord | undefined {
  try {
    const r = JSON.parse(content.toString('utf8')) as unknown;
    if (!isObject(r) || typeof r.name !== 'string' || !Number.isSafeInteger(r.pos) || !Number.isSafeInteger(r.prev)) return undefined;
    return r as unknown as StreamRecord;
  } catch {
    return undefined;
  }
}

function unavailable(what: string): AppError {
  return new AppError('ERR_BUS_UNAVAILABLE', `${what}: the RabbitMQ connection was lost before it was confirmed`);
}

/** Open a channel that logs instead of crashing on a channel error (404, 406...). */
async function openChannel(conn: ChannelModel, log: Logger, confirm: true): Promise<ConfirmChannel>;
async function openChannel(conn: ChannelModel, log: Logger, confirm?: false): Promise<Channel>;
async function openChannel(conn: ChannelModel, log: Logger, confirm = false): Promise<Channel> {
  const ch = confirm ? await conn.createConfirmChannel() : await conn.createChannel();
  ch.on('error', (err: Error) => log.debug({ err: { message: err.message } }, 'RabbitMQ channel closed by the broker'));
  return ch;
}

/** Does the queue exist? (a passive declare on a throwaway channel: a 404 closes that channel). */
async function queueExists(conn: ChannelModel, log: Logger, queue: string): Promise<boolean> {
  const ch = await openChannel(conn, log);
  try {
    await ch.checkQueue(queue);
    await ch.close().catch(() => undefined);
    return true;
  } catch {
    return false;
  }
}

interface Probe {
  offset: number;
  record: StreamRecord;
}

/**
 * The first message of the stream at `offset` (a number, 'first' or 'last': the first message of
 * the last chunk), or undefined if none comes within `waitMs` (an empty stream, or past its end).
 */
async function probe(
  conn: ChannelModel,
  log: Logger,
  queue: string,
  offset: number | 'first' | 'last',
  waitMs: number,
): Promise<Probe | undefined> {
  const ch = await openChannel(conn, log);
  try {
    await ch.prefetch(1);
    return await new Promise<Probe | undefined>((resolve, reject) => {
      const timer = setTimeout(() => resolve(undefined), waitMs);
      ch.consume(
        queue,
        (m) => {
          if (!m) return;
          clearTimeout(timer);
          const record = parseRecord(m.content);
          const at = m.properties.headers?.['x-stream-offset'] as number | undefined;
          resolve(record && at !== undefined ? { offset: at, record } : undefined);
        },
        { noAck: false, arguments: { 'x-stream-offset': offset } },
      ).catch(reject);
    });
  } finally {
    await ch.close().catch(() => undefined);
  }
}

/** The last message of the stream: read the last chunk until nothing more comes. */
async function tail(conn: ChannelModel, log: Logger, queue: string, idleMs = 250): Promise<Probe | undefined> {
  const ch = await openChannel(conn, log);
  try {
    await ch.prefetch(1000);
    return await new Promise<Probe | undefined>((resolve, reject) => {
      let last: Probe | undefined;
      let timer = setTimeout(() => resolve(last), idleMs * 2);
      ch.consume(
        queue,
        (m) => {
          if (!m) return;
          ch.ack(m);
          const record = parseRecord(m.content);
          const at = m.properties.headers?.['x-stream-offset'] as number | undefined;
          if (record && at !== undefined && (!last || at > last.offset)) last = { offset: at, record };
          clearTimeout(timer);
          timer = setTimeout(() => resolve(last), idleMs);
        },
        { noAck: false, arguments: { 'x-stream-offset': 'last' } },
      ).catch(reject);
    });
  } finally {
    await ch.close().catch(() => undefined);
  }
}

/** Task keys and their replies in a SQLite file (the same table as the embedded stream's). */
class SqliteTaskKeys implements TaskKeyStore {
  private readonly db: Database.Database;
  private readonly timer: NodeJS.Timeout;

  constructor(file: string, keepMs: number) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.exec(
      'CREATE TABLE IF NOT EXISTS bus_task_keys (key TEXT PRIMARY KEY, reply TEXT, at INTEGER NOT NULL); CREATE INDEX IF NOT EXISTS bus_task_keys_at ON bus_task_keys (at);',
    );
    this.timer = setInterval(() => this.db.prepare('DELETE FROM bus_task_keys WHERE at < ?').run(Date.now() - keepMs), 60_000);
    this.timer.unref();
  }

  get(key: string): { reply: unknown } | undefined {
    const row = this.db.prepare('SELECT reply FROM bus_task_keys WHERE key = ?').get(key) as { reply: string | null } | undefined;
    return row && { reply: row.reply === null ? undefined : (JSON.parse(row.reply) as unknown) };
  }

  put(key: string, reply: unknown): void {
    this.db
      .prepare('INSERT OR REPLACE INTO bus_task_keys (key, reply, at) VALUES (?, ?, ?)')
      .run(key, reply === undefined ? null : JSON.stringify(reply), Date.now());
  }

  close(): void {
    clearInterval(this.timer);
    this.db.close();
  }
}

/** Declare what a serving app owns, idempotently: its stream, its task queue, the exchanges. */
async function declareApp(conn: ChannelModel, log: Logger, o: AmqpOptions, app: string): Promise<void> {
  const n = amqpNames(o.prefix);
  const ch = await openChannel(conn, log);
  try {
    await ch.assertQueue(n.stream(app), { durable: true, arguments: streamArgs(o) });
    await ch.assertExchange(n.taskExchange, 'direct', { durable: true });
    await ch.assertExchange(n.deadExchange, 'direct', { durable: true });
    await ch.assertQueue(n.dead(app), { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    await ch.bindQueue(n.dead(app), n.deadExchange, app);
    await ch.assertQueue(n.tasks(app), {
      durable: true,
      arguments: {
        'x-queue-type': 'quorum',
        'x-delivery-limit': o.deliveryLimit,
        'x-dead-letter-exchange': n.deadExchange,
        'x-dead-letter-strategy': 'at-least-once',
        'x-overflow': 'reject-publish',
      },
    });
    await ch.bindQueue(n.tasks(app), n.taskExchange, app);
  } finally {
    await ch.close().catch(() => undefined);
  }
}

/** The serving side of one app on RabbitMQ: its stream queue and its task queue. */
class AmqpServer implements TransportServer {
  private _head: number;
  private floor: number;
  private readonly floorKnown: Promise<void>;
  private pub: ConfirmChannel | undefined;
  private appending: Promise<void> = Promise.resolve();
  private closed = false;
  private unwatch: () => void = () => undefined;
  private readonly log: Logger;
  private readonly queue: string;
  readonly taskKeys: SqliteTaskKeys;
  private taskChannel: Channel | undefined;

  constructor(
    private readonly link: AmqpLink,
    private readonly o: AmqpOptions,
    private readonly app: string,
    private readonly hooks: ServeHooks,
    head: number,
    floor: number | Promise<number>,
  ) {
    this.log = o.logger.child({ component: `bus-amqp-server:${app}` });
    this.queue = amqpNames(o.prefix).stream(app);
    this._head = head;
    this.floor = typeof floor === 'number' ? floor : 0;
    let file = ':memory:';
    if (o.dataDir) {
      // Not under streams/: that directory holds the embedded transport's stream files only.
      mkdirSync(join(o.dataDir, 'amqp'), { recursive: true, mode: 0o700 });
      file = join(o.dataDir, 'amqp', `${app}.task-keys.sqlite`);
    }
    this.taskKeys = new SqliteTaskKeys(file, o.retentionHours * 3_600_000);
    const streamHead = head;
    this.floorKnown = Promise.resolve(floor).then(async (f) => {
      this.floor = Math.max(this.floor, f);
      this._head = Math.max(this._head, f);
      // Events at or below the floor predate the stream. A marker at the floor tells subscribers
      // below it at once (backfill or gap), before any event comes; appends wait for it.
      if (f > streamHead || streamHead === 0) await this.mark(f, Math.max(f, streamHead));
    });
    this.floorKnown.catch(() => undefined);
    if (typeof floor === 'number') this._head = Math.max(head, floor);
  }

  private async mark(pos: number, prev: number): Promise<void> {
    for (;;) {
      try {
        await this.publishRecords([{ name: FLOOR_MARK, payload: {}, tid: '', pos, ts: Date.now(), prev }]);
        return;
      } catch (err) {
        if (this.closed) throw err;
        this.log.warn({ err: { message: (err as Error).message } }, 'could not write the floor marker; retrying');
      }
    }
  }

  get head(): number {
    return this._head;
  }

  info(): StreamInfo {
    // Bytes are the broker's (management UI / rabbitmq-streams); the AMQP protocol does not tell.
    return { head: this._head, floor: this.floor, bytes: 0 };
  }

  /** Declare the topology and start consuming tasks, now and after every reconnection. */
  start(): void {
    this.unwatch = this.link.watch(
      (conn) => void this.up(conn),
      () => {
        this.pub = undefined;
        this.taskChannel = undefined;
      },
    );
  }

  private async up(conn: ChannelModel): Promise<void> {
    try {
      await declareApp(conn, this.log, this.o, this.app);
      const pub = await openChannel(conn, this.log, true);
      pub.on('close', () => this.pub === pub && (this.pub = undefined));
      this.pub = pub;
      const ch = await openChannel(conn, this.log);
      ch.on('close', () => {
        if (this.taskChannel !== ch) return;
        this.taskChannel = undefined;
        // A channel error (not a lost connection): consume again on a new channel.
        if (!this.closed && this.link.connection === conn) setTimeout(() => this.link.connection === conn && void this.up(conn), 500);
      });
      this.taskChannel = ch;
      await ch.prefetch(this.o.taskPrefetch);
      await ch.consume(amqpNames(this.o.prefix).tasks(this.app), (m) => m && void this.onTask(ch, m), { noAck: false });
    } catch (err) {
      // A broker just restarted may refuse declarations until its queues are back: try again.
      this.log.warn({ err: { message: (err as Error).message } }, 'could not declare or consume on RabbitMQ; retrying');
      if (!this.closed && this.link.connection === conn) setTimeout(() => this.link.connection === conn && void this.up(conn), 1_000);
    }
  }

  private async onTask(ch: Channel, m: ConsumeMessage): Promise<void> {
    const reply = (body: unknown): void => {
      const to = m.properties.replyTo as string | undefined;
      if (!to) return;
      try {
        ch.sendToQueue(to, Buffer.from(JSON.stringify(body)), { correlationId: m.properties.correlationId as string });
      } catch {
        // The channel is gone; the sender times out and retries with the same key.
      }
    };
    let task: WireTask | undefined;
    try {
      const parsed = JSON.parse(m.content.toString('utf8')) as unknown;
      if (isObject(parsed) && typeof parsed.name === 'string' && typeof parsed.tid === 'string') task = parsed as unknown as WireTask;
    } catch {
      // not JSON: dead-lettered below
    }
    if (task === undefined) {
      this.log.warn({ messageId: m.properties.messageId as unknown }, 'malformed task message dead-lettered');
      reply({ error: new AppError('ERR_BUS_INVALID_PAYLOAD', 'malformed task message').toJSON() });
      safe(() => ch.nack(m, false, false));
      return;
    }
    if (task.name === BACKFILL) {
      await this.serveBackfill(ch, m, task.payload);
      return;
    }
    try {
      const result = await this.hooks.onTask(task);
      reply({ reply: result });
      safe(() => ch.ack(m));
    } catch (err) {
      const wire = serializeError(err);
      reply({ error: wire });
      if (!wire.retryable) {
        // It can never succeed: straight to the dead-letter queue (kept for the operator).
        safe(() => ch.nack(m, false, false));
        return;
      }
      // Retryable: back to the queue after a pause; x-delivery-limit dead-letters a poison task.
      const count = Number(m.properties.headers?.['x-delivery-count'] ?? 0);
      setTimeout(() => safe(() => ch.nack(m, false, true)), Math.min(1_000, 50 * 2 ** count));
    }
  }

  append(events: readonly WireEvent[]): Promise<void> {
    if (this.closed) return Promise.reject(new AppError('ERR_BUS_CLOSED', `${this.app} is closed`));
    const run = this.appending.then(() => this.appendNow(events));
    this.appending = run.catch(() => undefined);
    return run;
  }

  private async appendNow(events: readonly WireEvent[]): Promise<void> {
    await this.floorKnown;
    let last = this._head;
    const records: StreamRecord[] = [];
    for (const e of events) {
      if (!Number.isSafeInteger(e.pos) || e.pos <= last) {
        throw new AppError('ERR_BUS_POSITION', `position ${e.pos} is not above the last one (${last})`);
      }
      records.push({ name: e.name, payload: e.payload, tid: e.tid, pos: e.pos, ts: e.ts, prev: last });
      last = e.pos;
    }
    await this.publishRecords(records);
    this._head = last;
  }

  /**
   * A subscriber behind the stream's first message asks for (after, until]: run the backfill hook
   * (the broadcaster refetches from the chain) into its private queue, with confirms, and stop
   * (the iterator's return(), the signal aborted) as soon as that queue is gone.
   */
  private async serveBackfill(taskCh: Channel, m: ConsumeMessage, payload: unknown): Promise<void> {
    const p = (isObject(payload) ? payload : {}) as { after?: unknown; until?: unknown; names?: unknown; queue?: unknown };
    const names = Array.isArray(p.names) && p.names.every((n) => typeof n === 'string') ? (p.names as string[]) : undefined;
    const conn = this.link.connection;
    if (!Number.isSafeInteger(p.after) || !Number.isSafeInteger(p.until) || !names || typeof p.queue !== 'string' || !conn) {
      this.log.warn('malformed backfill request dead-lettered');
      safe(() => taskCh.nack(m, false, false));
      return;
    }
    const queue = p.queue;
    const gone = new AbortController();
    let out: ConfirmChannel | undefined;
    const send = (body: object): void => {
      out?.sendToQueue(queue, Buffer.from(JSON.stringify(body)), { mandatory: true });
    };
    // The subscriber's queue goes with it: stop when a send bounces or a check finds it gone.
    const watch = setInterval(() => {
      void queueExists(conn, this.log, queue).then(
        (ok) => ok || gone.abort(),
        () => gone.abort(),
      );
    }, 500);
    try {
      out = await openChannel(conn, this.log, true);
      out.on('return', () => gone.abort());
      out.on('close', () => gone.abort());
      if (!this.hooks.backfill) send({ done: true, backfill: false });
      else {
        let n = 0;
        for await (const event of this.hooks.backfill(p.after as number, p.until as number, new Set(names), gone.signal)) {
          if (gone.signal.aborted) break;
          send({ event });
          if (++n % 64 === 0) await out.waitForConfirms();
        }
        if (!gone.signal.aborted) send({ done: true, backfill: true });
      }
      await out.waitForConfirms();
    } catch (err) {
      if (!gone.signal.aborted) {
        this.log.warn({ err }, `backfill of (${String(p.after)}, ${String(p.until)}] failed`);
        safe(() => send({ done: true, error: serializeError(err) }));
      }
    } finally {
      clearInterval(watch);
      await out?.close().catch(() => undefined);
      safe(() => taskCh.ack(m));
    }
  }

  /** Publish to the stream and wait for the broker's confirms (all of them, or an error). */
  private async publishRecords(records: readonly StreamRecord[]): Promise<void> {
    // Nothing to confirm: waiting would wait for a callback that never comes (a block whose
    // events are all in the stream already, republished after a restart, hung here for good).
    if (records.length === 0) return;
    const bodies = records.map((r) => Buffer.from(JSON.stringify(r)));
    for (const [i, b] of bodies.entries()) {
      if (b.length > this.o.maxMessageBytes) {
        throw new AppError(
          'ERR_BUS_FRAME_TOO_LARGE',
          `event at ${records[i]?.pos} is ${b.length} bytes (BUS_MAX_MESSAGE_BYTES ${this.o.maxMessageBytes})`,
        );
      }
    }
    const deadline = Date.now() + this.o.brokerWaitMs;
    let pub = this.pub;
    while (!pub) {
      if (this.closed) throw new AppError('ERR_BUS_CLOSED', `${this.app} is closed`);
      if (Date.now() > deadline)
        throw new AppError('ERR_BUS_UNAVAILABLE', `no RabbitMQ broker for ${this.o.brokerWaitMs} ms: events not appended`);
      await new Promise((r) => setTimeout(r, 50));
      pub = this.pub;
    }
    const ch = pub;
    await new Promise<void>((resolve, reject) => {
      let left = bodies.length;
      let failed = false;
      const onClose = (): void => fail();
      const fail = (): void => {
        if (failed) return;
        failed = true;
        ch.removeListener('close', onClose);
        reject(unavailable(`events up to ${records[records.length - 1]?.pos}`));
      };
      ch.once('close', onClose);
      try {
        for (const body of bodies) {
          ch.sendToQueue(this.queue, body, { persistent: true }, (err) => {
            if (err) return fail();
            if (--left === 0 && !failed) {
              ch.removeListener('close', onClose);
              resolve();
            }
          });
        }
      } catch {
        fail();
      }
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.appending;
    this.unwatch();
    await this.taskChannel?.close().catch(() => undefined);
    await this.pub?.close().catch(() => undefined);
    this.taskKeys.close();
  }

  /** Read where the stream stands: its head and its first message. */
  static async open(link: AmqpLink, o: AmqpOptions, app: string, hooks: ServeHooks, options: ServeOptions): Promise<AmqpServer> {
    const conn = await link.whenUp(o.brokerWaitMs);
    await declareApp(conn, o.logger, o, app);
    const queue = amqpNames(o.prefix).stream(app);
    const last = await tail(conn, o.logger, queue);
    const server = new AmqpServer(link, o, app, hooks, last?.record.pos ?? 0, options.floor ?? 0);
    const first = last && (await probe(conn, o.logger, queue, 'first', 1_000));
    if (first) server.floor = Math.max(server.floor, first.record.prev);
    server.start();
    return server;
  }
}

function safe(fn: () => void): void {
  try {
    fn();
  } catch {
    // The channel closed: the broker redelivers what was not acknowledged.
  }
}

/**
 * One subscription to one app's stream. Positions are the dedupe key; the stream offset is only
 * where to attach: the cursor is the offset just after the last message whose position was
 * handled, and every (re)attachment starts from the cursor as it is then.
 */
class AmqpSubscription implements TransportSubscription {
  readonly ready: Promise<void>;
  private confirm: () => void = () => undefined;
  private readonly delivery: OrderedDelivery;
  private readonly names: ReadonlySet<string>;
  private readonly queue: string;
  private readonly app: string;
  /** A backfill in progress: the stream messages that came meanwhile wait here (acks held). */
  private backfill: { pending: ConsumeMessage[]; channel?: ConfirmChannel } | undefined;
  /** Where to attach next, and the last position before it (null: not known yet). */
  private cursor: number | 'first' | undefined;
  private cursorPos: number | null = null;
  /** Highest position of a stream message seen since the last attachment (gap detection). */
  private lastSeen: number | null = null;
  /** Offsets and positions received and not yet known to be handled, in offset order. */
  private seen: Array<{ offset: number; pos: number }> = [];
  private seenStart = 0;
  private channel: Channel | undefined;
  private generation = 0;
  private closed = false;
  private paused = false;
  private held: ConsumeMessage | undefined;
  private unacked = 0;
  private readonly unwatch: () => void;
  private readonly log: Logger;

  constructor(
    private readonly link: AmqpLink,
    private readonly o: AmqpOptions,
    app: string,
    names: readonly string[],
    private readonly from: number | null,
    handlers: SubscribeHandlers,
  ) {
    this.log = o.logger.child({ component: `bus-amqp-client:${app}` });
    this.names = new Set(names);
    this.app = app;
    this.queue = amqpNames(o.prefix).stream(app);
    this.ready = new Promise((resolve) => (this.confirm = resolve));
    this.delivery = new OrderedDelivery(
      {
        onEvent: (event) => {
          const result = handlers.onEvent(event);
          if (result instanceof Promise) return result.finally(() => this.handled(event.pos));
          this.handled(event.pos);
          return result;
        },
        ...(handlers.onGap ? { onGap: handlers.onGap } : {}),
      },
      from,
      { pause: () => (this.paused = true), resume: () => this.resume() },
    );
    this.unwatch = link.watch(
      (conn) => void this.attach(conn),
      () => this.detach(),
    );
  }

  get position(): number | null {
    return this.delivery.position;
  }

  private handled(pos: number): void {
    while (this.seenStart < this.seen.length) {
      const s = this.seen[this.seenStart] as { offset: number; pos: number };
      if (s.pos > pos) break;
      this.cursor = s.offset + 1;
      this.cursorPos = Math.max(this.cursorPos ?? s.pos, s.pos);
      this.seenStart++;
    }
    if (this.seenStart > 4096) {
      this.seen = this.seen.slice(this.seenStart);
      this.seenStart = 0;
    }
  }

  private detach(): void {
    this.generation++;
    void this.backfill?.channel?.close().catch(() => undefined);
    this.backfill = undefined;
    this.channel = undefined;
    this.held = undefined;
    this.unacked = 0;
    this.delivery.reset();
    this.seen = [];
    this.seenStart = 0;
  }

  /** Where `from` is in the stream: an offset whose position is at or below it (binary search). */
  private async locate(conn: ChannelModel): Promise<void> {
    const first = await probe(conn, this.log, this.queue, 'first', 1_000);
    if (!first) {
      this.cursor = 'first';
      this.cursorPos = this.from;
      return;
    }
    if (this.from === null) {
      const end = await tail(conn, this.log, this.queue);
      this.cursor = end ? end.offset + 1 : 'first';
      this.cursorPos = end ? end.record.pos : null;
      return;
    }
    const last = await probe(conn, this.log, this.queue, 'last', 1_000);
    const from = this.from;
    this.cursorPos = from;
    if (first.record.pos > from || !last) {
      this.cursor = first.offset;
      return;
    }
    if (last.record.pos <= from) {
      this.cursor = last.offset;
      return;
    }
    // pos(lo) <= from < pos(hi)
    let lo = first.offset;
    let hi = last.offset;
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      const at = await probe(conn, this.log, this.queue, mid, 1_000);
      if (!at || at.offset >= hi) break;
      if (at.record.pos <= from) lo = at.offset;
      else hi = at.offset;
    }
    this.cursor = lo;
  }

  private async attach(conn: ChannelModel): Promise<void> {
    const gen = ++this.generation;
    try {
      while (!(await queueExists(conn, this.log, this.queue))) {
        if (this.closed || gen !== this.generation) return;
        await new Promise((r) => setTimeout(r, 200)); // the publisher has not served yet
      }
      if (this.cursor === undefined) await this.locate(conn);
      if (this.closed || gen !== this.generation) return;
      const ch = await openChannel(conn, this.log);
      ch.on('close', () => {
        if (this.channel !== ch) return;
        this.detach();
        if (!this.closed && this.link.connection === conn) setTimeout(() => this.link.connection === conn && void this.attach(conn), 500);
      });
      await ch.prefetch(this.o.eventPrefetch);
      if (this.closed || gen !== this.generation) {
        await ch.close().catch(() => undefined);
        return;
      }
      this.channel = ch;
      this.lastSeen = this.cursorPos;
      this.log.debug({ offset: this.cursor ?? 'first', position: this.delivery.position }, 'attaching to the stream');
      await ch.consume(this.queue, (m) => m && this.onMessage(ch, m), {
        noAck: false,
        arguments: { 'x-stream-offset': this.cursor ?? 'first' },
      });
      this.confirm();
    } catch (err) {
      if (this.closed) return;
      this.log.warn({ err: { message: (err as Error).message } }, 'could not attach to the stream; retrying');
      if (gen === this.generation && this.link.connection === conn) {
        setTimeout(() => gen === this.generation && this.link.connection === conn && void this.attach(conn), 1_000);
      }
    }
  }

  private onMessage(ch: Channel, m: ConsumeMessage): void {
    if (ch !== this.channel) return;
    // Stream acks are flow control only: one (multiple) ack per quarter of the prefetch, none
    // while the delivery queue is paused, so that the broker stops at the prefetch.
    this.held = m;
    if (++this.unacked >= this.o.eventPrefetch / 4) this.ackHeld(ch);
    if (this.backfill) this.backfill.pending.push(m);
    else this.process(ch, m);
  }

  private process(ch: Channel, m: ConsumeMessage): void {
    const offset = m.properties.headers?.['x-stream-offset'] as number | undefined;
    const record = parseRecord(m.content);
    if (!record || offset === undefined) {
      this.log.warn({ offset }, 'malformed stream message skipped');
      return;
    }
    if (this.lastSeen !== null) {
      const after = Math.max(this.lastSeen, this.delivery.position ?? this.lastSeen);
      if (record.prev > after) {
        // Retention took (after, prev] before this subscriber read it: ask the publisher's
        // backfill, with this message and the ones after it waiting (and their acks held).
        this.backfill = { pending: [m] };
        void this.runBackfill(ch, after, record.prev);
        return;
      }
    }
    this.lastSeen = Math.max(this.lastSeen ?? record.pos, record.pos);
    this.seen.push({ offset, pos: record.pos });
    if (record.name !== FLOOR_MARK && this.names.has(record.name)) {
      this.delivery.pushEvent({ name: record.name, payload: record.payload, tid: record.tid, pos: record.pos, ts: record.ts });
    } else {
      // Not for this subscriber: known handled once everything before it is.
      const position = this.delivery.position;
      if (position !== null) this.handled(position);
    }
  }

  /** Events in (after, until] from the publisher's backfill, else a gap; then the waiting messages. */
  private async runBackfill(ch: Channel, after: number, until: number): Promise<void> {
    const gen = this.generation;
    const state = this.backfill;
    const conn = this.link.connection;
    let filled: boolean;
    try {
      if (!conn || !state) throw new Error('no connection');
      const bch = await openChannel(conn, this.log, true);
      state.channel = bch;
      try {
        const { queue } = await bch.assertQueue('', { exclusive: false, durable: false, autoDelete: true }); // not exclusive: the publisher checks it is still there
        filled = await new Promise<boolean>((resolve, reject) => {
          bch.on('close', () => reject(new Error('backfill channel closed')));
          bch.on('return', () => resolve(false)); // the publisher has no task queue on this broker
          bch
            .consume(
              queue,
              (msg) => {
                if (!msg || gen !== this.generation) return;
                let body: { event?: WireEvent; done?: boolean; backfill?: boolean };
                try {
                  body = JSON.parse(msg.content.toString('utf8')) as typeof body;
                } catch {
                  // Not from a publisher (the queue is not exclusive): a throw here would be
                  // uncaught inside amqplib; the backfill is abandoned and asked for again.
                  reject(new Error('a malformed message in the backfill queue'));
                  return;
                }
                if (body.event) this.delivery.pushEvent(body.event);
                else if (body.done) resolve(body.backfill === true);
              },
              { noAck: true },
            )
            .then(() => {
              const task: WireTask = { name: BACKFILL, tid: newTid(), payload: { after, until, names: [...this.names], queue } };
              bch.publish(amqpNames(this.o.prefix).taskExchange, this.app, Buffer.from(JSON.stringify(task)), { mandatory: true });
            }, reject);
        });
      } finally {
        await bch.close().catch(() => undefined);
      }
    } catch (err) {
      // The connection went: the next attachment starts again from the cursor.
      if (gen === this.generation) this.log.warn({ err: { message: (err as Error).message } }, 'backfill interrupted');
      return;
    }
    if (gen !== this.generation || this.backfill !== state || !state) return;
    if (!filled) this.delivery.pushGap({ after, resumeAt: until });
    this.lastSeen = Math.max(this.lastSeen ?? until, until);
    this.backfill = undefined;
    const pending = state.pending;
    for (let i = 0; i < pending.length; i++) {
      if (this.backfill) {
        (this.backfill as { pending: ConsumeMessage[] }).pending.push(...pending.slice(i));
        return;
      }
      this.process(ch, pending[i] as ConsumeMessage);
    }
    this.ackHeld(ch);
  }

  private ackHeld(ch: Channel): void {
    const m = this.held;
    if (!m || this.paused || this.backfill || ch !== this.channel) return;
    this.held = undefined;
    this.unacked = 0;
    safe(() => ch.ack(m, true));
  }

  /** OrderedDelivery calls this each time its queue drains: ack only if acks were held back. */
  private resume(): void {
    if (!this.paused) return;
    this.paused = false;
    if (this.channel) this.ackHeld(this.channel);
  }

  close(): void {
    this.closed = true;
    this.unwatch();
    this.delivery.stop();
    void this.backfill?.channel?.close().catch(() => undefined);
    this.backfill = undefined;
    const ch = this.channel;
    this.channel = undefined;
    this.generation++;
    void ch?.close().catch(() => undefined);
  }
}

interface PendingRequest {
  resolve(reply: unknown): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
  /** Published on this channel: its reply can only come back there. */
  channel?: ConfirmChannel;
  returned?: boolean;
}

/** Tasks and calls from this process: one confirm channel, replies by direct reply-to. */
class AmqpRequester {
  private channel: ConfirmChannel | undefined;
  private readonly pending = new Map<string, PendingRequest>();
  private waiting: Array<() => void> = [];
  private readonly unwatch: () => void;
  private readonly log: Logger;

  constructor(
    private readonly link: AmqpLink,
    private readonly o: AmqpOptions,
  ) {
    this.log = o.logger.child({ component: 'bus-amqp-requester' });
    this.unwatch = link.watch(
      (conn) => void this.up(conn),
      () => this.down(),
    );
  }

  private async up(conn: ChannelModel): Promise<void> {
    try {
      const ch = await openChannel(conn, this.log, true);
      await ch.assertExchange(amqpNames(this.o.prefix).taskExchange, 'direct', { durable: true });
      ch.on('return', (m: ConsumeMessage) => {
        const p = this.pending.get(m.properties.correlationId as string);
        if (p) p.returned = true;
      });
      ch.on('close', () => {
        if (this.channel !== ch) return;
        this.down();
        if (this.link.connection === conn) setTimeout(() => this.link.connection === conn && void this.up(conn), 200);
      });
      await ch.consume(REPLY_TO, (m) => m && this.onReply(m), { noAck: true });
      this.channel = ch;
      const waiting = this.waiting;
      this.waiting = [];
      for (const w of waiting) w();
    } catch (err) {
      this.log.warn({ err: { message: (err as Error).message } }, 'could not open the task channel; retrying');
      if (this.link.connection === conn) setTimeout(() => this.link.connection === conn && void this.up(conn), 1_000);
    }
  }

  /** The connection is gone and the replies with it: fail what was sent (send retries with its key). */
  private down(): void {
    const ch = this.channel;
    this.channel = undefined;
    for (const [id, p] of this.pending) {
      if (ch === undefined || p.channel !== ch) continue;
      this.pending.delete(id);
      clearTimeout(p.timer);
      p.reject(unavailable('task'));
    }
  }

  private onReply(m: ConsumeMessage): void {
    const id = m.properties.correlationId as string;
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    try {
      const body = JSON.parse(m.content.toString('utf8')) as { reply?: unknown; error?: SerializedError };
      if (body.error) p.reject(deserializeError(body.error));
      else p.resolve(body.reply);
    } catch {
      p.reject(new AppError('ERR_BUS_HANDLER_FAILED', 'malformed reply'));
    }
  }

  request(app: string, task: WireTask, timeoutMs: number): Promise<unknown> {
    const id = randomUUID();
    const body = Buffer.from(JSON.stringify(task));
    if (body.length > this.o.maxMessageBytes) {
      return Promise.reject(
        new AppError('ERR_BUS_FRAME_TOO_LARGE', `${task.name}: ${body.length} bytes (BUS_MAX_MESSAGE_BYTES ${this.o.maxMessageBytes})`),
      );
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new AppError('ERR_BUS_TIMEOUT', `${task.name}: no answer from ${app} within ${timeoutMs} ms`, { data: { app } }));
      }, timeoutMs);
      const p: PendingRequest = { resolve, reject, timer };
      this.pending.set(id, p);
      const send = (): void => {
        const ch = this.channel;
        if (!this.pending.has(id)) return;
        if (!ch) {
          this.waiting.push(send);
          return;
        }
        p.channel = ch;
        try {
          ch.publish(
            amqpNames(this.o.prefix).taskExchange,
            app,
            body,
            {
              mandatory: true,
              persistent: task.key !== undefined,
              contentType: 'application/json',
              correlationId: id,
              replyTo: REPLY_TO,
              ...(task.key === undefined ? { expiration: String(timeoutMs) } : { messageId: task.key }),
            },
            (err) => {
              if (!this.pending.has(id)) return;
              if (err || p.returned) {
                this.pending.delete(id);
                clearTimeout(timer);
                reject(
                  p.returned
                    ? new AppError('ERR_BUS_UNKNOWN_APP', `${task.name}: no task queue for ${app} (it never served on this broker)`, {
                        data: { app },
                      })
                    : unavailable(task.name),
                );
              }
            },
          );
        } catch {
          this.waiting.push(send);
        }
      };
      send();
    });
  }

  close(): void {
    this.unwatch();
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new AppError('ERR_BUS_CLOSED', 'the bus was closed while a task was pending'));
    }
    this.pending.clear();
    void this.channel?.close().catch(() => undefined);
    this.channel = undefined;
  }
}

/**
 * The bus on RabbitMQ (BUS_TRANSPORT=rabbitmq): each app's events in a stream queue, its tasks
 * in a quorum queue with a dead-letter queue, calls by direct reply-to. One connection per
 * process, with failover across the brokers of BUS_AMQP_URLS.
 */
export class AmqpTransport implements Transport {
  private readonly o: AmqpOptions;
  private readonly link: AmqpLink;
  private readonly servers = new Set<AmqpServer>();
  private readonly subs = new Set<AmqpSubscription>();
  private requester: AmqpRequester | undefined;

  constructor(options: AmqpTransportOptions) {
    this.o = { ...AMQP_DEFAULTS, ...options };
    this.link = new AmqpLink(this.o.urls, this.o.logger);
  }

  async serve(app: string, hooks: ServeHooks, options: ServeOptions = {}): Promise<TransportServer> {
    const server = await AmqpServer.open(this.link, this.o, app, hooks, options);
    this.servers.add(server);
    return server;
  }

  subscribe(app: string, names: readonly string[], from: number | null, handlers: SubscribeHandlers): TransportSubscription {
    const sub = new AmqpSubscription(this.link, this.o, app, names, from, handlers);
    this.subs.add(sub);
    return sub;
  }

  request(app: string, task: WireTask, timeoutMs: number): Promise<unknown> {
    this.requester ??= new AmqpRequester(this.link, this.o);
    return this.requester.request(app, task, timeoutMs);
  }

  async close(): Promise<void> {
    for (const sub of this.subs) sub.close();
    this.subs.clear();
    this.requester?.close();
    await Promise.all([...this.servers].map((s) => s.close()));
    this.servers.clear();
    await this.link.close();
  }
}

/**
 * Where each app's stream stands on the broker (`npm run status` with BUS_TRANSPORT=rabbitmq):
 * head (its newest message) and floor (the position before its oldest message). Bytes and
 * subscribers are the broker's to tell (management UI); they read 0 and none here.
 */
export async function readAmqpStreams(
  urls: readonly string[],
  apps: readonly string[],
  logger: Logger,
  prefix = AMQP_DEFAULTS.prefix,
): Promise<Array<StreamInfo & { app: string; subscribers: []; recordedAt: null }>> {
  let conn: ChannelModel | undefined;
  let lastErr: unknown;
  for (const url of urls) {
    try {
      conn = await connect(url, { timeout: 3_000 });
      break;
    } catch (err) {
      lastErr = err;
    }
  }
  if (!conn)
    throw new AppError('ERR_BUS_UNAVAILABLE', `no RabbitMQ broker reachable: ${maskUrlCredentials(String((lastErr as Error)?.message))}`);
  conn.on('error', () => undefined);
  try {
    const out = [];
    for (const app of apps) {
      const queue = amqpNames(prefix).stream(app);
      if (!(await queueExists(conn, logger, queue))) continue;
      const last = await tail(conn, logger, queue, 150);
      const first = last && (await probe(conn, logger, queue, 'first', 1_000));
      out.push({ app, head: last?.record.pos ?? 0, floor: first?.record.prev ?? 0, bytes: 0, subscribers: [] as [], recordedAt: null });
    }
    return out;
  } finally {
    await conn.close().catch(() => undefined);
  }
}
