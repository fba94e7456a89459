import type { Logger } from '@steem-bot/config';

/** A JSON-RPC error a node answered with (the node works; the request was refused). */
export class RpcRefusal extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly data: unknown,
    /** The node that answered. */
    readonly node?: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** The node did not answer usably (timeout, reset, HTTP error, not JSON): the outcome is unknown. */
export class NodeUnavailable extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

interface NodeState {
  url: string;
  failures: number;
  /** Left alone until then (circuit open). */
  openUntil: number;
}

export interface NodeClientOptions {
  nodes: readonly string[];
  timeoutMs: number;
  logger: Logger;
  /** How long a node that failed is left alone (doubles per failure, up to 16x). Default 5000 ms. */
  breakMs?: number;
}

/**
 * JSON-RPC to a pool of Steem nodes: the first healthy one is asked; a node that fails at
 * transport level is left alone for a while (circuit breaker) and the next one is asked.
 * A JSON-RPC error is the node's answer, not a failure of the node.
 */
export class NodeClient {
  private readonly nodes: NodeState[];
  private readonly breakMs: number;

  constructor(private readonly options: NodeClientOptions) {
    this.nodes = options.nodes.map((url) => ({ url, failures: 0, openUntil: 0 }));
    this.breakMs = options.breakMs ?? 5_000;
  }

  async call<T>(method: string, params: unknown): Promise<T> {
    const now = Date.now();
    const healthy = this.nodes.filter((n) => n.openUntil <= now);
    const order = healthy.length > 0 ? healthy : [...this.nodes].sort((a, b) => a.openUntil - b.openUntil).slice(0, 1);
    let last: unknown;
    for (const node of order) {
      try {
        const result = await this.post<T>(node.url, method, params);
        node.failures = 0;
        node.openUntil = 0;
        return result;
      } catch (err) {
        if (err instanceof RpcRefusal) throw err;
        node.failures++;
        node.openUntil = Date.now() + this.breakMs * Math.min(16, 2 ** (node.failures - 1));
        this.options.logger.warn({ node: node.url, method, err: (err as Error).message }, `node ${node.url} failed; trying the next one`);
        last = err;
      }
    }
    throw last instanceof NodeUnavailable ? last : new NodeUnavailable(String(last));
  }

  /**
   * Leave a node alone for `ms` although it answers (it is on another fork): the other nodes are
   * asked first until then.
   */
  avoid(url: string, ms: number, why: string): void {
    const node = this.nodes.find((n) => n.url === url);
    if (!node || this.nodes.length < 2) return;
    node.openUntil = Math.max(node.openUntil, Date.now() + ms);
    this.options.logger.warn({ node: url }, `node ${url} left alone for ${Math.round(ms / 1000)} s: ${why}`);
  }

  private async post<T>(url: string, method: string, params: unknown): Promise<T> {
    let text: string;
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
        signal: AbortSignal.timeout(this.options.timeoutMs),
      });
      text = await res.text();
      if (res.status !== 200) throw new NodeUnavailable(`HTTP ${res.status} from ${url}`);
    } catch (err) {
      if (err instanceof NodeUnavailable) throw err;
      throw new NodeUnavailable(`${method} on ${url}: ${(err as Error).message}`, { cause: err });
    }
    let body: { result?: T; error?: { code: number; message: string; data?: unknown } };
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      throw new NodeUnavailable(`${method} on ${url}: not JSON`);
    }
    if (body.error) throw new RpcRefusal(body.error.code, body.error.message, body.error.data, url);
    if (!('result' in body)) throw new NodeUnavailable(`${method} on ${url}: neither result nor error`);
    return body.result as T;
  }
}
