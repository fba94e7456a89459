import type { Logger } from '@steem-bot/config';

import { type ChainProps, propsProblem } from './chain-types';
import { NodeFailure, rpcBatch, type RpcCall } from './rpc';

export interface NodeHealth {
  url: string;
  state: 'healthy' | 'open' | 'stale';
  head: number | null;
  failures: number;
  lastError: string | null;
}

export interface PoolOptions {
  timeoutMs: number;
  /** Largest answer body accepted from a node; a larger one is that node's failure. */
  maxResponseBytes?: number;
  /** A node whose head is this far behind the best known head is stale. */
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

  health(): NodeHealth[] {
    return this.nodes.map(({ url, state, head, failures, lastError }) => ({ url, state, head, failures, lastError }));
  }

  /** Best head and LIB among nodes that are not stale or open. */
  best(): { head: number; lib: number } | undefined {
    const live = this.nodes.filter((n) => n.state === 'healthy' && n.head !== null);
    if (live.length === 0) return undefined;
    return { head: Math.max(...live.map((n) => n.head as number)), lib: Math.max(...live.map((n) => n.lib as number)) };
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
  async request<T>(calls: RpcCall[], accept: (results: unknown[], url: string) => T | string, start = 0): Promise<T> {
    const order = this.usable();
    const reasons: string[] = [];
    for (let i = 0; i < order.length; i++) {
      const node = order[(start + i) % order.length] as Node;
      try {
        const results = await rpcBatch(node.url, calls, this.options.timeoutMs, this.options.maxResponseBytes);
        const value = accept(results, node.url);
        if (typeof value === 'string') throw new NodeFailure('invalid', value);
        this.succeeded(node);
        return value;
      } catch (err) {
        this.failed(node, err);
        reasons.push(`${node.url}: ${(err as Error).message}`);
      }
    }
    throw new AllNodesFailed(reasons.length > 0 ? reasons : ['no usable node']);
  }

  /**
   * In configured order: healthy nodes and open ones whose cool-down is over (a half-open trial);
   * when none of those is left, stale nodes too (a stale answer beats none; it is still checked).
   */
  private usable(): Node[] {
    const now = this.now();
    const ready = this.nodes.filter((n) => n.state === 'healthy' || (n.state === 'open' && n.openUntil <= now));
    return ready.length > 0 ? ready : this.nodes.filter((n) => n.state === 'stale');
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

  private evaluateStale(): void {
    const heads = this.nodes.filter((n) => n.state !== 'open' && n.head !== null);
    if (heads.length === 0) return;
    const best = Math.max(...heads.map((n) => n.head as number));
    const now = this.now();
    for (const node of heads) {
      const head = node.head as number;
      const behind = best - head > this.options.staleBlocks;
      const frozen = now - node.headChangedAt > this.options.staleMs && head < best;
      if ((behind || frozen) && node.state === 'healthy') {
        this.change(node, 'stale', 'warn', `node ${node.url} is stale (head ${head}, best ${best}); leaving it`);
      } else if (!behind && !frozen && node.state === 'stale') {
        this.change(node, 'healthy', 'info', `node ${node.url} caught up (head ${head})`);
      }
    }
  }

  private change(node: Node, state: Node['state'], level: 'info' | 'warn', msg: string): void {
    node.state = state;
    this.log[level]({ node: node.url, state }, msg);
  }
}
