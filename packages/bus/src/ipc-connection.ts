import { AppError, deserializeError, type Logger, type SerializedError } from '@steem-bot/config';
import { IPCModule } from 'node-ipc';

import { backoffDelay } from './backoff';
import {
  type AckFrame,
  CONTROL,
  type EventMeta,
  type GapFrame,
  isObject,
  META_KEY,
  type NackFrame,
  NODE_IPC_LIFECYCLE,
  type SubscribeFrame,
  type WireTask,
} from './frames';
import type { IpcOptions } from './ipc-options';
import { OrderedDelivery } from './ordered-delivery';
import type { SubscribeHandlers, TransportSubscription } from './transport';

interface Pending {
  resolve(reply: unknown): void;
  reject(err: Error): void;
  frame: WireTask & { id: number };
  sent: boolean;
}

/**
 * The connection from this process to one app's socket: reconnects with capped, jittered
 * backoff; re-subscribes from the last handled position; carries tasks and their acks.
 */
export class IpcConnection {
  private ipc: IPCModule | undefined;
  private connected = false;
  private closed = false;
  private attempt = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private subscription: Subscription | undefined;
  private readonly log: Logger;

  constructor(
    private readonly app: string,
    private readonly options: IpcOptions,
  ) {
    this.log = options.logger.child({ component: `bus-client:${app}` });
    this.open();
  }

  /** At most one subscription per connection; the transport opens one connection per subscription. */
  subscribe(names: readonly string[], from: number | null, handlers: SubscribeHandlers): TransportSubscription {
    this.subscription = new Subscription(this, names, from, handlers);
    if (this.connected) this.subscription.start();
    return this.subscription;
  }

  request(task: WireTask, timeoutMs: number): Promise<unknown> {
    if (this.closed) return Promise.reject(new AppError('ERR_BUS_CLOSED', `connection to ${this.app} is closed`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(
          new AppError('ERR_BUS_TIMEOUT', `${task.name}: no answer from ${this.app} within ${timeoutMs} ms`, { data: { app: this.app } }),
        );
      }, timeoutMs);
      const entry: Pending = {
        frame: { ...task, id },
        sent: false,
        resolve: (reply) => (clearTimeout(timer), resolve(reply)),
        reject: (err) => (clearTimeout(timer), reject(err)),
      };
      this.pending.set(id, entry);
      if (this.connected) this.sendTask(entry);
    });
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    this.subscription?.stop();
    for (const p of this.pending.values()) p.reject(new AppError('ERR_BUS_CLOSED', `connection to ${this.app} closed`));
    this.pending.clear();
    this.ipc?.disconnect(this.app);
    this.ipc = undefined;
  }

  /** Pause or resume reading from the socket (flow control for a busy subscriber). */
  setReading(on: boolean): void {
    const socket = this.ipc?.of[this.app]?.socket;
    if (socket) {
      if (on) socket.resume();
      else socket.pause();
    }
  }

  emit(type: string, data: unknown): void {
    this.ipc?.of[this.app]?.emit(type, data);
  }

  private open(): void {
    const ipc = new IPCModule();
    Object.assign(ipc.config, {
      appspace: this.options.appspace,
      socketRoot: `${this.options.socketDir}/`,
      parser: 'guarded',
      silent: true,
      maxMessageSize: this.options.maxMessageBytes,
      maxPendingBytes: this.options.sendBytes + this.options.maxMessageBytes * 2,
      maxRetries: 0, // we reconnect ourselves, with backoff, and resubscribe
    });
    this.ipc = ipc;
    ipc.connectTo(this.app);
    const client = ipc.of[this.app];
    if (!client) return;
    client.on('connect', () => this.onConnect());
    client.on('destroy', () => this.onDown(ipc));
    client.on('error', (err: Error & { code?: string }) => {
      if (err.code !== 'ENOENT' && err.code !== 'ECONNREFUSED') this.log.warn({ err, code: err.code }, `connection error: ${err.message}`);
    });
    client.on('*', (type: string, data: unknown) => {
      if (!NODE_IPC_LIFECYCLE.has(type)) this.receive(type, data);
    });
  }

  private onConnect(): void {
    if (this.attempt > 0) this.log.info({ attempts: this.attempt }, `reconnected to ${this.app}`);
    this.attempt = 0;
    this.connected = true;
    // A connection for tasks only subscribes to nothing, so the server sends it no events.
    if (this.subscription) this.subscription.start();
    else this.emit(CONTROL.subscribe, { names: [], from: null } satisfies SubscribeFrame);
    for (const p of this.pending.values()) this.sendTask(p);
  }

  private onDown(ipc: IPCModule): void {
    if (ipc !== this.ipc) return;
    if (this.connected) this.log.warn(`lost the connection to ${this.app}; reconnecting`);
    this.connected = false;
    this.subscription?.interrupt();
    // Unacknowledged tasks go again on the next connection (the receiver dedupes by key).
    for (const p of this.pending.values()) p.sent = false;
    if (this.closed) return;
    ipc.disconnect(this.app);
    const delay = backoffDelay(this.attempt++, 50, 5_000);
    this.reconnectTimer = setTimeout(() => this.open(), delay);
  }

  private sendTask(p: Pending): void {
    if (p.sent) return;
    p.sent = true;
    this.emit(CONTROL.task, p.frame);
  }

  private receive(type: string, data: unknown): void {
    if (type === CONTROL.ack || type === CONTROL.nack) {
      const id = isObject(data) ? (data as unknown as AckFrame).id : undefined;
      const p = id === undefined ? undefined : this.pending.get(id);
      if (!p) return; // answered after its timeout
      this.pending.delete(id as number);
      if (type === CONTROL.ack) p.resolve((data as unknown as AckFrame).reply);
      else p.reject(deserializeError((data as unknown as NackFrame).error as SerializedError));
      return;
    }
    this.subscription?.receive(type, data);
  }
}

