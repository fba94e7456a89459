import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

import { Chain } from './chain';
import { Fault, type FaultKind, type FaultSpec } from './faults';
import { cloudflare502, loadGlobalProps, loadRealBlocks } from './fixtures';
import { type DataFaults, Methods, type Result } from './methods';
import { prng } from './random';
import { MAX_BATCH, type RpcError, rpcErrors } from './rpc';
import { TRANSACTION_METHODS, type TransactionAnswer, Transactions } from './transactions';

export interface DevNodeOptions {
  /** Port on 127.0.0.1; 0 (default) picks a free one. */
  port?: number;
  /** A new block every this many ms (default 3000); 0 = every block available at once. */
  intervalMs?: number;
  /** Synthetic blocks after the 1,000 real ones (default 0). */
  synthetic?: number;
  /**
   * Empty blocks after the synthetic ones (default 0): the chain goes on with no ops of its own,
   * so transactions broadcast after the last block with ops still get a block.
   */
  emptyTail?: number;
  /** Seed of the synthetic chain and of fault rates (default 1). */
  seed?: number;
  /** Ops per synthetic block (default [50, 200]). */
  opsPerBlock?: readonly [number, number];
  /** How far the last irreversible block trails the head (default 15). */
  libDistance?: number;
  /** Blocks available at start (default 1; with intervalMs 0, all are). */
  initialBlocks?: number;
  faults?: FaultSpec[];
  /** Injectable clock (ms). */
  now?: () => number;
  /** Called for every JSON-RPC call served (after faults), e.g. to see what a client asked for. */
  onCall?: (method: string, params: unknown) => void;
}

const MAX_BODY = 1024 * 1024;
const TRANSPORT_FAULTS: ReadonlySet<FaultKind> = new Set(['latency', 'timeout', 'http502', 'http503', 'http429', 'malformed', 'reset']);

interface RpcRequest {
  method: string;
  params: unknown;
  id: unknown;
}

/**
 * A local Steem JSON-RPC node on loopback: real blocks 1,000,000-1,000,999, then synthetic ones,
 * revealed over time, with scriptable faults. Start it from tests with `DevNode.start()`.
 */
export class DevNode {
  readonly chain: Chain;
  /** Requests served (one per HTTP request; a batch counts once), by first method. */
  readonly stats = { requests: 0, calls: 0, faults: {} as Partial<Record<FaultKind, number>> };
  private readonly methods: Methods;
  private readonly transactions: Transactions;
  private readonly server: Server;
  private readonly held = new Set<ServerResponse>();
  private readonly sockets = new Set<Socket>();
  private readonly rand: () => number;
  private readonly html502 = cloudflare502();

