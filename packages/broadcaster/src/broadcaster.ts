import { backoffDelay, type BatchEvent, type Bus, type WireEvent } from '@steem-bot/bus';
import {
  APPLIED_INDEX,
  blockOfPosition,
  type Catalogue,
  catalogue,
  indexOfPosition,
  type Logger,
  newTid,
  positionOf,
} from '@steem-bot/config';

import { blockNumFromId, type ChainBlock } from './chain-types';
import type { Checkpoint, CheckpointFile } from './checkpoint';
import { blockEvents } from './events';
import type { BlockFetcher } from './fetcher';
import type { NodePool } from './nodes';

export interface BroadcasterOptions {
  bus: Bus<Catalogue>;
  pool: NodePool;
  fetcher: BlockFetcher;
  checkpoint: CheckpointFile;
  mode: 'irreversible' | 'head';
  startBlock: number | 'head' | 'irreversible';
  /** How often node heads are polled (and how long to wait when caught up). */
  pollMs: number;
  logger: Logger;
  /** Blocks streamed between two looks at the target (LIB or head). */
  chunk?: number;
}

// Head mode remembers this many published blocks to find the common ancestor of a fork.
const RECENT = 500;

/**
 * Streams blocks in chain order from the node pool and publishes one bus event per operation,
 * named by its type, then block.applied; checkpoints each block. Never skips a block: a block
 * that does not continue the chain is fetched again (irreversible mode) or treated as a fork
 * (head mode: block.reverted for the orphaned blocks, then the replacements).
 */
export class Broadcaster {
  private readonly log: Logger;
  private last: Checkpoint | undefined;
  private lastTimestamp: string | undefined;
  private recent: Array<{ num: number; id: string }> = [];
  private stopping = false;
  private loop: Promise<void> | undefined;
  private poller: NodeJS.Timeout | undefined;
  private reporter: NodeJS.Timeout | undefined;
  private target: number | undefined;
  private savedAt = 0;
  /** Position of the last event the bus accepted: a block retried after an error skips what went out. */
  private published = 0;

  constructor(private readonly options: BroadcasterOptions) {
    this.log = options.logger.child({ component: 'stream' });
  }

  async start(): Promise<void> {
    const { bus, pool, checkpoint } = this.options;
    this.last = checkpoint.load();
    await pool.pollHeads();
    let first: number;
    if (this.last) {
      first = this.last.block_num + 1;
      this.log.info({ block: this.last.block_num }, `resuming after checkpointed block ${this.last.block_num}`);
    } else {
      first = await this.resolveStart();
      this.log.info({ block: first }, `no checkpoint: starting at block ${first} (STEEM_START_BLOCK=${this.options.startBlock})`);
    }
    bus.handle('broadcaster.status.get', () => this.status());
    this.published = this.last?.position ?? positionOf(first - 1, APPLIED_INDEX);
    await bus.serve({
      floor: this.published,
      backfill: (after, until, names) => this.backfill(after, until, names),
    });
    // The stream is durable and may be ahead of the checkpoint (saved at most every 250 ms):
    // the blocks in between are fetched again and only what the stream lacks is appended.
    this.published = Math.max(this.published, bus.head ?? 0);
    this.poller = setInterval(() => void pool.pollHeads(), this.options.pollMs);
    this.reporter = setInterval(() => this.log.info(this.status(), 'status'), 60_000);
    this.poller.unref();
    this.reporter.unref();
    this.loop = this.run(first);
  }

