import { AppError } from '@steem-bot/config';

import type { WireEvent, WireTask } from './frames';
import { OrderedDelivery } from './ordered-delivery';
import { TailCache } from './tail-cache';
import type {
  ServeHooks,
  ServeOptions,
  StreamInfo,
  SubscribeHandlers,
  Transport,
  TransportServer,
  TransportSubscription,
} from './transport';

interface MemorySub {
  names: ReadonlySet<string>;
  delivery: OrderedDelivery;
  live: boolean;
  /** Aborted when the subscriber goes away: its backfill stops. */
  gone: AbortController;
}

/** Apps served in one process; share one hub between the transports of a test. */
export class MemoryHub {
  readonly servers = new Map<string, MemoryServer>();
  readonly waiting = new Map<string, Array<(server: MemoryServer) => void>>();

  register(app: string, server: MemoryServer): void {
    if (this.servers.has(app)) throw new Error(`${app} is already served on this hub`);
    this.servers.set(app, server);
    for (const attach of this.waiting.get(app) ?? []) attach(server);
    this.waiting.delete(app);
  }

  whenServed(app: string, attach: (server: MemoryServer) => void): void {
    const server = this.servers.get(app);
    if (server) attach(server);
    else this.waiting.set(app, [...(this.waiting.get(app) ?? []), attach]);
  }
}

class MemoryServer implements TransportServer {
  /** The whole stream, bounded by the retention in bytes (the floor rises as it drops events). */
  readonly window: TailCache<string>;
  readonly subs = new Set<MemorySub>();
  /** Resolves once the stream's start is known (see ServeOptions.floor). */
  private readonly floorKnown: Promise<void>;

  constructor(
    private readonly hub: MemoryHub,
    private readonly app: string,
    readonly hooks: ServeHooks,
    floor: number | Promise<number>,
    retentionBytes: number,
  ) {
    this.window = new TailCache<string>(retentionBytes, typeof floor === 'number' ? floor : 0);
    this.floorKnown =
      typeof floor === 'number'
        ? Promise.resolve()
        : floor.then((f) => {
            if (this.window.size === 0 && f > this.window.floor) this.window.floor = f;
          });
    this.floorKnown.catch(() => undefined); // awaited by each catch-up; never unhandled
  }

  get head(): number {
    return this.window.last;
  }

  info(): StreamInfo {
    return { head: this.window.last, floor: this.window.floor, bytes: this.window.byteSize };
  }

  append(events: readonly WireEvent[]): Promise<void> {
    // All or none, as the durable stream's transaction.
    let last = this.window.last;
    for (const e of events) {
      if (!Number.isSafeInteger(e.pos) || e.pos <= last) {
        return Promise.reject(new AppError('ERR_BUS_POSITION', `position ${e.pos} is not above the last one (${last})`));
      }
      last = e.pos;
    }
    for (const event of events) {
      const frame = JSON.stringify(event); // what would cross a socket: subscribers get copies
      this.window.push({ pos: event.pos, name: event.name, frame });
      for (const sub of this.subs) {
        if (sub.live && sub.names.has(event.name)) sub.delivery.pushEvent(JSON.parse(frame) as WireEvent);
      }
    }
    return Promise.resolve();
  }

  async attach(sub: MemorySub, from: number | null): Promise<void> {
    this.subs.add(sub);
    if (from === null) {
      sub.live = true;
      return;
    }
    await this.floorKnown;
    let cursor = from;
    while (cursor < this.window.floor) {
      const until = this.window.floor;
      if (this.hooks.backfill) {
        for await (const event of this.hooks.backfill(cursor, until, sub.names, sub.gone.signal)) {
          if (sub.gone.signal.aborted) return;
          sub.delivery.pushEvent(event);
        }
        if (sub.gone.signal.aborted) return;
      } else {
        sub.delivery.pushGap({ after: cursor, resumeAt: until });
      }
      cursor = until;
    }
    for (const entry of this.window.after(cursor, Number.MAX_SAFE_INTEGER)) {
      if (sub.names.has(entry.name)) sub.delivery.pushEvent(JSON.parse(entry.frame) as WireEvent);
    }
    sub.live = true;
  }

  close(): Promise<void> {
    for (const sub of this.subs) sub.gone.abort();
    this.subs.clear();
    this.hub.servers.delete(this.app);
    return Promise.resolve();
  }
}

/**
 * An in-process transport with the same contract as the node-ipc one (ordering, a stream with
 * a retention floor, backfill or gap signal below it, acknowledged tasks, timeouts), for unit
 * tests of apps. The stream lives in memory, bounded by `retentionBytes`, and dies with its server.
 */
export class MemoryTransport implements Transport {
  constructor(
    readonly hub: MemoryHub = new MemoryHub(),
    private readonly retentionBytes = 16 * 1024 * 1024,
  ) {}

  async serve(app: string, hooks: ServeHooks, options: ServeOptions = {}): Promise<TransportServer> {
    const server = new MemoryServer(this.hub, app, hooks, options.floor ?? 0, this.retentionBytes);
    this.hub.register(app, server);
    return Promise.resolve(server);
  }

  subscribe(app: string, names: readonly string[], from: number | null, handlers: SubscribeHandlers): TransportSubscription {
    const sub: MemorySub = {
      names: new Set(names),
      delivery: new OrderedDelivery(handlers, from, { pause: () => undefined, resume: () => undefined }),
      live: false,
      gone: new AbortController(),
    };
    let confirm: () => void = () => undefined;
    const ready = new Promise<void>((resolve) => (confirm = resolve));
    this.hub.whenServed(app, (server) => {
      confirm();
      void server.attach(sub, from);
    });
    return {
      ready,
      get position() {
        return sub.delivery.position;
      },
      close: () => {
        sub.gone.abort();
        sub.delivery.stop();
        this.hub.servers.get(app)?.subs.delete(sub);
      },
    };
  }

  request(app: string, task: WireTask, timeoutMs: number): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new AppError('ERR_BUS_TIMEOUT', `${task.name}: no answer from ${app} within ${timeoutMs} ms`, { data: { app } })),
        timeoutMs,
      );
      this.hub.whenServed(app, (server) => {
        server.hooks
          .onTask(JSON.parse(JSON.stringify(task)) as WireTask)
          .then((reply) => resolve(reply === undefined ? undefined : JSON.parse(JSON.stringify(reply))))
          .catch(reject)
          .finally(() => clearTimeout(timer));
      });
    });
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
