import http from 'node:http';
import https from 'node:https';

import type { Bus, EventContext, EventHandlers, TransportSubscription } from '@steem-bot/bus';
import type { Catalogue, Config, Logger } from '@steem-bot/config';

import { deliverOnce, type OutgoingEvent, webhookId } from './delivery';
import { publisherOf, WEBHOOKS_APP } from './publishers';
import type { EndpointRow, WebhookStore } from './store';

export interface DispatcherOptions {
  store: WebhookStore;
  bus: Bus<Catalogue>;
  config: Config<'webhooks'>;
  logger: Logger;
  /** Injectable clock (ms). */
  now?: () => number;
  /** Injectable jitter source in [0, 1). */
  random?: () => number;
  /** Moves the app's own events from the store's outbox to its stream (after a disable). */
  relayOwn: () => void;
}

/** The bus names an endpoint needs, by publishing app. Posted types arrive as `event.posted`. */
export function streamsOf(events: readonly string[]): Map<string, Set<string>> {
  const streams = new Map<string, Set<string>>();
  for (const type of events) {
    const app = publisherOf(type);
    const [from, name] = app === undefined ? [WEBHOOKS_APP, 'event.posted'] : [app, type];
    const names = streams.get(from) ?? new Set<string>();
    names.add(name);
    streams.set(from, names);
  }
  return streams;
}

/** Whether every filter field equals the payload's top-level field (a missing field never matches). */
export function matches(filter: Record<string, unknown>, data: Record<string, unknown>): boolean {
  return Object.entries(filter).every(([field, value]) => Object.hasOwn(data, field) && data[field] === value);
}

/** Pause before an endpoint whose store call failed starts again from its stored cursors. */
const RESTART_MS = 1_000;

/**
 * One endpoint: a cursor on each stream it needs, one delivery in flight at a time, in position
 * order per stream. A failing delivery holds the endpoint (not the others) on its retry schedule.
 */
class EndpointRunner {
  private readonly subs: TransportSubscription[] = [];
  private readonly abort = new AbortController();
  private chain: Promise<void> = Promise.resolve();
  private stopped = false;
  private readonly log: Logger;
  /**
   * The endpoint's row as last read or written by this runner (the one instance writes its retry
   * state); read again when the dispatcher's version of it moved (a secret rotation). Any other
   * change restarts the runner.
   */
  private row: EndpointRow;
  private version: number;

  private constructor(
    private readonly seq: number,
    private readonly d: Dispatcher,
    row: EndpointRow,
  ) {
    this.log = d.logger.child({ component: 'delivery', endpoint: `${row.client}/${row.id}` });
    this.row = row;
    this.version = d.version(seq);
  }

  private async current(): Promise<EndpointRow | undefined> {
    const version = this.d.version(this.seq);
    if (version === this.version) return this.row;
    const row = await this.d.store.endpointBySeq(this.seq);
    if (row) [this.row, this.version] = [row, version];
    return row;
  }

  /** Keep the cached row's retry state as just written. */
  private retryState(attempts: number, nextAttemptAt: number | null, failingSince: number | null): void {
    this.row = { ...this.row, attempts, next_attempt_at: nextAttemptAt, failing_since: failingSince };
  }

  /** A runner subscribed from the endpoint's stored cursors; undefined if it is gone or disabled. */
  static async start(seq: number, d: Dispatcher): Promise<EndpointRunner | undefined> {
    const row = await d.store.endpointBySeq(seq);
    if (!row || row.disabled) return undefined;
    const runner = new EndpointRunner(seq, d, row);
    const streams = streamsOf(JSON.parse(row.events) as string[]);
    const from = new Map<string, number | null>();
    for (const app of streams.keys()) from.set(app, await d.store.cursor(seq, app));
    for (const [app, names] of streams) {
      const handlers: Record<string, (payload: unknown, ctx: EventContext) => Promise<void>> = {};
      for (const name of names) handlers[name] = (payload, ctx) => runner.enqueue(app, payload as Record<string, unknown>, ctx);
      runner.subs.push(d.bus.subscribe(app, handlers as unknown as EventHandlers<Catalogue>, { from: from.get(app) ?? null }));
    }
    return runner;
  }

