import type { BatchEvent, Bus } from '@steem-bot/bus';
import { APPLIED_INDEX, type Catalogue, catalogue, type Logger, newTid, positionOf } from '@steem-bot/config';

import { Backfills } from './backfill';
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
  /** Backfills for resuming subscribers fetching at once (default 2). */
  backfills?: number;
  /**
   * The stream stopped for good (a published block is off the canonical chain): the process
   * should exit with EXIT_OFF_CHAIN. Status and log say why before this is called.
   */
  onHalt?: (reason: string) => void;
}

/** Exit code of a broadcaster that found a block it published off the canonical chain (EX_DATAERR). */
export const EXIT_OFF_CHAIN = 65;

// A block that does not continue the last published one this many times in a row (irreversible
// mode) means the published one is not on the chain the nodes serve.
const STRIKES = 3;

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
  private halted: string | undefined;
  private mismatch = { block: 0, count: 0 };

  /** Where the stream starts is not known yet (no checkpoint, no node has answered). */
  private resolving = false;
  /** The backfills of resuming subscribers. */
  readonly backfills: Backfills;

  constructor(private readonly options: BroadcasterOptions) {
    this.log = options.logger.child({ component: 'stream' });
    this.backfills = new Backfills(options.fetcher, {
      max: options.backfills ?? 2,
      logger: options.logger,
      stopped: () => this.stopping,
    });
  }

  async start(): Promise<void> {
    const { bus, pool, checkpoint } = this.options;
    this.last = checkpoint.load();
    if (this.last && this.options.mode === 'head') {
      // What head mode needs to walk back across a restart (a checkpoint of an older version has
      // only the last block).
      const ids = this.last.recent ?? [];
      if (ids.at(-1) !== this.last.block_id) ids.push(this.last.block_id);
      this.recent = ids.slice(-RECENT).map((id) => ({ num: blockNumFromId(id), id }));
    }
    if (pool.size === 1)
      this.log.warn(
        'one Steem node configured (STEEM_NODES): its answers decide head, LIB and every block alone; configure three or more so that no single node does',
      );
    bus.handle('broadcaster.status.get', () => this.status());
    // Serve at once, before any node has answered, so that the status can say why nothing
    // streams. Where the stream starts may need a node (STEEM_START_BLOCK=head|irreversible and no
    // checkpoint): the bus's floor then waits for it, and so do resuming subscribers.
    const start = this.options.startBlock;
    const known = this.last ? this.last.block_num + 1 : typeof start === 'number' ? start : undefined;
    let settle: (first: number) => void = () => undefined;
    const first = known !== undefined ? Promise.resolve(known) : new Promise<number>((resolve) => (settle = resolve));
    this.published = this.last?.position ?? positionOf((known ?? 1) - 1, APPLIED_INDEX);
    await bus.serve({
      floor: known !== undefined ? this.published : first.then((n) => positionOf(n - 1, APPLIED_INDEX)),
      backfill: (after, until, names, signal) => this.backfills.events(after, until, names, signal),
    });
    // The stream is durable and may be ahead of the checkpoint (saved at most every 250 ms):
    // the blocks in between are fetched again and only what the stream lacks is appended.
    this.published = Math.max(this.published, bus.head ?? 0);
    this.poller = setInterval(() => void pool.pollHeads(), this.options.pollMs);
    this.reporter = setInterval(() => this.log.info(this.status(), 'status'), 60_000);
    this.poller.unref();
    this.reporter.unref();
    this.loop = (async () => {
      await pool.pollHeads();
      if (this.last) this.log.info({ block: this.last.block_num }, `resuming after checkpointed block ${this.last.block_num}`);
      const n = known ?? (await this.resolveStart());
      if (n === undefined) return; // stopped while waiting for a node
      if (!this.last) this.log.info({ block: n }, `no checkpoint: starting at block ${n} (STEEM_START_BLOCK=${start})`);
      settle(n);
      // The stream may already hold blocks past the checkpoint: those are not appended again.
      this.published = Math.max(this.last?.position ?? positionOf(n - 1, APPLIED_INDEX), bus.head ?? 0);
      await this.run(n);
    })();
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
    problem: string | null;
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
      problem: this.problem(best),
    };
  }

  /** Why the stream does not advance, in one line; null while it does. */
  private problem(best: { head: number; lib: number } | undefined): string | null {
    if (this.halted !== undefined) return `halted: ${this.halted}`;
    const failure = this.options.fetcher.failure;
    if (failure) return `every node failed: ${failure.join('; ')}`;
    if (best) return null;
    const nodes = this.options.pool
      .health()
      .map((n) => `${n.url} ${n.state}${n.lastError ? ` (${n.lastError})` : n.head === null ? ' (no answer yet)' : ''}`);
    const waiting = this.resolving ? `waiting for a node to resolve STEEM_START_BLOCK=${this.options.startBlock}; ` : '';
    return `${waiting}no healthy node: ${nodes.join('; ')}`;
  }

  /** Stop streaming for good and say so loudly: status, log, then the owner exits. */
  private halt(reason: string): void {
    if (this.halted !== undefined) return;
    this.halted = reason;
    this.stopping = true;
    this.log.fatal({ block: this.last?.block_num }, `stream halted: ${reason}`);
    this.options.onHalt?.(reason);
  }

  /** STEEM_START_BLOCK as a number, once a node has answered (the poller asks); undefined if stopped first. */
  private async resolveStart(): Promise<number | undefined> {
    const start = this.options.startBlock;
    if (typeof start === 'number') return start;
    this.resolving = true;
    try {
      for (let attempt = 0; !this.stopping; attempt++) {
        const best = this.options.pool.best();
        if (best) return start === 'head' ? best.head : best.lib;
        if (attempt === 0)
          this.log.warn(`no node answers yet: waiting for one to resolve STEEM_START_BLOCK=${start} (the status says why)`);
        await new Promise((r) => setTimeout(r, Math.min(this.options.pollMs, 1000)));
      }
      return undefined;
    } finally {
      this.resolving = false;
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
          this.mismatch.count = 0;
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
    if (this.options.mode === 'head') {
      this.recent.push({ num, id: block.block_id });
      if (this.recent.length > RECENT) this.recent.shift();
    }
    this.saveCheckpoint(num >= (this.target ?? num));
  }

  /**
   * Persist the last published block: at once when caught up, at most every 250 ms while
   * catching up (a rename per block would cost more than publishing it). After a crash the
   * blocks published since are published again; subscribers drop them by position.
   */
  private saveCheckpoint(now: boolean): void {
    if (!this.last || (!now && Date.now() - this.savedAt < 250)) return;
    const { block_num, block_id, position } = this.last;
    this.options.checkpoint.save(
      this.options.mode === 'head'
        ? { block_num, block_id, position, recent: this.recent.map((r) => r.id) }
        : { block_num, block_id, position },
    );
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
      this.mismatch = { block: num, count: this.mismatch.block === num ? this.mismatch.count + 1 : 1 };
      if (this.mismatch.count >= STRIKES) {
        this.halt(
          `block ${last.block_num} (${last.block_id}), already published as irreversible, is not on the chain the nodes serve: ` +
            `block ${num} continues ${block.previous}`,
        );
        return num;
      }
      this.log.warn(
        { block: num, previous: block.previous, expected: last.block_id },
        `block ${num} does not continue block ${last.block_num}; fetching it again`,
      );
      await new Promise((r) => setTimeout(r, 1000));
      return num;
    }
    for (;;) {
      const top = this.recent.at(-1);
      if (top === undefined) {
        this.halt(
          `a fork deeper than the ${RECENT} blocks remembered reaches below block ${last.block_num}: cannot find the common ancestor`,
        );
        return num;
      }
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
      // What we published at top.num - 1 (checked next round), not what the node says it should be.
      this.last = { block_num: top.num - 1, block_id: this.recent.at(-1)?.id ?? canonical.previous, position };
      this.saveCheckpoint(true);
      this.log.warn({ block: top.num, reverted: top.id, by: canonical.block_id }, `fork: block ${top.num} reverted`);
    }
    return (this.last?.block_num ?? num - 1) + 1;
  }
}
