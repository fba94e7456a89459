import { AppError } from '@steem-bot/config';

import type { WireEvent, WireTask } from './frames';
import { OrderedDelivery } from './ordered-delivery';
import { ReplayWindow } from './replay-window';
import type { ServeHooks, ServeOptions, SubscribeHandlers, Transport, TransportServer, TransportSubscription } from './transport';

interface MemorySub {
  names: ReadonlySet<string>;
  delivery: OrderedDelivery;
  live: boolean;
  /** Aborted when the subscription is closed: stops its catch-up and the app's backfill. */
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
  readonly window: ReplayWindow<string>;
  readonly subs = new Set<MemorySub>();
  private readonly floorKnown: Promise<void>;

  constructor(
    private readonly hub: MemoryHub,
    private readonly app: string,
    readonly hooks: ServeHooks,
    floor: number | Promise<number>,
    replayBytes: number,
  ) {
    this.window = new ReplayWindow<string>(replayBytes, typeof floor === 'number' ? floor : 0);
    this.floorKnown = typeof floor === 'number' ? Promise.resolve() : floor.then((f) => void (this.window.floor = f));
    this.floorKnown.catch(() => undefined); // awaited by each catch-up; never unhandled
  }

  publish(event: WireEvent): Promise<void> {
    const frame = JSON.stringify(event); // what would cross a socket: subscribers get copies
    try {
      this.window.push({ pos: event.pos, name: event.name, frame });
    } catch (err) {
      return Promise.reject(err as Error);
    }
    for (const sub of this.subs) {
      if (sub.live && sub.names.has(event.name)) sub.delivery.pushEvent(JSON.parse(frame) as WireEvent);
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
    if (cursor < this.window.floor) {
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
 * An in-process transport with the same contract as the node-ipc one (ordering, replay window,
 * gap signal, acknowledged tasks, timeouts), for unit tests of apps.
 */
export class MemoryTransport implements Transport {
  constructor(
    readonly hub: MemoryHub = new MemoryHub(),
    private readonly replayBytes = 16 * 1024 * 1024,
  ) {}

  async serve(app: string, hooks: ServeHooks, options: ServeOptions = {}): Promise<TransportServer> {
    const server = new MemoryServer(this.hub, app, hooks, options.floor ?? Date.now() * 1000, this.replayBytes);
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
