import type { Logger } from '@steem-bot/config';

import { blockProblem, type ChainBlock } from './chain-types';
import { AllNodesFailed, type NodePool } from './nodes';

export interface FetcherOptions {
  /** Blocks per JSON-RPC batch. */
  batch: number;
  /** At most this many blocks fetched ahead of the one being published (bounds memory). */
  ahead: number;
  logger: Logger;
  /** Wait before retrying when every node failed (attempt -> ms). */
  retryDelay: (attempt: number) => number;
  sleep?: (ms: number) => Promise<void>;
}

const getBlock = (n: number): { method: string; params: unknown } => ({ method: 'condenser_api.get_block', params: [n] });

/**
 * Fetches validated blocks, in order, never skipping one: each answer must be the block asked for
 * (number from block_id), chained by `previous` within a batch; anything else goes to the next
 * node, and when every node fails the same request is retried after a backoff.
 */
export class BlockFetcher {
  private readonly log: Logger;
  private readonly sleep: (ms: number) => Promise<void>;
  private failing = false;
  private spread = 0;

  constructor(
    private readonly pool: NodePool,
    private readonly options: FetcherOptions,
  ) {
    this.log = options.logger.child({ component: 'fetcher' });
    this.sleep = options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  /** One block, from whichever node gives a valid one; retried until one does (or `stopped`). */
  block(n: number, stopped: () => boolean = () => false): Promise<ChainBlock> {
    return this.persist(() => this.pool.request([getBlock(n)], ([b]) => blockProblem(b, n) ?? (b as ChainBlock), this.spread++), stopped);
  }

  /**
   * Blocks `from`..`to` in order, fetched ahead in batches spread over the usable nodes. A batch
   * answered only in part (a bad block in the middle) keeps its valid prefix and asks again for
   * the rest. Stops early (without error) when `stopped()` turns true.
   */
  async *range(from: number, to: number, stopped: () => boolean = () => false): AsyncGenerator<ChainBlock> {
    const { batch, ahead } = this.options;
    const pending: Array<{ start: number; end: number; promise: Promise<ChainBlock[]> }> = [];
    const request = (start: number, end: number): { start: number; end: number; promise: Promise<ChainBlock[]> } => {
      const promise = this.persist(() => this.fetchBatch(start, end), stopped);
      promise.catch(() => undefined); // awaited below; never an unhandled rejection
      return { start, end, promise };
    };
    let queued = from;
    const fill = (): void => {
      while (queued <= to && queued - (pending[0]?.start ?? queued) < ahead) {
        const end = Math.min(to, queued + batch - 1);
        pending.push(request(queued, end));
        queued = end + 1;
      }
    };
    fill();
    while (pending.length > 0) {
      const head = pending.shift() as (typeof pending)[number];
      const blocks = await head.promise;
      const got = head.start + blocks.length - 1;
      if (got < head.end) pending.unshift(request(got + 1, head.end));
      fill();
      for (const b of blocks) {
        if (stopped()) return;
        yield b;
      }
    }
  }

  /** Blocks start..end from one node: the valid, chained prefix of its answer (at least one block). */
  private fetchBatch(start: number, end: number): Promise<ChainBlock[]> {
    const calls = [];
    for (let n = start; n <= end; n++) calls.push(getBlock(n));
    return this.pool.request(
      calls,
      (results) => {
        let valid = 0;
        let problem: string | undefined;
        for (; valid < results.length; valid++) {
          problem = blockProblem(results[valid], start + valid);
          if (!problem && valid > 0 && (results[valid] as ChainBlock).previous !== (results[valid - 1] as ChainBlock).block_id)
            problem = 'previous does not match';
          if (problem) break;
        }
        return valid > 0 ? (results.slice(0, valid) as ChainBlock[]) : `block ${start}: ${problem}`;
      },
      this.spread++,
    );
  }

  /** Retry `attempt` with backoff while every node fails; one log line when that starts and ends. */
  private async persist<T>(attempt: () => Promise<T>, stopped: () => boolean): Promise<T> {
    for (let tries = 0; ; tries++) {
      try {
        const value = await attempt();
        if (this.failing) {
          this.failing = false;
          this.log.info('a node answers again; streaming resumes');
        }
        return value;
      } catch (err) {
        if (!(err instanceof AllNodesFailed) || stopped()) throw err;
        const delay = this.options.retryDelay(tries);
        if (!this.failing) {
          this.failing = true;
          this.log.warn({ reasons: err.reasons }, `every node failed; retrying with backoff (next in ${delay} ms), no block is skipped`);
        }
        await this.sleep(delay);
      }
    }
  }
}
