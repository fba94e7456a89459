import type { Logger } from '@steem-bot/config';

import { type ChainProps, propsProblem } from './chain-types';
import { NodeFailure, rpcBatch, type RpcCall } from './rpc';

/**
 * healthy: used; open: failing, left for a cool-down; stale: its head is behind the agreed head,
 * or frozen while others move; suspect: its head is far ahead of the agreed head (one node alone
 * cannot move head or LIB).
 */
export type NodeState = 'healthy' | 'open' | 'stale' | 'suspect';

export interface NodeHealth {
  url: string;
  state: NodeState;
  head: number | null;
  failures: number;
  lastError: string | null;
}

export interface PoolOptions {
  timeoutMs: number;
  /** Largest answer body accepted from a node; a larger one is that node's failure. */
  maxResponseBytes?: number;
  /** A node whose head is this far behind the agreed head is stale; this far ahead, suspect. */
  staleBlocks: number;
  /** A node whose head has not moved for this long, while another's has, is stale. */
  staleMs: number;
  /** Consecutive failures that open a node's circuit. */
  failuresToOpen?: number;
  /** First cool-down of an open circuit; doubles on each re-open, up to maxCooldownMs. */
  cooldownMs?: number;
  maxCooldownMs?: number;
  logger: Logger;
  now?: () => number;
}

interface Node extends NodeHealth {
  openUntil: number;
  opens: number;
  headChangedAt: number;
  lib: number | null;
}

/** How one request is spread and counted. */
export interface RequestOptions {
  /** Index of the first node to try (rotated by the caller to spread load). */
  start?: number;
  /** Nodes not to ask (the one whose answer is being confirmed, one outvoted). */
  exclude?: readonly string[];
  /**
   * For confirmations: healthy, stale (behind, but a block it has is still evidence) and half-open
   * nodes, never a suspect one (it claims a head the others do not see).
   */
  confirming?: boolean;
  /**
   * Count failures against the node (default true). False for requests whose failure may be the
   * asker's own doing (a backfill for a subscriber's range).
   */
  count?: boolean;
}

/**
 * The value that at least two of `values` reach (the second highest), or the only one: one node
 * reporting far more than the others moves nothing.
 */
export function confirmedValue(values: number[]): number | undefined {
  const sorted = [...values].sort((a, b) => b - a);
  return sorted.length >= 2 ? sorted[1] : sorted[0];
}

/** Every node answered badly: the caller waits (with backoff) and tries again; nothing is skipped. */
export class AllNodesFailed extends Error {
  constructor(readonly reasons: string[]) {
    super(`every node failed: ${reasons.join('; ')}`);
    this.name = new.target.name;
  }
}

/**
 * The Steem nodes and their health: a circuit breaker per node (open after repeated failures,
 * half-open after a cool-down), stale detection from polled heads, and one log line per change.
 */
export class NodePool {
  private readonly nodes: Node[];
  private readonly log: Logger;
  private readonly now: () => number;

  constructor(
    urls: readonly string[],
    private readonly options: PoolOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.log = options.logger.child({ component: 'nodes' });
    this.nodes = urls.map((url) => ({
      url,
      state: 'healthy',
      head: null,
      lib: null,
      failures: 0,
      lastError: null,
      openUntil: 0,
      opens: 0,
      headChangedAt: this.now(),
    }));
  }

  /** How many nodes are configured. */
  get size(): number {
    return this.nodes.length;
  }

  health(): NodeHealth[] {
    return this.nodes.map(({ url, state, head, failures, lastError }) => ({ url, state, head, failures, lastError }));
  }

  /**
   * Head and LIB as the healthy nodes agree on them: the highest value a second healthy node
   * confirms (with one healthy node, its own). A node claiming more moves neither.
   */
  best(): { head: number; lib: number } | undefined {
    const live = this.nodes.filter((n) => n.state === 'healthy' && n.head !== null);
    if (live.length === 0) return undefined;
    return {
      head: confirmedValue(live.map((n) => n.head as number)) as number,
      lib: confirmedValue(live.map((n) => n.lib as number)) as number,
    };
  }

  /**
   * Ask every node for its head (in parallel) and re-evaluate which are stale. Nodes that fail
   * count the failure; the answer of the others stands.
   */
  async pollHeads(): Promise<void> {
    const due = this.nodes.filter((n) => n.state !== 'open' || n.openUntil <= this.now());
    await Promise.all(
      due.map(async (node) => {
        try {
          const [props] = await rpcBatch(
            node.url,
            [{ method: 'condenser_api.get_dynamic_global_properties', params: [] }],
            this.options.timeoutMs,
            this.options.maxResponseBytes,
          );
          const problem = propsProblem(props);
          if (problem) throw new NodeFailure('invalid', problem);
          const p = props as ChainProps;
          if (p.head_block_number !== node.head) node.headChangedAt = this.now();
          node.head = p.head_block_number;
          node.lib = p.last_irreversible_block_num;
          this.succeeded(node);
        } catch (err) {
          this.failed(node, err);
        }
      }),
    );
    this.evaluateStale();
  }