  private constructor(private readonly options: DevNodeOptions) {
    this.chain = new Chain({
      blocks: loadRealBlocks(),
      synthetic: options.synthetic ?? 0,
      emptyTail: options.emptyTail ?? 0,
      seed: options.seed ?? 1,
      opsPerBlock: options.opsPerBlock ?? [50, 200],
      intervalMs: options.intervalMs ?? 3000,
      libDistance: options.libDistance ?? 15,
      initialBlocks: options.initialBlocks ?? 1,
      now: options.now ?? Date.now,
    });
    this.setFaults(options.faults ?? []);
    this.methods = new Methods(this.chain, loadGlobalProps());
    this.rand = prng((options.seed ?? 1) * 7919);
    this.transactions = new Transactions(this.chain, this.rand, options.now ?? Date.now, (kind) => this.count(kind));
    this.server = createServer((req, res) => void this.handle(req, res));
    this.server.keepAliveTimeout = 30_000;
    this.server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  static async start(options: DevNodeOptions = {}): Promise<DevNode> {
    const node = new DevNode(options);
    await new Promise<void>((resolve, reject) => {
      node.server.once('error', reject);
      node.server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
    });
    return node;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Replace the active faults (each starts afresh). */
  setFaults(specs: FaultSpec[]): void {
    this.chain.faults = specs.map((s) => new Fault(s));
  }

  async stop(): Promise<void> {
    this.transactions.stop();
    for (const res of this.held) res.destroy();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.stats.requests++;
    if (req.method === 'GET')
      return this.send(res, 200, JSON.stringify({ status: 'OK', head: this.chain.head(), source: 'steem-devnode' }));
    if (req.method !== 'POST')
      return this.send(res, 405, JSON.stringify({ jsonrpc: '2.0', error: rpcErrors.invalidRequest('use POST'), id: null }));
    const body = await readBody(req);
    if (body === undefined) {
      return this.send(
        res,
        413,
        JSON.stringify({ jsonrpc: '2.0', error: rpcErrors.invalidRequest(`body over ${MAX_BODY} bytes`), id: null }),
      );
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      return this.send(res, 200, JSON.stringify({ jsonrpc: '2.0', error: rpcErrors.parse(), id: null }));
    }
    const batch = Array.isArray(parsed);
    const items: unknown[] = batch ? (parsed as unknown[]) : [parsed];
    if (batch && items.length === 0)
      return this.send(res, 200, JSON.stringify({ jsonrpc: '2.0', error: rpcErrors.invalidRequest('empty batch'), id: null }));
    if (items.length > MAX_BATCH) {
      const error = rpcErrors.invalidRequest(`request batch size is too large: ${items.length} > ${MAX_BATCH}`);
      return this.send(res, 200, JSON.stringify({ jsonrpc: '2.0', error, id: null }));
    }
    const requests = items.map(toRequest);
    const firstMethod = requests.find((r): r is RpcRequest => !('error' in r))?.method ?? '';
    if (await this.transportFault(firstMethod, res)) return;
    const head = this.chain.head();
    const now = (this.options.now ?? Date.now)();
    const active = this.chain.faults.filter((f) => f.active(head, now));
    let after: TransactionAnswer['after'];
    const answers = await Promise.all(
      requests.map(async (r) => {
        if ('error' in r) return answer(r.id, { error: r.error });
        this.stats.calls++;
        this.options.onCall?.(r.method, r.params);
        const hit = (kind: FaultKind): boolean => {
          const yes = active.some((f) => f.spec.kind === kind && f.hits(r.method, this.rand));
          if (yes) this.count(kind);
          return yes;
        };
        if (hit('rpc-error')) return answer(r.id, { error: rpcErrors.fcAssert(r.method) });
        if (hit('jussi-error')) return answer(r.id, { error: rpcErrors.jussiUpstream() });
        if (TRANSACTION_METHODS.has(r.method)) {
          const out = await this.transactions.call(r.method, r.params);
          after ??= out.after;
          return answer(r.id, out.result);
        }
        const faults: DataFaults = { nullBlock: hit('null-block'), wrongBlock: hit('wrong-block') };
        return answer(r.id, this.methods.call(r.method, r.params, faults));
      }),
    );
    // Broadcast faults that strike after the transaction was accepted: the client never learns it.
    if (after === 'timeout') return this.hold(res);
    if (after === 'reset') {
      res.socket?.destroy();
      return;
    }
    this.send(res, 200, batch ? `[${answers.join(',')}]` : (answers[0] as string));
  }

  /** Faults that spoil the HTTP exchange itself; true when the request was answered (or dropped). */
  private async transportFault(method: string, res: ServerResponse): Promise<boolean> {
    const now = (this.options.now ?? Date.now)();
    const head = this.chain.head();
    for (const f of this.chain.faults) {
      if (!f.active(head, now) || !TRANSPORT_FAULTS.has(f.spec.kind) || !f.hits(method, this.rand)) continue;
      this.count(f.spec.kind);
      switch (f.spec.kind) {
        case 'latency':
          await new Promise((r) => setTimeout(r, f.spec.ms ?? 1000));
          break;
        case 'timeout':
          this.hold(res);
          return true;
        case 'http502':
          this.send(res, 502, this.html502, 'text/html');
          return true;
        case 'http503':
          this.send(res, 503, '<html><body><h1>503 Service Unavailable</h1></body></html>', 'text/html');
          return true;
        case 'http429':
          res.setHeader('Retry-After', '1');
          this.send(res, 429, '<html><body><h1>429 Too Many Requests</h1></body></html>', 'text/html');
          return true;
        case 'malformed':
          this.send(res, 200, '{"jsonrpc":"2.0","result":{"previous":"000f42', 'application/json');
          return true;
        case 'reset':
          res.socket?.destroy();
          return true;
        default:
          break; // data and chain faults apply elsewhere
      }
    }
    return false;
  }

  /** Never answer; the connection stays open until the client gives up (or the node stops). */
  private hold(res: ServerResponse): void {
    this.held.add(res);
    res.on('close', () => this.held.delete(res));
  }

  private count(kind: FaultKind): void {
    this.stats.faults[kind] = (this.stats.faults[kind] ?? 0) + 1;
  }

  private send(res: ServerResponse, status: number, body: string, type = 'application/json'): void {
    res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  }
}

function readBody(req: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        resolve(undefined);
        req.resume();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(size > MAX_BODY ? undefined : Buffer.concat(chunks).toString('utf8')));
    req.on('error', () => resolve(undefined));
  });
}

/** Both request forms: `{method: "api.method", params}` and the legacy `{method: "call", params: [api, method, args]}`. */
function toRequest(item: unknown): RpcRequest | { id: unknown; error: RpcError } {
  if (typeof item !== 'object' || item === null || Array.isArray(item))
    return { id: null, error: rpcErrors.invalidRequest('a request must be an object') };
  const { method, params, id } = item as Record<string, unknown>;
  if (typeof method !== 'string') return { id: id ?? null, error: rpcErrors.invalidRequest('method must be a string') };
  if (method === 'call') {
    if (!Array.isArray(params) || typeof params[0] !== 'string' || typeof params[1] !== 'string') {
      return { id: id ?? null, error: rpcErrors.invalidParams('call expects [api, method, args]') };
    }
    // Like jussi: the pre-appbase namespace of a legacy call (steem-js 0.7's default) is condenser_api.
    const api = params[0] === 'database_api' ? 'condenser_api' : params[0];
    return { method: `${api}.${params[1]}`, params: params[2] ?? [], id: id ?? null };
  }
  return { method, params: params ?? [], id: id ?? null };
}

function answer(id: unknown, result: Result): string {
  const rid = JSON.stringify(id ?? null);
  return 'error' in result
    ? `{"jsonrpc":"2.0","error":${JSON.stringify(result.error)},"id":${rid}}`
    : `{"jsonrpc":"2.0","result":${result.json},"id":${rid}}`;
}
