/** What can go wrong, as on real public Steem nodes. */
export const FAULT_KINDS = [
  'latency', // answer after `ms`
  'timeout', // never answer (the connection stays open until the client gives up)
  'http502', // HTTP 502 with the real Cloudflare HTML page
  'http503',
  'http429', // with Retry-After
  'rpc-error', // JSON-RPC -32003 with an FC exception, as steemd sends
  'jussi-error', // jussi's 1100 "Unable to decode upstream response"
  'null-block', // `null` for a block that exists
  'wrong-block', // the next block instead of the one asked for
  'malformed', // a truncated JSON body with HTTP 200
  'reset', // the connection is dropped without an answer
  'stale', // head frozen while the chain goes on
  'fork', // blocks [at, at+depth) replaced by another branch until the head passes them
  // Broadcasts (condenser_api / network_broadcast_api broadcast_transaction*):
  'drop', // accepted (answered as such) but never included; a synchronous broadcast answers `expired: true` once it expires
  'accept-timeout', // accepted and included, but the HTTP answer never comes
  'accept-reset', // accepted and included, but the connection is dropped instead of answering
  'expire', // not included; a synchronous broadcast answers `expired: true` at once
  'rc', // rejected for resource credits (and rc_api.find_rc_accounts shows no mana)
  'duplicate', // included (as if it had arrived through another node first), answered "Duplicate transaction check failed"
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** The faults that act on accepted transactions rather than on the HTTP exchange or the blocks. */
export const BROADCAST_FAULTS: ReadonlySet<FaultKind> = new Set(['drop', 'accept-timeout', 'accept-reset', 'expire', 'rc', 'duplicate']);

export interface FaultSpec {
  kind: FaultKind;
  /** Share of matching requests affected, 0..1 (default 1). */
  rate?: number;
  /** Only requests whose method contains this text (e.g. `get_block`). */
  method?: string;
  /** Active once the head reaches this block (default: at once). For `fork`: the first forked block. */
  fromBlock?: number;
  /** Active for this long once it started (default: for ever). */
  forMs?: number;
  /** For `latency`: the delay. */
  ms?: number;
  /** For `fork`: how many blocks the other branch replaces (default 1). */
  depth?: number;
  /** Broadcast faults: only transactions that need this account's authority (default: any). */
  account?: string;
}

/** A fault being applied, with its activation state. */
export class Fault {
  private startedAt: number | undefined;

  constructor(readonly spec: FaultSpec) {}

  /** Whether the fault is active now, given the head (a fault starts the first time this holds). */
  active(head: number, now: number): boolean {
    if (this.startedAt === undefined) {
      if (this.spec.kind !== 'fork' && this.spec.fromBlock !== undefined && head < this.spec.fromBlock) return false;
      this.startedAt = now;
    }
    return this.spec.forMs === undefined || now - this.startedAt < this.spec.forMs;
  }

  /** Whether it applies to one request for `method` (rate drawn from the node's seeded PRNG). */
  hits(method: string, rand: () => number): boolean {
    if (this.spec.method !== undefined && !method.includes(this.spec.method)) return false;
    return rand() < (this.spec.rate ?? 1);
  }
}

/**
 * Parse the CLI form: `kind[,key=value...]`, e.g. `http502,rate=0.3,method=get_block` or
 * `stale,fromBlock=1000100,forMs=60000` or `latency,ms=200` or `accept-reset,rate=0.2` or `rc,account=alice`.
 */
export function parseFault(text: string): FaultSpec {
  const [kind, ...pairs] = text.split(',').map((s) => s.trim());
  if (!FAULT_KINDS.includes(kind as FaultKind)) throw new Error(`unknown fault "${kind}"; one of ${FAULT_KINDS.join(', ')}`);
  const spec: FaultSpec = { kind: kind as FaultKind };
  for (const pair of pairs) {
    const [key, value = ''] = pair.split('=');
    if (key === 'method' || key === 'account') spec[key] = value;
    else if (key === 'rate' || key === 'fromBlock' || key === 'forMs' || key === 'ms' || key === 'depth') {
      const n = Number(value);
      if (!Number.isFinite(n) || n < 0 || (key === 'rate' && n > 1))
        throw new Error(`fault "${text}": ${key} must be a number${key === 'rate' ? ' in 0..1' : ' >= 0'}`);
      spec[key] = n;
    } else throw new Error(`fault "${text}": unknown key "${key}" (rate, method, account, fromBlock, forMs, ms, depth)`);
  }
  return spec;
}