  /**
   * Send `calls` to the usable nodes in turn (starting at `start`, to spread load) until one
   * answers with results that `accept` finds usable (it returns a problem text otherwise).
   */
  async request<T>(
    calls: RpcCall[],
    accept: (results: unknown[], url: string) => T | string,
    options: number | RequestOptions = 0,
  ): Promise<T> {
    const { start = 0, exclude = [], confirming = false, count = true } = typeof options === 'number' ? { start: options } : options;
    const now = this.now();
    const candidates = confirming
      ? this.nodes.filter((n) => n.state === 'healthy' || n.state === 'stale' || (n.state === 'open' && n.openUntil <= now))
      : this.usable();
    const order = candidates.filter((n) => !exclude.includes(n.url));
    const reasons: string[] = [];
    for (let i = 0; i < order.length; i++) {
      const node = order[(start + i) % order.length] as Node;
      try {
        const results = await rpcBatch(node.url, calls, this.options.timeoutMs, this.options.maxResponseBytes);
        const value = accept(results, node.url);
        if (typeof value === 'string') throw new NodeFailure('invalid', value);
        if (count) this.succeeded(node);
        return value;
      } catch (err) {
        if (count) this.failed(node, err);
        reasons.push(`${node.url}: ${(err as Error).message}`);
      }
    }
    throw new AllNodesFailed(reasons.length > 0 ? reasons : [confirming ? 'no other node to confirm' : 'no usable node']);
  }

  /** Count a wrong answer found later (outvoted by two other nodes) against the node that gave it. */
  penalize(url: string, reason: string): void {
    const node = this.nodes.find((n) => n.url === url);
    if (node) this.failed(node, new NodeFailure('invalid', reason));
  }

  /**
   * In configured order: healthy nodes and open ones whose cool-down is over (a half-open trial);
   * when none of those is left, stale nodes too (a stale answer beats none; it is still checked).
   */
  private usable(): Node[] {
    const now = this.now();
    const ready = this.nodes.filter((n) => n.state === 'healthy' || (n.state === 'open' && n.openUntil <= now));
    return ready.length > 0 ? ready : this.nodes.filter((n) => n.state === 'stale' || n.state === 'suspect');
  }

  private succeeded(node: Node): void {
    node.failures = 0;
    if (node.state === 'open') {
      this.change(node, 'healthy', 'info', `node ${node.url} recovered`);
      node.opens = 0;
    }
  }

  private failed(node: Node, err: unknown): void {
    node.failures++;
    node.lastError = err instanceof Error ? err.message : String(err);
    const limit = this.options.failuresToOpen ?? 3;
    const halfOpenTrial = node.state === 'open';
    if (node.failures >= limit || halfOpenTrial) {
      node.opens++;
      const base = this.options.cooldownMs ?? 2_000;
      const cooldown = Math.min(this.options.maxCooldownMs ?? 60_000, base * 2 ** (node.opens - 1));
      node.openUntil = this.now() + cooldown * (0.75 + Math.random() * 0.5);
      if (node.state !== 'open')
        this.change(node, 'open', 'warn', `node ${node.url} failing (${node.lastError}); leaving it for ${Math.round(cooldown / 1000)} s`);
    }
  }

  /**
   * Judge each node's head against the agreed one (the highest that a second node reaches), among
   * the nodes that answered the last poll: far behind, or frozen while another moves past it, is
   * stale; far ahead is suspect and does not make the others stale. Two nodes far apart have no
   * majority: neither is judged on its value, and best() follows the lower.
   */
  private evaluateStale(): void {
    const known = this.nodes.filter((n) => n.state !== 'open' && n.head !== null);
    if (known.length === 0) return;
    const now = this.now();
    const { staleBlocks, staleMs } = this.options;
    const moved = (n: Node): boolean => now - n.headChangedAt <= staleMs;
    const frozen = new Set(
      known.filter((n) => !moved(n) && known.some((o) => o !== n && moved(o) && (o.head as number) > (n.head as number))),
    );
    const judged = known.filter((n) => !frozen.has(n)).map((n) => n.head as number);
    const agreed = judged.length >= 3 ? confirmedValue(judged) : undefined;
    for (const node of known) {
      const head = node.head as number;
      const state: NodeState =
        frozen.has(node) || (agreed !== undefined && agreed - head > staleBlocks)
          ? 'stale'
          : agreed !== undefined && head - agreed > staleBlocks
            ? 'suspect'
            : 'healthy';
      if (state === node.state) continue;
      const ref = agreed ?? Math.max(...judged);
      if (state === 'stale') this.change(node, state, 'warn', `node ${node.url} is stale (head ${head}, agreed head ${ref}); leaving it`);
      else if (state === 'suspect')
        this.change(
          node,
          state,
          'warn',
          `node ${node.url} claims head ${head}, far ahead of the agreed head ${ref}: suspect, leaving it (the others are not stale)`,
        );
      else this.change(node, state, 'info', `node ${node.url} ${node.state === 'stale' ? 'caught up' : 'is back in line'} (head ${head})`);
    }
  }

  private change(node: Node, state: Node['state'], level: 'info' | 'warn', msg: string): void {
    node.state = state;
    this.log[level]({ node: node.url, state }, msg);
  }
}