  /** Stop taking events, abort the delivery or wait in progress, and resolve once nothing is in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const sub of this.subs) sub.close();
    this.abort.abort();
    await this.chain;
  }

  private enqueue(app: string, payload: Record<string, unknown>, ctx: EventContext): Promise<void> {
    const run = this.chain.then(() => this.handle(app, payload, ctx));
    this.chain = run.catch((err: unknown) => this.restart(err));
    return this.chain;
  }

  /**
   * A store call failed under the event in hand (PostgreSQL restarting, a connection cut): it may
   * be neither delivered nor recorded, and no later event may move the cursor past it. Stop taking
   * events; the endpoint starts again from its stored cursors after a pause.
   */
  private restart(err: unknown): void {
    if (this.stopped) return;
    this.log.error({ err }, `delivery failed on the store; starting the endpoint again from its stored cursors in ${RESTART_MS} ms`);
    this.stopped = true;
    for (const sub of this.subs) sub.close();
    this.abort.abort();
    this.d.restartLater(this.seq, RESTART_MS);
  }

  private async handle(app: string, payload: Record<string, unknown>, ctx: EventContext): Promise<void> {
    if (this.stopped) return;
    const row = await this.current();
    if (!row || row.disabled) return;
    const posted = ctx.name === 'event.posted';
    const event: OutgoingEvent = {
      app,
      type: posted ? String(payload.type) : ctx.name,
      pos: ctx.pos,
      tid: ctx.tid,
      ts: ctx.ts,
      data: posted ? (payload.data as Record<string, unknown>) : payload,
    };
    const events = JSON.parse(row.events) as string[];
    if (!events.includes(event.type) || !matches(JSON.parse(row.filter) as Record<string, unknown>, event.data)) {
      await this.d.store.advance(this.seq, app, ctx.pos);
      return;
    }
    await this.deliver(event, row);
  }

  /** Try until delivered, disabled or stopped; the cursor moves only past a delivered event. */
  private async deliver(event: OutgoingEvent, first: EndpointRow): Promise<void> {
    const { store, config } = this.d;
    for (let row: EndpointRow | undefined = first; ; row = await this.current()) {
      if (!row || row.disabled || this.stopped) return;
      const wait = (row.next_attempt_at ?? 0) - this.d.now();
      if (wait > 0 && !(await this.sleep(wait))) return;
      const now = this.d.now();
      const attempt = await deliverOnce(row, event, {
        timeoutMs: config.WEBHOOKS_TIMEOUT_MS,
        allow: config.WEBHOOKS_ALLOW,
        now,
        signal: this.abort.signal,
        agents: this.d.agents,
      });
      if (attempt.outcome.kind === 'stopped') return;
      const log = {
        at: now,
        type: event.type,
        position: event.pos,
        webhook_id: webhookId(event),
        status: attempt.status,
        error: attempt.error,
        duration_ms: attempt.durationMs,
        response: attempt.response,
      };
      if (attempt.outcome.kind === 'delivered') {
        // Logged, the cursor moved and a retry state cleared in one transaction.
        const clear = row.attempts > 0 || row.failing_since !== null;
        await store.logDelivery(this.seq, log, {
          advance: { app: event.app, pos: event.pos },
          ...(clear ? { retry: { attempts: 0, nextAttemptAt: null, failingSince: null } } : {}),
        });
        if (clear) this.retryState(0, null, null);
        return;
      }
      await store.logDelivery(this.seq, log);
      if (attempt.outcome.kind === 'gone') return this.disable(row, 'the receiver answered 410 Gone', event.tid);
      const tries = row.attempts + 1;
      const failingSince = row.failing_since ?? now;
      const schedule = config.WEBHOOKS_RETRY_SCHEDULE_MS;
      this.log.warn({ tid: event.tid, pos: event.pos, attempt: tries }, `delivery of ${event.type} ${event.pos} failed: ${attempt.error}`);
      if (tries > schedule.length) return this.disable(row, `${tries} tries failed (last: ${attempt.error})`, event.tid);
      if (now - failingSince >= config.WEBHOOKS_DISABLE_AFTER_HOURS * 3_600_000)
        return this.disable(row, `failing for ${config.WEBHOOKS_DISABLE_AFTER_HOURS} h (last: ${attempt.error})`, event.tid);
      const base = schedule[tries - 1] as number;
      const asked = attempt.outcome.retryAfterMs;
      const delay =
        asked === undefined ? Math.round(base * (0.9 + 0.2 * this.d.random())) : Math.min(asked, config.WEBHOOKS_RETRY_AFTER_MAX_MS);
      await store.setRetry(this.seq, tries, now + delay, failingSince);
      this.retryState(tries, now + delay, failingSince);
    }
  }

