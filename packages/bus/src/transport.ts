import type { WireEvent, WireTask } from './frames';

/** What a serving app gives the transport. */
export interface ServeHooks {
  /** A task or call for this app arrived; resolve with the reply once it is durably accepted. */
  onTask(task: WireTask): Promise<unknown>;
  /**
   * Events in (after, until] that are below the stream's retention floor, from the app's own
   * source (the broadcaster refetches them from the chain), tied to one subscriber: the transport
   * runs at most one per subscriber and calls the iterator's `return()` when that subscriber goes
   * away, and aborts `signal` (return() may wait for a pending step; the signal does not). Without
   * it, such a subscriber gets a gap signal for exactly that range.
   */
  backfill?(after: number, until: number, names: ReadonlySet<string>, signal: AbortSignal): AsyncIterable<WireEvent>;
}

export interface ServeOptions {
  /**
   * A new stream starts above this position: events at or below it are not in it (default 0).
   * A stream whose head is below it moves its floor (and head) up to it. A promise when the app
   * serves (calls, status) before it knows where its stream starts: resuming subscribers wait for
   * it, and nothing may be appended before it resolves.
   */
  floor?: number | Promise<number>;
}

/** Where a stream stands: the operator's view (`npm run status`). */
export interface StreamInfo {
  /** Position of the newest event appended. */
  head: number;
  /** Every event at or below it is gone (retention) or predates the stream. */
  floor: number;
  /** Bytes of the frames kept. */
  bytes: number;
}

/** Where a receiver remembers the tasks it accepted, by idempotency key, with their replies. */
export interface TaskKeyStore {
  get(key: string): { reply: unknown } | undefined;
  put(key: string, reply: unknown): void;
}

/** The serving side of one app: its stream and its tasks. */
export interface TransportServer {
  /**
   * Append events to this app's stream, all or none (one transaction), positions strictly above
   * the head; resolves once they are durable. Subscribers read the stream at their own pace: the
   * publisher never waits for them.
   */
  append(events: readonly WireEvent[]): Promise<void>;
  /** Position of the newest event appended (the floor of a stream never appended to). */
  readonly head: number;
  /** Head, retention floor and bytes of the stream. */
  info(): StreamInfo;
  /** Durable dedupe of task keys; without it the bus remembers recent keys in memory only. */
  readonly taskKeys?: TaskKeyStore;
  close(): Promise<void>;
}

/** Callbacks of one subscription. Events arrive in position order; the next waits for the previous. */
export interface SubscribeHandlers {
  onEvent(event: WireEvent): Promise<void> | void;
  /** Events in (after, resumeAt] are gone from the publisher's stream and will not arrive. */
  onGap?(after: number | null, resumeAt: number): void;
}

export interface TransportSubscription {
  /** Position of the last event handled. */
  readonly position: number | null;
  /** Resolves once the publisher has confirmed the subscription (first connection). */
  readonly ready: Promise<void>;
  close(): void;
}

/**
 * How the bus moves messages. The node-ipc transport is the embedded default (a SQLite stream per
 * publishing app); the in-memory one serves unit tests; a broker (RabbitMQ stream queues, whose
 * offsets are the positions) can implement the same contract.
 */
export interface Transport {
  serve(app: string, hooks: ServeHooks, options?: ServeOptions): Promise<TransportServer>;
  /** Events of `app` named in `names`, after position `from` (null: from its head on). */
  subscribe(app: string, names: readonly string[], from: number | null, handlers: SubscribeHandlers): TransportSubscription;
  /** Send a task to `app` and wait for its acknowledgement or reply (rejects with ERR_BUS_TIMEOUT). */
  request(app: string, task: WireTask, timeoutMs: number): Promise<unknown>;
  close(): Promise<void>;
}
