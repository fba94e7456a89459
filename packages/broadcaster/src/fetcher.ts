import type { Logger } from '@steem-bot/config';

import { blockNumFromId, blockProblem, type ChainBlock } from './chain-types';
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
  /**
   * Every block's id must be confirmed by a second node (not failing, not suspect)
   * before it is returned: irreversible mode with two or more nodes configured.
   */
  confirm?: boolean;
}

/** Whose request this is: the stream's (counted against nodes) or a subscriber's backfill (not). */
export interface RangeOptions {
  /** Count failures against the nodes (default true); a backfill's impossible range is not the node's fault. */
  count?: boolean;
  /** Stops the range (its waits included) at once. */
  signal?: AbortSignal;
}

const getBlock = (n: number): { method: string; params: unknown } => ({ method: 'condenser_api.get_block', params: [n] });
const getHeader = (n: number): { method: string; params: unknown } => ({ method: 'condenser_api.get_block_header', params: [n] });
const idOf = (value: unknown, key: 'previous' | 'block_id'): string | undefined => {
  const id = (value as Record<string, unknown> | null)?.[key];
  return typeof id === 'string' && /^[0-9a-f]{40}$/.test(id) ? id : undefined;
};

/** Leading entries on which two lists of ids agree. */
function agreeing(a: Array<string | undefined>, b: Array<string | undefined>): number {
  let k = 0;
  while (k < a.length && a[k] !== undefined && a[k] === b[k]) k++;
  return k;
}

/** No second node confirmed a block: none could (`disagreement` false), or one said otherwise with no majority. */
class NoConfirmation extends AllNodesFailed {
  constructor(
    reasons: string[],
    readonly disagreement: boolean,
  ) {
    super(reasons);
  }
}

/** A node's answer was outvoted by two others: fetch the batch again from another node. */
class Outvoted {
  constructor(readonly url: string) {}
}

/**
 * Fetches validated blocks, in order, never skipping one: each answer must be the block asked for
 * (number from block_id), chained by `previous` within a batch; anything else goes to the next
 * node, and when every node fails the same request is retried after a backoff.
 */
export class BlockFetcher {
  private readonly log: Logger;
  private readonly sleep: (ms: number) => Promise<void>;
  private failing = false;
  private lastReasons: string[] = [];
  private spread = 0;

  constructor(
    private readonly pool: NodePool,
    private readonly options: FetcherOptions,
  ) {
    this.log = options.logger.child({ component: 'fetcher' });
    this.sleep = options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  }

  /** While every node fails: why, per node (what the status reports); undefined otherwise. */
  get failure(): string[] | undefined {
    return this.failing ? this.lastReasons : undefined;
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
  async *range(from: number, to: number, stopped: () => boolean = () => false, options: RangeOptions = {}): AsyncGenerator<ChainBlock> {
    const { batch, ahead } = this.options;
    const pending: Array<{ start: number; end: number; promise: Promise<ChainBlock[]> }> = [];
    const request = (start: number, end: number): { start: number; end: number; promise: Promise<ChainBlock[]> } => {
      const promise = this.persist(() => this.fetchBatch(start, end, options.count ?? true, stopped), stopped, options);
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

  /**
   * Blocks start..end from one node: the valid, chained prefix of its answer (at least one block),
   * and with `confirm`, only the part a second healthy node confirms.
   */
  private async fetchBatch(start: number, end: number, count: boolean, stopped: () => boolean = () => false): Promise<ChainBlock[]> {
    const outvoted: string[] = [];
    for (;;) {
      const { blocks, url } = await this.fetchFrom(start, end, outvoted, count);
      if (!this.options.confirm) return blocks;
      const confirmed = await this.confirmedSoon(blocks, url, count, stopped);
      if (!(confirmed instanceof Outvoted)) return confirmed;
      outvoted.push(confirmed.url);
    }
  }

  private fetchFrom(start: number, end: number, exclude: string[], count: boolean): Promise<{ blocks: ChainBlock[]; url: string }> {
    const calls = [];
    for (let n = start; n <= end; n++) calls.push(getBlock(n));
    return this.pool.request(
      calls,
      (results, url) => {
        let valid = 0;
        let problem: string | undefined;
        for (; valid < results.length; valid++) {
          problem = blockProblem(results[valid], start + valid);
          if (!problem && valid > 0 && (results[valid] as ChainBlock).previous !== (results[valid - 1] as ChainBlock).block_id)
            problem = 'previous does not match';
          if (problem) break;
        }
        return valid > 0 ? { blocks: results.slice(0, valid) as ChainBlock[], url } : `block ${start}: ${problem}`;
      },
      { start: this.spread++, exclude, count },
    );
  }

  /**
   * Confirmation, asked again (every 250 ms to 2 s) while no other node can give it now (failing,
   * in a cool-down, not there yet): the blocks in hand stay valid. A disagreement without a
   * majority goes to the caller's backoff, which fetches the batch again.
   */
  private async confirmedSoon(
    blocks: ChainBlock[],
    servedBy: string,
    count: boolean,
    stopped: () => boolean,
  ): Promise<ChainBlock[] | Outvoted> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.confirmed(blocks, servedBy, count);
      } catch (err) {
        if (!(err instanceof NoConfirmation) || err.disagreement || stopped()) throw err;
        if (attempt === 8)
          this.log.warn(
            { block: blocks[0]?.block_id },
            `no second node confirms block ${blockNumFromId((blocks[0] as ChainBlock).block_id)} yet; asking again`,
          );
        await this.sleep(Math.min(2000, 250 * attempt));
      }
    }
  }

