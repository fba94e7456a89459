import { randomUUID } from 'node:crypto';

import {
  AppError,
  type CatalogueShape,
  currentTid,
  type EventInput,
  type EventName,
  type EventPayload,
  type EventsOf,
  isTaskName,
  type Logger,
  newTid,
  taskApp,
  type TaskName,
  type TaskPayload,
  type TaskReply,
  withTid,
} from '@steem-bot/config';

import { backoffDelay } from './backoff';
import { type EventMeta, findForbiddenKey, type WireEvent, type WireTask } from './frames';
import type { StreamInfo, Transport, TransportServer, TransportSubscription } from './transport';

/** What an event handler gets besides the payload. */
export interface EventContext<N extends string = string> extends EventMeta {
  name: N;
}
export type EventHandler<C extends CatalogueShape, N extends EventName<C>> = (
  payload: EventPayload<C, N>,
  ctx: EventContext<N>,
) => void | Promise<void>;
/** Handlers of a subscription, by event name: only names the app `A` publishes (see the catalogue's `publishers`). */
export type EventHandlers<C extends CatalogueShape, A extends string = string> = { [N in EventsOf<C, A>]?: EventHandler<C, N> };

/** What a task handler gets besides the payload. */
export interface TaskContext {
  tid: string;
  /** The sender's idempotency key: the same key means the same task. */
  key: string | undefined;
}
export type TaskHandler<C extends CatalogueShape, N extends TaskName<C>> = (
  payload: TaskPayload<C, N>,
  ctx: TaskContext,
) => TaskReply<C, N> | Promise<TaskReply<C, N>>;

export interface BusOptions<C extends CatalogueShape> {
  /** This process's app name: its socket's name and the first segment of the tasks it handles. */
  app: string;
  catalogue: C;
  transport: Transport;
  logger: Logger;
  /** Default wait for an acknowledgement or reply (BUS_TASK_TIMEOUT_MS). */
  taskTimeoutMs?: number;
}

export interface ServeOptions {
  /**
   * A new stream starts above this position (default 0); a promise when the app serves before it
   * knows where its stream starts. See Transport's ServeOptions.floor.
   */
  floor?: number | Promise<number>;
  /** Source of events below the stream's retention floor (see Transport's ServeHooks.backfill). */
  backfill?: (after: number, until: number, names: ReadonlySet<string>, signal: AbortSignal) => AsyncIterable<WireEvent>;
}

export interface SubscribeOptions {
  /** Resume after this position (the last one handled); omit for live events only. */
  from?: number | null;
  /** Events in (after, resumeAt] are gone from the publisher's stream (retention) and will not come. */
  onGap?: (after: number | null, resumeAt: number) => void;
}

export interface PublishOptions {
  /** Above the stream's head; default: max(head + 1, now in µs). */
  position?: number;
  tid?: string;
}

/** One event of `publishBatch`. */
export type BatchEvent<C extends CatalogueShape> = {
  [N in EventName<C>]: { name: N; payload: EventInput<C, N> } & PublishOptions;
}[EventName<C>];

export interface SendOptions {
  /** The receiver runs the task once per key; retries reuse it. Default: a fresh UUID per send. */
  idempotencyKey?: string;
  timeoutMs?: number;
  /** Tries in all, on timeouts and retryable errors, with capped exponential backoff. Default 5. */
  attempts?: number;
}

// Recently accepted task keys, so that a retry after a lost ack is not run twice, when the
// transport keeps no durable record of them.
const DEDUPE_KEYS = 10_000;
/** Longest idempotency key accepted (sender and receiver). */
export const MAX_KEY_LENGTH = 256;

/**
 * The typed bus of one app. `publish` reaches every subscriber of an event, `send` one app
 * (resolved on its acknowledgement), `call` one app with a reply. Names and payloads are
 * checked against the catalogue at compile time and at run time.
 */
export class Bus<C extends CatalogueShape> {
  readonly app: string;
  /** The names and schemas this app sends, handles and validates against. */
  readonly catalogue: C;
  private readonly transport: Transport;
  private readonly log: Logger;
  private readonly taskTimeoutMs: number;
  private readonly handlers = new Map<string, (payload: unknown, ctx: TaskContext) => unknown>();
  private readonly inFlight = new Map<string, Promise<unknown>>();
  private readonly accepted = new Map<string, unknown>();
  private readonly subscriptions = new Set<TransportSubscription>();
  private server: TransportServer | undefined;
  private lastPosition = 0;
  /** Event name -> the app that publishes it, per the catalogue (empty when it does not say). */
  private readonly publishers = new Map<string, string>();

