import { AppError, type Logger, maskUrlCredentials } from '@steem-bot/config';
import { type ChannelModel, connect } from 'amqplib';

import { backoffDelay } from './backoff';

/** Heartbeat asked of the broker, in seconds: a dead peer is noticed within about twice that. */
const HEARTBEAT_S = 5;

/**
 * One AMQP connection that stays up: it connects to the first of `urls` that answers and, when
 * the connection drops, to the next one (round robin, capped jittered backoff after a full
 * round). Whoever holds channels registers `onUp` to rebuild them on every new connection, from
 * its own current state, and `onDown` to fail what was in flight.
 */
export class AmqpLink {
  private conn: ChannelModel | undefined;
  private closed = false;
  private next = 0;
  private failures = 0;
  private connecting: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly upHandlers = new Set<(conn: ChannelModel) => void>();
  private readonly downHandlers = new Set<() => void>();
  private waiters: Array<(conn: ChannelModel) => void> = [];
  private readonly log: Logger;

  constructor(
    private readonly urls: readonly string[],
    logger: Logger,
  ) {
    if (urls.length === 0) throw new AppError('ERR_CONFIG_INVALID', 'BUS_AMQP_URLS names no broker');
    this.log = logger.child({ component: 'bus-amqp' });
    this.start();
  }

  get connection(): ChannelModel | undefined {
    return this.conn;
  }

  /** Run `up` now if connected and on every (re)connection; `down` when a connection is lost. */
  watch(up: (conn: ChannelModel) => void, down: () => void = () => undefined): () => void {
    this.upHandlers.add(up);
    this.downHandlers.add(down);
    if (this.conn) up(this.conn);
    return () => {
      this.upHandlers.delete(up);
      this.downHandlers.delete(down);
    };
  }

  /** The connection, waiting for one up to `timeoutMs`; rejects with ERR_BUS_UNAVAILABLE after. */
  whenUp(timeoutMs: number): Promise<ChannelModel> {
    if (this.conn) return Promise.resolve(this.conn);
    if (this.closed) return Promise.reject(new AppError('ERR_BUS_CLOSED', 'the bus is closed'));
    return new Promise((resolve, reject) => {
      const waiter = (conn: ChannelModel): void => {
        clearTimeout(timer);
        resolve(conn);
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new AppError('ERR_BUS_UNAVAILABLE', `no RabbitMQ broker reachable within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  private start(): void {
    if (this.closed || this.connecting) return;
    this.connecting = this.tryNext().finally(() => (this.connecting = undefined));
  }

  private async tryNext(): Promise<void> {
    const url = this.urls[this.next % this.urls.length] as string;
    this.next++;
    try {
      const conn = await connect(withHeartbeat(url), { timeout: 3_000 });
      if (this.closed) {
        await conn.close().catch(() => undefined);
        return;
      }
      this.failures = 0;
      this.conn = conn;
      conn.on('error', (err: Error) => this.log.warn({ err: { message: maskUrlCredentials(err.message) } }, 'RabbitMQ connection error'));
      conn.on('close', () => this.lost(conn));
      this.log.info({ broker: maskUrlCredentials(url) }, 'connected to RabbitMQ');
      for (const up of this.upHandlers) up(conn);
      const waiters = this.waiters;
      this.waiters = [];
      for (const w of waiters) w(conn);
    } catch (err) {
      this.failures++;
      const message = maskUrlCredentials(err instanceof Error ? err.message : String(err));
      // Try the next node at once; back off only after a whole round of them failed.
      const delay = this.failures % this.urls.length === 0 ? backoffDelay(this.failures / this.urls.length, 200, 5_000) : 0;
      this.log.warn({ broker: maskUrlCredentials(url), err: { message } }, `RabbitMQ broker unreachable; next try in ${delay} ms`);
      this.schedule(delay);
    }
  }

  private lost(conn: ChannelModel): void {
    if (this.conn !== conn) return;
    this.conn = undefined;
    for (const down of this.downHandlers) down();
    if (this.closed) return;
    this.log.warn('RabbitMQ connection lost; reconnecting');
    this.schedule(backoffDelay(1, 100, 1_000));
  }

  private schedule(delay: number): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.start(), delay);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.connecting?.catch(() => undefined);
    const conn = this.conn;
    this.conn = undefined;
    for (const down of this.downHandlers) down();
    this.upHandlers.clear();
    this.downHandlers.clear();
    if (conn) await conn.close().catch(() => undefined);
  }
}

function withHeartbeat(url: string): string {
  const u = new URL(url);
  if (!u.searchParams.has('heartbeat')) u.searchParams.set('heartbeat', String(HEARTBEAT_S));
  return u.toString();
}