  private async disable(row: EndpointRow, reason: string, tid: string): Promise<void> {
    // endpoint.disabled is written with the change (outbox), so a crash cannot lose it.
    const payload = { client: row.client, endpoint: row.id, url: row.url, reason };
    await this.d.store.disable(this.seq, reason, this.d.now(), { name: 'endpoint.disabled', payload, tid });
    this.log.warn(`endpoint disabled: ${reason}`);
    this.stopped = true;
    for (const sub of this.subs) sub.close();
    this.d.relayOwn();
  }

  /** Wait `ms`; false when stopped first. */
  private sleep(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      if (this.abort.signal.aborted) return resolve(false);
      const timer = setTimeout(() => {
        this.abort.signal.removeEventListener('abort', onAbort);
        resolve(true);
      }, ms);
      const onAbort = (): void => {
        clearTimeout(timer);
        resolve(false);
      };
      this.abort.signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}

/** Every enabled endpoint's runner; `refresh` after an endpoint changes. */
export class Dispatcher {
  readonly store: WebhookStore;
  readonly bus: Bus<Catalogue>;
  readonly config: Config<'webhooks'>;
  readonly logger: Logger;
  readonly now: () => number;
  readonly random: () => number;
  readonly relayOwn: DispatcherOptions['relayOwn'];
  /**
   * Keep-alive connections shared by the endpoints (one in flight per endpoint, so at most one
   * connection each). An idle one is closed after 4 s, before the common 5 s server timeouts.
   */
  readonly agents = {
    http: new http.Agent({ keepAlive: true, timeout: 4_000 }),
    https: new https.Agent({ keepAlive: true, timeout: 4_000 }),
  };
  private readonly runners = new Map<number, EndpointRunner>();
  private readonly versions = new Map<number, number>();
  // Refreshes of one endpoint run one after another, so two runners never overlap.
  private readonly pending = new Map<number, Promise<void>>();
  private readonly restarts = new Set<NodeJS.Timeout>();
  private stopping = false;

  constructor(options: DispatcherOptions) {
    this.store = options.store;
    this.bus = options.bus;
    this.config = options.config;
    this.logger = options.logger;
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    this.relayOwn = options.relayOwn;
  }

  /** How many times the endpoint's row changed under its runner (see `touch`). */
  version(seq: number): number {
    return this.versions.get(seq) ?? 0;
  }

  /** The endpoint's row changed in a way its runner goes on with (a rotated secret): read it again. */
  touch(seq: number): void {
    this.versions.set(seq, this.version(seq) + 1);
  }

  async start(): Promise<void> {
    for (const row of await this.store.endpoints()) {
      if (row.disabled) continue;
      const runner = await EndpointRunner.start(row.seq, this);
      if (runner) this.runners.set(row.seq, runner);
    }
  }

  /** Restart an endpoint's runner from its stored state (after a change, a replay, a delete). */
  refresh(seq: number, before?: () => Promise<unknown>): Promise<void> {
    const previous = this.pending.get(seq) ?? Promise.resolve();
    const next = previous.then(async () => {
      await this.runners.get(seq)?.stop();
      this.runners.delete(seq);
      await before?.();
      const runner = await EndpointRunner.start(seq, this);
      if (runner) this.runners.set(seq, runner);
    });
    this.pending.set(
      seq,
      next.catch(() => undefined),
    );
    return next;
  }

  /** Start an endpoint again from its stored state after `delayMs`, and again until that works. */
  restartLater(seq: number, delayMs: number): void {
    const timer = setTimeout(() => {
      this.restarts.delete(timer);
      if (this.stopping) return;
      this.refresh(seq).catch((err: unknown) => {
        this.logger.warn({ err }, `could not start endpoint #${seq} again; trying again in ${delayMs} ms`);
        this.restartLater(seq, delayMs);
      });
    }, delayMs);
    this.restarts.add(timer);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const timer of this.restarts) clearTimeout(timer);
    this.restarts.clear();
    await Promise.all([...this.pending.values()]);
    await Promise.all([...this.runners.values()].map((r) => r.stop()));
    this.runners.clear();
    this.agents.http.destroy();
    this.agents.https.destroy();
  }
}