  /** Stop after the block being published; the checkpoint is then that block's. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.poller);
    clearInterval(this.reporter);
    await this.loop;
    this.saveCheckpoint(true);
  }

  status(): {
    mode: 'irreversible' | 'head';
    current_block: number | null;
    head_block: number | null;
    irreversible_block: number | null;
    lag_blocks: number | null;
    lag_seconds: number | null;
    nodes: ReturnType<NodePool['health']>;
  } {
    const best = this.options.pool.best();
    const current = this.last?.block_num ?? null;
    const target = this.options.mode === 'head' ? best?.head : best?.lib;
    return {
      mode: this.options.mode,
      current_block: current,
      head_block: best?.head ?? null,
      irreversible_block: best?.lib ?? null,
      lag_blocks: current !== null && target !== undefined ? Math.max(0, target - current) : null,
      lag_seconds: this.lastTimestamp ? Math.max(0, (Date.now() - Date.parse(`${this.lastTimestamp}Z`)) / 1000) : null,
      nodes: this.options.pool.health(),
    };
  }

  private async resolveStart(): Promise<number> {
    const start = this.options.startBlock;
    if (typeof start === 'number') return start;
    for (let attempt = 0; ; attempt++) {
      const best = this.options.pool.best();
      if (best) return start === 'head' ? best.head : best.lib;
      if (attempt === 0) this.log.warn(`no node answers yet: waiting for one to resolve STEEM_START_BLOCK=${start} (not ready until then)`);
      await new Promise((r) => setTimeout(r, backoffDelay(attempt, 500, 30_000)));
      await this.options.pool.pollHeads();
    }
  }

  private async run(first: number): Promise<void> {
    let next = first;
    const stopped = (): boolean => this.stopping;
    while (!this.stopping) {
      const best = this.options.pool.best();
      this.target = best && (this.options.mode === 'head' ? best.head : best.lib);
      if (this.target === undefined || next > this.target) {
        await new Promise((r) => setTimeout(r, Math.min(this.options.pollMs, 1000)));
        continue;
      }
      const to = Math.min(this.target, next + (this.options.chunk ?? 2000) - 1);
      try {
        for await (const block of this.options.fetcher.range(next, to, stopped)) {
          if (this.last && block.previous !== this.last.block_id) {
            next = await this.discontinuity(block);
            break;
          }
          await this.publish(block);
          next = blockNumFromId(block.block_id) + 1;
        }
      } catch (err) {
        if (this.stopping) break;
        this.log.error({ err }, `streaming failed at block ${next}; retrying`);
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  private async publish(block: ChainBlock): Promise<void> {
    const num = blockNumFromId(block.block_id);
    let position = this.last?.position ?? 0;
    const batch: Array<BatchEvent<Catalogue>> = [];
    for (const event of blockEvents(block, num)) {
      // After a fork the replacement blocks continue above the reverted ones (positions only grow).
      position = Math.max(position + 1, event.pos);
      if (position <= this.published) continue; // already in the stream (appended before a crash or an error)
      // Op names come from the chain: one outside the catalogue is logged and left out.
      if (!(event.name in catalogue.events)) {
        this.log.error({ op: event.name, block: num }, `op type ${event.name} is not in the catalogue; not published`);
        continue;
      }
      batch.push({ name: event.name as 'comment', payload: event.payload as never, position, tid: newTid() });
    }
    try {
      // One transaction per block: a crash leaves the stream at a block boundary.
      await this.options.bus.publishBatch(batch);
    } catch (err) {
      throw Object.assign(err as Error, { block: num });
    }
    this.published = Math.max(this.published, position);
    this.last = { block_num: num, block_id: block.block_id, position };
    this.lastTimestamp = block.timestamp;
    this.saveCheckpoint(num >= (this.target ?? num));
    if (this.options.mode === 'head') {
      this.recent.push({ num, id: block.block_id });
      if (this.recent.length > RECENT) this.recent.shift();
    }
  }

  /**
   * Persist the last published block: at once when caught up, at most every 250 ms while
   * catching up (a rename per block would cost more than publishing it). After a crash the
   * blocks published since are published again; subscribers drop them by position.
   */
  private saveCheckpoint(now: boolean): void {
    if (!this.last || (!now && Date.now() - this.savedAt < 250)) return;
    this.options.checkpoint.save(this.last);
    this.savedAt = Date.now();
  }

  /**
   * `block` does not continue the last published one. In irreversible mode a node lied: drop it
   * and fetch again. In head mode it is a fork: walk back to the common ancestor, publishing
   * block.reverted for each orphaned block, and go on from there. Returns the next block number.
   */
  private async discontinuity(block: ChainBlock): Promise<number> {
    const last = this.last as Checkpoint;
    const num = blockNumFromId(block.block_id);
    if (this.options.mode === 'irreversible') {
      this.log.warn(
        { block: num, previous: block.previous, expected: last.block_id },
        `block ${num} does not continue block ${last.block_num}; fetching it again`,
      );
      await new Promise((r) => setTimeout(r, 200));
      return num;
    }
    while (this.recent.length > 0) {
      const top = this.recent[this.recent.length - 1] as { num: number; id: string };
      const canonical = await this.options.fetcher.block(top.num, () => this.stopping);
      if (canonical.block_id === top.id) break;
      this.recent.pop();
      const position = this.published + 1;
      await this.options.bus.publish(
        'block.reverted',
        { block_num: top.num, block_id: top.id, replaced_by: canonical.block_id },
        { position, tid: newTid() },
      );
      this.published = position;
      this.last = { block_num: top.num - 1, block_id: canonical.previous, position };
      this.saveCheckpoint(true);
      this.log.warn({ block: top.num, reverted: top.id, by: canonical.block_id }, `fork: block ${top.num} reverted`);
    }
    return (this.last?.block_num ?? num - 1) + 1;
  }

  /** Events in (after, until] below the stream's retention floor: fetched again from the chain, for one subscriber. */
  private async *backfill(after: number, until: number, names: ReadonlySet<string>): AsyncGenerator<WireEvent> {
    const from = blockOfPosition(after) + (indexOfPosition(after) === APPLIED_INDEX ? 1 : 0);
    for await (const block of this.options.fetcher.range(from, blockOfPosition(until), () => this.stopping)) {
      for (const e of blockEvents(block, blockNumFromId(block.block_id))) {
        if (e.pos > after && e.pos <= until && names.has(e.name))
          yield { name: e.name, payload: e.payload, pos: e.pos, tid: newTid(), ts: Date.now() };
      }
    }
  }
}