  constructor(options: BusOptions<C>) {
    this.app = options.app;
    this.catalogue = options.catalogue;
    this.transport = options.transport;
    this.log = options.logger.child({ component: 'bus' });
    this.taskTimeoutMs = options.taskTimeoutMs ?? 5_000;
    for (const [app, names] of Object.entries(this.catalogue.publishers ?? {})) for (const name of names) this.publishers.set(name, app);
  }

  /** Handle a task addressed to this app; resolve once the work is durably accepted. */
  handle<N extends TaskName<C>>(name: N, handler: TaskHandler<C, N>): this {
    if (!(name in this.catalogue.tasks)) throw new AppError('ERR_BUS_UNKNOWN_NAME', `unknown task "${name}"`);
    if (taskApp(name) !== this.app) throw new AppError('ERR_BUS_WRONG_APP', `${this.app} cannot handle ${name}`);
    this.handlers.set(name, handler as (payload: unknown, ctx: TaskContext) => unknown);
    return this;
  }

  /** Start serving this app's socket: subscribers, tasks and calls. */
  async serve(options: ServeOptions = {}): Promise<void> {
    this.server = await this.transport.serve(
      this.app,
      { onTask: (task) => this.runTask(task), ...(options.backfill ? { backfill: options.backfill } : {}) },
      options.floor === undefined ? {} : { floor: options.floor },
    );
    const server = this.server;
    this.lastPosition = server.head;
    // The stream's head moves up to a floor that is known only later (see ServeOptions.floor).
    if (typeof options.floor !== 'number') void options.floor?.then(() => (this.lastPosition = Math.max(this.lastPosition, server.head)));
  }

  /** Position of the newest event in this app's stream (null before `serve`). */
  get head(): number | null {
    return this.server?.head ?? null;
  }

  /**
   * This app's stream as an outbox relays to it (the store's `OutboxTarget`): its head, and an
   * append that keeps the positions the outbox gave the events.
   */
  get stream(): {
    readonly head: number | null;
    append(events: ReadonlyArray<{ pos: number; name: string; payload: Record<string, unknown>; tid: string }>): Promise<void>;
  } {
    const head = (): number | null => this.head;
    return {
      get head() {
        return head();
      },
      append: (events) =>
        this.publishBatch(events.map((e) => ({ name: e.name, payload: e.payload, position: e.pos, tid: e.tid })) as Array<BatchEvent<C>>),
    };
  }

  /** Head, retention floor and bytes of this app's stream (null before `serve`). */
  streamInfo(): StreamInfo | null {
    return this.server?.info() ?? null;
  }

  /**
   * Append an event to this app's stream; every subscriber of its name reads it at its own pace.
   * `position` must be above the stream's head (default: a time-based one); the TID defaults to
   * the one being handled, else a fresh one. Resolves once it is durable; never waits for a subscriber.
   */
  publish<N extends EventName<C>>(name: N, payload: EventInput<C, N>, options: PublishOptions = {}): Promise<void> {
    return this.publishBatch([{ name, payload, ...options } as BatchEvent<C>]);
  }

  /**
   * Append several events in one transaction, all or none (the broadcaster appends one block's
   * ops at a time). Each is checked as by `publish`.
   */
  publishBatch(events: ReadonlyArray<BatchEvent<C>>): Promise<void> {
    const server = this.server;
    if (!server) return Promise.reject(new AppError('ERR_BUS_CLOSED', `${this.app} is not serving: call serve() first`));
    const wire: WireEvent[] = [];
    let last = this.lastPosition;
    const now = Date.now();
    for (const e of events) {
      const schema = this.catalogue.events[e.name];
      if (!schema) return Promise.reject(new AppError('ERR_BUS_UNKNOWN_NAME', `unknown event "${e.name}"`));
      const publisher = this.publishers.get(e.name);
      if (publisher !== undefined && publisher !== this.app) {
        return Promise.reject(new AppError('ERR_BUS_WRONG_APP', `${e.name} is published by ${publisher}, not ${this.app}`));
      }
      const result = schema.safeParse(e.payload);
      if (!result.success) {
        return Promise.reject(new AppError('ERR_BUS_INVALID_PAYLOAD', `${e.name}: ${result.error.message}`, { data: result.error.issues }));
      }
      const pos = e.position ?? Math.max(last + 1, now * 1000);
      wire.push({ name: e.name, payload: e.payload as Record<string, unknown>, tid: e.tid ?? currentTid() ?? newTid(), pos, ts: now });
      // Only a valid position moves on the default ones (a NaN would stop them all).
      if (Number.isSafeInteger(pos) && pos > last) last = pos;
    }
    const done = server.append(wire);
    this.lastPosition = Math.max(this.lastPosition, last);
    return done;
  }

