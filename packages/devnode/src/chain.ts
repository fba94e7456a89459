import type { ApiBlock, ApiTransaction } from './convert';
import type { Fault } from './faults';
import { SyntheticBlocks } from './synthetic';

export interface ChainOptions {
  /** Contiguous real blocks, in block_api rendering. */
  blocks: ApiBlock[];
  /** How many synthetic blocks follow the real ones. */
  synthetic: number;
  /** Empty blocks after the synthetic ones (default 0): the chain goes on without ops of its own. */
  emptyTail?: number;
  seed: number;
  opsPerBlock: readonly [number, number];
  /** One new block every this many ms; 0 = every block available at once. */
  intervalMs: number;
  /** How far the last irreversible block trails the head. */
  libDistance: number;
  /** Blocks available when the node starts (default 1). */
  initialBlocks: number;
  now: () => number;
}

const CACHE = 4096;

/** The chain a devnode serves: real blocks, then synthetic ones, revealed as time passes. */
export class Chain {
  readonly first: number;
  readonly last: number;
  /** The last block with ops of its own; after it come `emptyTail` empty blocks (and included transactions). */
  readonly lastWithOps: number;
  private readonly real: ApiBlock[];
  private readonly synthetic: SyntheticBlocks;
  private readonly cache = new Map<string, ApiBlock>();
  private readonly startedAt: number;
  private frozenHead: number | undefined;
  /** Accepted transactions, by the block that includes them (appended after its own ones). */
  private readonly included = new Map<number, Array<{ id: string; trx: ApiTransaction }>>();
  faults: Fault[] = [];

  constructor(private readonly options: ChainOptions) {
    this.real = options.blocks;
    const lastReal = this.real[this.real.length - 1] as ApiBlock;
    this.first = Number.parseInt((this.real[0] as ApiBlock).block_id.slice(0, 8), 16);
    this.lastWithOps = this.first + this.real.length - 1 + options.synthetic;
    this.last = this.lastWithOps + (options.emptyTail ?? 0);
    this.synthetic = new SyntheticBlocks({ seed: options.seed, opsPerBlock: options.opsPerBlock }, lastReal, this.real);
    this.startedAt = options.now();
  }

  /** The head block number now (frozen while a `stale` fault is active). */
  head(): number {
    const { intervalMs, initialBlocks, now } = this.options;
    const elapsed = intervalMs === 0 ? Number.MAX_SAFE_INTEGER : Math.floor((now() - this.startedAt) / intervalMs);
    const moving = Math.min(this.last, this.first + initialBlocks - 1 + elapsed);
    const stale = this.faults.find((f) => f.spec.kind === 'stale' && f.active(moving, now()));
    if (stale) this.frozenHead ??= moving;
    else this.frozenHead = undefined;
    const head = this.frozenHead ?? moving;
    // On a fork, the node's head is the tip of its branch until the fork ends.
    const fork = this.faults.find((f) => f.spec.kind === 'fork' && (f.spec.fromBlock ?? this.first) <= head && f.active(head, now()));
    return fork ? Math.min(head, (fork.spec.fromBlock ?? this.first) + (fork.spec.depth ?? 1) - 1) : head;
  }

  lib(): number {
    return Math.max(this.first, this.head() - this.options.libDistance);
  }

  /** Block `num` as this node sees it now, or null when it is not produced (or not held) here. */
  block(num: number): ApiBlock | null {
    const head = this.head();
    if (!Number.isSafeInteger(num) || num < this.first || num > head) return null;
    const fork = this.activeFork(num, head);
    return fork ? this.forkBlock(num, fork) : this.canonical(num);
  }

  /**
   * Include a transaction in the next block (head + 1, not produced yet, so no one has seen it
   * without the transaction). Returns that block's number, or null past the end of the chain.
   */
  include(id: string, trx: ApiTransaction): number | null {
    const num = this.head() + 1;
    if (num > this.last) return null;
    const list = this.included.get(num) ?? [];
    list.push({ id, trx });
    this.included.set(num, list);
    return num;
  }

  /** Timestamp of block `num` in ms (real or synthetic), whether produced yet or not. */
  timeOf(num: number): number {
    return Date.parse(`${this.plain(Math.min(num, this.last)).timestamp}Z`) + Math.max(0, num - this.last) * 3000;
  }

  private canonical(num: number): ApiBlock {
    const extra = this.included.get(num);
    if (!extra) return this.plain(num);
    return this.cached(`i${num}`, () => {
      const base = this.plain(num);
      return {
        ...base,
        transactions: [...base.transactions, ...extra.map((e) => e.trx)],
        transaction_ids: [...base.transaction_ids, ...extra.map((e) => e.id)],
      };
    });
  }

  private plain(num: number): ApiBlock {
    const index = num - this.first;
    if (index < this.real.length) return this.real[index] as ApiBlock;
    return this.cached(`c${num}`, () =>
      this.synthetic.block(
        num,
        num - 1 < this.first + this.real.length ? (this.real[index - 1] as ApiBlock).block_id : this.synthetic.id(num - 1),
        '',
        num > this.lastWithOps,
      ),
    );
  }

  /** An active `fork` fault whose range covers `num`. */
  private activeFork(num: number, head: number): Fault | undefined {
    return this.faults.find((f) => {
      const at = f.spec.fromBlock ?? this.first;
      return f.spec.kind === 'fork' && num >= at && num < at + (f.spec.depth ?? 1) && f.active(head, this.options.now());
    });
  }

  private forkBlock(num: number, fault: Fault): ApiBlock {
    const at = fault.spec.fromBlock ?? this.first;
    const branch = `fork-${at}`;
    const previous = num === at ? this.canonical(num - 1).block_id : this.synthetic.id(num - 1, branch);
    return this.cached(`${branch}-${num}`, () => this.synthetic.block(num, previous, branch));
  }

  private cached(key: string, make: () => ApiBlock): ApiBlock {
    let block = this.cache.get(key);
    if (!block) {
      block = make();
      this.cache.set(key, block);
      if (this.cache.size > CACHE) this.cache.delete(this.cache.keys().next().value as string);
    }
    return block;
  }
}
