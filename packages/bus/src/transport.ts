import type { WireEvent, WireTask } from './frames';

/** What a serving app gives the transport. */
export interface ServeHooks {
  /** A task or call for this app arrived; resolve with the reply once it is durably accepted. */
  onTask(task: WireTask): Promise<unknown>;
  /**
   * Events in (after, until] that fell out of the replay window, from the app's own source
   * (the broadcaster refetches them from the chain). Without it, subscribers get a gap signal.
   * One at most per subscriber; `signal` aborts when the subscriber goes away (the iterator's
   * return() may wait for a pending step, the signal does not).
   */
  backfill?(after: number, until: number, names: ReadonlySet<string>, signal: AbortSignal): AsyncIterable<WireEvent>;
}

export interface ServeOptions {
  /**
   * Events at or below this position are not in the replay window (default: now, in µs). A
   * promise when the app serves (calls, status) before it knows where its stream starts: resuming
   * subscribers wait for it; nothing may be published before it resolves.
   */
  floor?: number | Promise<number>;
}

/** The serving side of one app. */
export interface TransportServer {
  /** Send to every subscriber of the name; resolves when the publisher may go on (paced writes). */
  publish(event: WireEvent): Promise<void>;
  close(): Promise<void>;
}

/** Callbacks of one subscription. Events arrive in position order; the next waits for the previous. */
export interface SubscribeHandlers {
  onEvent(event: WireEvent): Promise<void> | void;
  /** Events in (after, resumeAt] are gone from the publisher and will not arrive. */
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
 * How the bus moves messages. The node-ipc transport is the embedded default; the in-memory one
 * serves unit tests; a broker (RabbitMQ) can implement the same contract.
 */
export interface Transport {
  serve(app: string, hooks: ServeHooks, options?: ServeOptions): Promise<TransportServer>;
  subscribe(app: string, names: readonly string[], from: number | null, handlers: SubscribeHandlers): TransportSubscription;
  /** Send a task to `app` and wait for its acknowledgement or reply (rejects with ERR_BUS_TIMEOUT). */
  request(app: string, task: WireTask, timeoutMs: number): Promise<unknown>;
  close(): Promise<void>;
}