  /** Subscribe to events of `app`, one handler per event name; handlers run one at a time, in order. */
  subscribe<A extends string>(app: A, handlers: EventHandlers<C, A>, options: SubscribeOptions = {}): TransportSubscription {
    const names = Object.keys(handlers);
    for (const name of names) {
      if (!(name in this.catalogue.events)) throw new AppError('ERR_BUS_UNKNOWN_NAME', `unknown event "${name}"`);
      const publisher = this.publishers.get(name);
      if (publisher !== undefined && publisher !== app)
        throw new AppError('ERR_BUS_WRONG_APP', `${name} is published by ${publisher}, not ${app}`);
    }
    const table = handlers as unknown as Record<string, (payload: unknown, ctx: EventContext) => unknown>;
    const sub = this.transport.subscribe(app, names, options.from ?? null, {
      onEvent: (event) => {
        const handler = table[event.name];
        if (!handler) return undefined;
        const failed = (err: unknown): void =>
          withTid(event.tid, () =>
            this.log.error({ err, event: event.name, pos: event.pos }, `handler for ${event.name} failed; moving on`),
          );
        try {
          const result = withTid(event.tid, () =>
            handler(event.payload, { name: event.name, tid: event.tid, pos: event.pos, ts: event.ts }),
          );
          return result instanceof Promise ? result.then(() => undefined, failed) : undefined;
        } catch (err) {
          failed(err);
          return undefined;
        }
      },
      onGap: (after, resumeAt) => {
        this.log.warn({ app, after, resumeAt }, `events after ${after} up to ${resumeAt} are gone from ${app}'s window`);
        options.onGap?.(after, resumeAt);
      },
    });
    this.subscriptions.add(sub);
    return sub;
  }

  /** Send a task to the app its name starts with; resolves with its reply once that app acknowledged it. */
  send<N extends TaskName<C>>(name: N, payload: TaskPayload<C, N>, options: SendOptions = {}): Promise<TaskReply<C, N>> {
    return this.sendTask(name, payload, options, false) as Promise<TaskReply<C, N>>;
  }

  /**
   * Send a task known only by its name at run time (a clock schedule, the console's Replay), as
   * `send` does. A task of this bus's catalogue is checked here as by `send`; another one (a
   * bot's own task, declared in the bot's package) only for its name's shape, and its receiver
   * checks it against its own declaration: an unknown name or a bad payload comes back as
   * ERR_BUS_UNKNOWN_NAME or ERR_BUS_INVALID_PAYLOAD.
   */
  sendByName(name: string, payload: Record<string, unknown>, options: SendOptions = {}): Promise<unknown> {
    return this.sendTask(name, payload, options, true);
  }

