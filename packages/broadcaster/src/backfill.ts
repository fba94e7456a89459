import type { WireEvent } from '@steem-bot/bus';
import { APPLIED_INDEX, blockOfPosition, type Logger, newTid, POSITIONS_PER_BLOCK } from '@steem-bot/config';

import { blockNumFromId } from './chain-types';
import { blockEvents } from './events';
import type { BlockFetcher } from './fetcher';

export interface BackfillOptions {
  /** At most this many backfills fetch at once; the others wait for a slot (or their subscriber to leave). */
  max: number;
  logger: Logger;
  /** The broadcaster is stopping. */
  stopped: () => boolean;
}

/**
 * The events a resuming subscriber missed that left the bus's window, refetched from the chain.
 * Each backfill belongs to one subscriber and ends when it leaves (the bus aborts its signal);
 * a few run at once; their requests never count against a node (a subscriber may ask for blocks
 * no node has).
 */
export class Backfills {
  private active = 0;
  private readonly queue: Array<() => void> = [];
  private readonly log: Logger;

  constructor(
    private readonly fetcher: BlockFetcher,
    private readonly options: BackfillOptions,
  ) {
    this.log = options.logger.child({ component: 'backfill' });
  }

  /** Backfills fetching now, and waiting for a slot. */
  get counts(): { running: number; waiting: number } {
    return { running: this.active, waiting: this.queue.length };
  }

  /** Events in (after, until] named in `names`, in order; stops when `signal` aborts. */
  async *events(after: number, until: number, names: ReadonlySet<string>, signal: AbortSignal): AsyncGenerator<WireEvent> {
    if (!(await this.acquire(signal))) return;
    const stopped = (): boolean => signal.aborted || this.options.stopped();
    // A position before the chain's first block (block 1; `from: 0`) means "from the first block".
    const from = Math.max(1, blockOfPosition(after) + (after % POSITIONS_PER_BLOCK === APPLIED_INDEX ? 1 : 0));
    const to = blockOfPosition(until);
    this.log.info({ from, to }, `backfill for a resuming subscriber: blocks ${from}..${to}`);
    try {
      for await (const block of this.fetcher.range(from, to, stopped, { count: false, signal })) {
        for (const e of blockEvents(block, blockNumFromId(block.block_id))) {
          if (e.pos > after && e.pos <= until && names.has(e.name))
            yield { name: e.name, payload: e.payload, pos: e.pos, tid: newTid(), ts: Date.now() };
        }
      }
    } catch (err) {
      if (!stopped()) throw err;
    } finally {
      if (signal.aborted) this.log.info({ from, to }, 'backfill stopped: its subscriber left');
      this.release();
    }
  }

  private acquire(signal: AbortSignal): Promise<boolean> {
    if (signal.aborted) return Promise.resolve(false);
    if (this.active < this.options.max) {
      this.active++;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const grant = (): void => {
        signal.removeEventListener('abort', cancel);
        this.active++;
        resolve(true);
      };
      const cancel = (): void => {
        const i = this.queue.indexOf(grant);
        if (i >= 0) this.queue.splice(i, 1);
        resolve(false);
      };
      this.queue.push(grant);
      signal.addEventListener('abort', cancel, { once: true });
    });
  }

  private release(): void {
    this.active--;
    this.queue.shift()?.();
  }
}