/** One subscription over a connection: subscribes (again) from the position reached. */
class Subscription implements TransportSubscription {
  private readonly delivery: OrderedDelivery;
  readonly ready: Promise<void>;
  private confirm: () => void = () => undefined;
  /** Set once the server confirmed the subscription on the current connection. */
  private confirmed = false;
  private stopped = false;

  constructor(
    private readonly conn: IpcConnection,
    private readonly names: readonly string[],
    from: number | null,
    handlers: SubscribeHandlers,
  ) {
    this.ready = new Promise((resolve) => (this.confirm = resolve));
    this.delivery = new OrderedDelivery(handlers, from, {
      pause: () => conn.setReading(false),
      resume: () => conn.setReading(true),
    });
  }

  get position(): number | null {
    return this.delivery.position;
  }

  /** (Re)subscribe on a fresh connection, from the last position handled. */
  start(): void {
    if (this.stopped) return;
    const frame: SubscribeFrame = { names: [...this.names], from: this.delivery.position };
    this.conn.emit(CONTROL.subscribe, frame);
  }

  /** The connection dropped: queued events will come again after `position`. */
  interrupt(): void {
    this.confirmed = false;
    this.delivery.reset();
  }

  stop(): void {
    this.stopped = true;
    this.confirmed = false;
    this.delivery.stop();
  }

  close(): void {
    this.conn.close();
  }

  receive(type: string, data: unknown): void {
    if (type === CONTROL.subscribed) {
      this.confirmed = true;
      this.confirm();
    } else if (!this.confirmed) {
      // Before the confirmation the server still treats us as a plain client: those events are not ours.
    } else if (type === CONTROL.gap) {
      this.delivery.pushGap(data as GapFrame);
    } else if (isObject(data) && isObject(data[META_KEY])) {
      const { [META_KEY]: meta, ...payload } = data;
      const m = meta as unknown as EventMeta;
      this.delivery.pushEvent({ name: type, payload, tid: m.tid, pos: m.pos, ts: m.ts });
    }
  }
}