  /**
   * The prefix of `blocks` (from `servedBy`) whose ids another node confirms: the header of
   * each next block carries the id of the one before it (`previous`), and the last block's id is
   * asked for itself (as many calls as blocks: a batch stays within the nodes' batch limit). The
   * link of the first block to the one before is the broadcaster's check. A node that cannot confirm yet (not there) is skipped; one that
   * disagrees is outvoted when two others agree against it. With no confirmation to be had, throws
   * AllNodesFailed: the batch is asked again after a backoff, nothing unconfirmed is returned.
   */
  private async confirmed(blocks: ChainBlock[], servedBy: string, count: boolean): Promise<ChainBlock[] | Outvoted> {
    const first = blockNumFromId((blocks[0] as ChainBlock).block_id);
    const last = first + blocks.length - 1;
    const ours = blocks.map((b) => b.block_id);
    const calls = [...blocks.slice(1).map((_, i) => getHeader(first + i + 1)), getBlock(last)];
    const asked = [servedBy];
    const dissent: Array<{ url: string; ids: Array<string | undefined> }> = [];
    const reasons: string[] = [];
    for (;;) {
      let answer: { url: string; ids: Array<string | undefined> };
      try {
        // A confirmation's failure is not counted against the node (its fetches and polls are):
        // under load the doubled traffic would open circuits and leave no second node at all.
        answer = await this.pool.request(
          calls,
          (results, url) => ({
            url,
            ids: [...blocks.slice(1).map((_, i) => idOf(results[i], 'previous')), idOf(results[blocks.length - 1], 'block_id')],
          }),
          { exclude: asked, confirming: true, count: false },
        );
      } catch (err) {
        if (!(err instanceof AllNodesFailed)) throw err;
        if (dissent.length > 0)
          this.log.warn(
            { block: first, ids: [{ url: servedBy, id: ours[0] }, ...dissent.map((d) => ({ url: d.url, id: d.ids[0] }))] },
            `nodes disagree about block ${first}; nothing is published until two nodes agree`,
          );
        throw new NoConfirmation([...reasons, `no second node confirmed block ${first} from ${servedBy}`], dissent.length > 0);
      }
      asked.push(answer.url);
      const k = agreeing(ours, answer.ids);
      if (k > 0) {
        if (count) for (const d of dissent) this.pool.penalize(d.url, `block ${first}: disagreed with two other nodes`);
        return blocks.slice(0, k);
      }
      if (answer.ids[0] === undefined) {
        reasons.push(`${answer.url}: cannot confirm block ${first} yet`);
        continue;
      }
      if (dissent.some((d) => d.ids[0] === answer.ids[0])) {
        if (count) this.pool.penalize(servedBy, `block ${first}: id differs from what two other nodes say`);
        this.log.warn(
          { block: first, node: servedBy },
          `node ${servedBy} served a block ${first} two other nodes contradict; fetching it elsewhere`,
        );
        return new Outvoted(servedBy);
      }
      dissent.push(answer);
      reasons.push(`${answer.url}: disagrees about block ${first}`);
    }
  }

  /**
   * Retry `attempt` with backoff while every node fails; one log line when that starts and ends.
   * A backfill's retries (count false) are its own business: they neither log nor set `failure`.
   */
  private async persist<T>(attempt: () => Promise<T>, stopped: () => boolean, options: RangeOptions = {}): Promise<T> {
    const own = options.count ?? true;
    for (let tries = 0; ; tries++) {
      try {
        const value = await attempt();
        if (own && this.failing) {
          this.failing = false;
          this.log.info('a node answers again; streaming resumes');
        }
        return value;
      } catch (err) {
        if (!(err instanceof AllNodesFailed) || stopped() || options.signal?.aborted) throw err;
        const delay = this.options.retryDelay(tries);
        if (own) {
          this.lastReasons = err.reasons;
          if (!this.failing) {
            this.failing = true;
            this.log.warn({ reasons: err.reasons }, `every node failed; retrying with backoff (next in ${delay} ms), no block is skipped`);
          }
        }
        await this.wait(delay, options.signal);
      }
    }
  }

  /** Sleep, cut short when `signal` aborts. */
  private async wait(ms: number, signal: AbortSignal | undefined): Promise<void> {
    if (!signal) return this.sleep(ms);
    if (signal.aborted) return;
    let done: () => void = () => undefined;
    const aborted = new Promise<void>((r) => (done = r));
    signal.addEventListener('abort', done, { once: true });
    try {
      await Promise.race([this.sleep(ms), aborted]);
    } finally {
      signal.removeEventListener('abort', done);
    }
  }
}