  private async sendTask(name: string, payload: unknown, options: SendOptions, byName: boolean): Promise<unknown> {
    const key = options.idempotencyKey ?? randomUUID();
    if (key.length > MAX_KEY_LENGTH) {
      throw new AppError('ERR_BUS_INVALID_PAYLOAD', `${name}: idempotency key longer than ${MAX_KEY_LENGTH} characters`);
    }
    const attempts = options.attempts ?? 5;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.request(name, payload, key, options.timeoutMs, byName);
      } catch (err) {
        const retryable = err instanceof AppError && err.retryable;
        if (!retryable || attempt >= attempts) throw err;
        const delay = backoffDelay(attempt, 200, 5_000);
        this.log.warn({ err, task: name, attempt }, `${name} not acknowledged; retrying in ${delay} ms`);
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /** Call the app a task name starts with and wait for its reply (one attempt, with a timeout). */
  call<N extends TaskName<C>>(name: N, payload: TaskPayload<C, N>, options: { timeoutMs?: number } = {}): Promise<TaskReply<C, N>> {
    return this.request(name, payload, undefined, options.timeoutMs) as Promise<TaskReply<C, N>>;
  }

  async close(): Promise<void> {
    for (const sub of this.subscriptions) sub.close();
    this.subscriptions.clear();
    await this.server?.close();
    this.server = undefined;
    await this.transport.close();
  }

  private request(
    name: string,
    payload: unknown,
    key: string | undefined,
    timeoutMs: number | undefined,
    byName = false,
  ): Promise<unknown> {
    const def = this.catalogue.tasks[name];
    if (def) {
      const result = def.payload.safeParse(payload);
      if (!result.success) {
        return Promise.reject(new AppError('ERR_BUS_INVALID_PAYLOAD', `${name}: ${result.error.message}`, { data: result.error.issues }));
      }
    } else if (!byName) {
      return Promise.reject(new AppError('ERR_BUS_UNKNOWN_NAME', `unknown task "${name}"`));
    } else if (!isTaskName(name)) {
      return Promise.reject(new AppError('ERR_BUS_UNKNOWN_NAME', `"${name}" is not a task name (<app>.<model>.<verb>)`));
    } else if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) {
      return Promise.reject(new AppError('ERR_BUS_INVALID_PAYLOAD', `${name}: the payload must be an object`));
    }
    const task: WireTask = { name, payload, tid: currentTid() ?? newTid(), ...(key === undefined ? {} : { key }) };
    return this.transport.request(taskApp(name), task, timeoutMs ?? this.taskTimeoutMs);
  }

  /** A task arrived: check it, dedupe by key, run its handler with the sender's TID. */
  private runTask(task: WireTask): Promise<unknown> {
    if (taskApp(task.name) !== this.app) {
      return Promise.reject(new AppError('ERR_BUS_WRONG_APP', `${task.name} is not addressed to ${this.app}`));
    }
    const def = this.catalogue.tasks[task.name];
    if (!def) {
      this.log.warn({ tid: task.tid, task: task.name }, `rejected ${task.name}: not a task of ${this.app}`);
      return Promise.reject(
        new AppError('ERR_BUS_UNKNOWN_NAME', `${this.app} has no task "${task.name}" (it is not in ${this.app}'s catalogue)`),
      );
    }
    const handler = this.handlers.get(task.name);
    if (!handler) return Promise.reject(new AppError('ERR_BUS_NO_HANDLER', `${this.app} has no handler for ${task.name}`));
    const forbidden = findForbiddenKey(task.payload);
    const parsed = forbidden === undefined ? def.payload.safeParse(task.payload) : undefined;
    if (!parsed?.success) {
      const why = forbidden === undefined ? (parsed?.error.message ?? '') : `forbidden key "${forbidden}"`;
      this.log.warn({ tid: task.tid, task: task.name }, `rejected ${task.name}: invalid payload`);
      return Promise.reject(new AppError('ERR_BUS_INVALID_PAYLOAD', `${task.name}: ${why}`, { data: parsed?.error.issues }));
    }
    const key = task.key;
    const durable = this.server?.taskKeys;
    if (key !== undefined) {
      if (key.length > MAX_KEY_LENGTH) {
        return Promise.reject(
          new AppError('ERR_BUS_INVALID_PAYLOAD', `${task.name}: idempotency key longer than ${MAX_KEY_LENGTH} characters`),
        );
      }
      const done = durable?.get(key);
      if (done) return Promise.resolve(done.reply);
      if (this.accepted.has(key)) return Promise.resolve(this.accepted.get(key));
      const running = this.inFlight.get(key);
      if (running) return running;
    }
    const run = withTid(task.tid, () => Promise.resolve().then(() => handler(parsed.data, { tid: task.tid, key })));
    if (key === undefined) return run;
    this.inFlight.set(key, run);
    return run.then(
      (reply) => {
        this.inFlight.delete(key);
        if (durable) durable.put(key, reply);
        else {
          this.accepted.set(key, reply);
          if (this.accepted.size > DEDUPE_KEYS) this.accepted.delete(this.accepted.keys().next().value as string);
        }
        return reply;
      },
      (err: unknown) => {
        this.inFlight.delete(key);
        throw err;
      },
    );
  }
}
