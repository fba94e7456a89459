import type { GapFrame, WireEvent } from './frames';
import type { SubscribeHandlers } from './transport';

type Item = { event: WireEvent } | { gap: GapFrame };

// Stop taking input past this many queued items; resume when the queue is down to the low mark.
const QUEUE_HIGH = 2048;
const QUEUE_LOW = 256;

/** How a transport stops and restarts the flow of events into a subscription. */
export interface FlowControl {
  pause(): void;
  resume(): void;
}

/**
 * The subscriber side of a subscription, shared by the transports: events are handled one at a
 * time in arrival order, the position advances after each handler settles, and anything at or
 * below the position (or the one in flight) is dropped, so overlapping replays are harmless.
 * `onEvent` must not throw; the Bus wraps handlers to log their errors.
 */
export class OrderedDelivery {
  position: number | null;
  private queue: Item[] = [];
  private draining = false;
  private stopped = false;
  private inFlight: number | null = null;

  constructor(
    private readonly handlers: SubscribeHandlers,
    from: number | null,
    private readonly flow: FlowControl,
  ) {
    this.position = from;
  }

  pushEvent(event: WireEvent): void {
    if (event.pos <= Math.max(this.position ?? -1, this.inFlight ?? -1)) return;
    this.push({ event });
  }

  pushGap(gap: GapFrame): void {
    this.push({ gap });
  }

  /** Forget what is queued (the connection dropped; it comes again after `position`). */
  reset(): void {
    this.queue = [];
  }

  stop(): void {
    this.stopped = true;
    this.queue = [];
  }

  private push(item: Item): void {
    if (this.stopped) return;
    this.queue.push(item);
    if (this.queue.length >= QUEUE_HIGH) this.flow.pause();
    if (!this.draining) this.drain();
  }

  /**
   * Handle queued items in order. Synchronous while handlers return plain values; a handler
   * that returns a promise suspends the loop until it settles (this keeps sync handlers fast).
   */
  private drain(): void {
    this.draining = true;
    for (let item = this.queue.shift(); item !== undefined && !this.stopped; item = this.queue.shift()) {
      if ('gap' in item) {
        this.handlers.onGap?.(item.gap.after, item.gap.resumeAt);
        this.advance(item.gap.resumeAt);
        continue;
      }
      const pos = item.event.pos;
      this.inFlight = pos;
      const result = this.handlers.onEvent(item.event);
      if (result instanceof Promise) {
        const resume = (): void => {
          this.advance(pos);
          this.drain();
        };
        result.then(resume, resume);
        return;
      }
      this.advance(pos);
    }
    this.draining = false;
    this.flow.resume();
  }

  private advance(pos: number): void {
    this.inFlight = null;
    this.position = Math.max(this.position ?? -1, pos);
    if (this.queue.length === QUEUE_LOW) this.flow.resume();
  }
}
