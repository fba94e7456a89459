import type { Chain } from './chain';
import { BROADCAST_FAULTS, type FaultKind } from './faults';
import { DEVNODE_PUBLIC_KEY, type Result } from './methods';
import { chainErrors, type RpcError, rpcErrors } from './rpc';
import { apiOperation, parseTransaction, type RequiredAuthorities, requiredAuthorities, signedBy, signingKeys } from './steem-tx';

/** The methods this module serves. */
export const TRANSACTION_METHODS: ReadonlySet<string> = new Set([
  'condenser_api.broadcast_transaction',
  'condenser_api.broadcast_transaction_synchronous',
  'network_broadcast_api.broadcast_transaction',
  'network_broadcast_api.broadcast_transaction_synchronous',
  'transaction_status_api.find_transaction',
  'rc_api.find_rc_accounts',
]);

/** steemd's STEEM_MAX_TIME_UNTIL_EXPIRATION and STEEM_MAX_TRANSACTION_SIZE. */
export const MAX_TIME_UNTIL_EXPIRATION_S = 3600;
export const MAX_TRANSACTION_SIZE = 64 * 1024;
const MAX_RC = '1000000000000';

/** A broadcast's answer, and what to do to the HTTP exchange after acceptance. */
export interface TransactionAnswer {
  result: Result;
  after?: 'timeout' | 'reset';
}

interface Known {
  /** The block it is included in; null when it never will be (drop, expire). */
  block: number | null;
  expiration: number;
}

interface Accepted {
  id: string;
  known: Known;
  expiredNow: boolean;
}

const json = (value: unknown): Result => ({ json: JSON.stringify(value) });
const iso = (ms: number): string => new Date(ms).toISOString().slice(0, 19);

/**
 * The node's transaction handling: checks a broadcast as steemd does (serialization, size,
 * duplicates, authorities against DEVNODE_PUBLIC_KEY, TaPoS, expiration, RC), includes accepted
 * transactions in the next block, and answers their status.
 */
export class Transactions {
  private readonly known = new Map<string, Known>();
  private stopped = false;

  constructor(
    private readonly chain: Chain,
    private readonly rand: () => number,
    private readonly now: () => number,
    private readonly count: (kind: FaultKind) => void,
  ) {}

  stop(): void {
    this.stopped = true;
  }

  async call(method: string, params: unknown): Promise<TransactionAnswer> {
    switch (method) {
      case 'transaction_status_api.find_transaction':
        return { result: this.find(params) };
      case 'rc_api.find_rc_accounts':
        return { result: this.rcAccounts(params) };
      default:
        return this.broadcast(method, params);
    }
  }

  private async broadcast(method: string, params: unknown): Promise<TransactionAnswer> {
    const raw = Array.isArray(params) ? params[0] : (params as { trx?: unknown } | null)?.trx;
    if (typeof raw !== 'object' || raw === null)
      return { result: { error: rpcErrors.invalidParams('expected [transaction] or {"trx": transaction}') } };
    const faults = this.hits(method, raw);
    const outcome = this.accept(raw, faults);
    if ('error' in outcome) return { result: outcome };
    const after = faults.has('accept-timeout') ? 'timeout' : faults.has('accept-reset') ? 'reset' : undefined;
    if (faults.has('duplicate')) return { result: { error: chainErrors.duplicate(outcome.id) }, after };
    if (!method.endsWith('_synchronous')) return { result: json({}), after };
    return { result: json(await this.confirmation(outcome)), after };
  }

  /** Which broadcast faults hit this request (each counted). */
  private hits(method: string, raw: object): Set<FaultKind> {
    const head = this.chain.head();
    const now = this.now();
    const accounts = accountsOf(raw);
    const out = new Set<FaultKind>();
    for (const f of this.chain.faults) {
      const kind = f.spec.kind;
      if (!BROADCAST_FAULTS.has(kind) || !f.active(head, now)) continue;
      if (f.spec.account !== undefined && !accounts.includes(f.spec.account)) continue;
      if (!out.has(kind) && f.hits(method, this.rand)) {
        out.add(kind);
        this.count(kind);
      }
    }
    return out;
  }

  /** steemd's checks, in _push_transaction / _apply_transaction order; then inclusion. */
  private accept(raw: object, faults: Set<FaultKind>): Accepted | { error: RpcError } {
    let parsed;
    try {
      parsed = parseTransaction(raw);
    } catch (err) {
      return { error: chainErrors.badTransaction((err as Error).message) };
    }
    const { trx, id } = parsed;
    if (parsed.size > MAX_TRANSACTION_SIZE) return { error: chainErrors.tooLarge(parsed.size) };
    if (this.known.has(id)) return { error: chainErrors.duplicate(id) };
    const required = requiredAuthorities(trx);
    if ('unsupported' in required)
      return { error: chainErrors.badTransaction(`devnode does not accept ${required.unsupported} operations`) };
    const byDevnodeKey = signedBy(parsed, DEVNODE_PUBLIC_KEY);
    const authError = checkAuthorities(required, byDevnodeKey);
    if (authError === 'irrelevant') {
      let keys: string[];
      try {
        keys = signingKeys(parsed).filter((_, i) => !byDevnodeKey[i]);
      } catch (err) {
        return { error: chainErrors.badTransaction((err as Error).message) };
      }
      return { error: chainErrors.irrelevantSignature(keys) };
    }
    if (authError) return { error: authError };
    const head = this.chain.head();
    const refBlock = head - ((head - trx.ref_block_num) & 0xffff);
    const prefix = this.prefixOf(refBlock);
    if (prefix !== trx.ref_block_prefix) return { error: chainErrors.tapos(trx.ref_block_prefix, prefix ?? 0) };
    const headTime = this.chain.timeOf(head);
    const expiration = Date.parse(`${trx.expiration}Z`);
    if (expiration > headTime + MAX_TIME_UNTIL_EXPIRATION_S * 1000)
      return { error: chainErrors.expirationTooFar(trx.expiration, iso(headTime)) };
    if (headTime >= expiration) return { error: chainErrors.expired(trx.expiration, iso(headTime)) };
    if (faults.has('rc'))
      return { error: chainErrors.rc([...required.posting, ...required.active][0] ?? '', 1_000_000_000 + trx.operations.length) };
    const known: Known = { block: null, expiration };
    if (!faults.has('drop') && !faults.has('expire')) {
      known.block = this.chain.include(id, { ...trx, operations: trx.operations.map(apiOperation) });
      if (known.block === null) return { error: chainErrors.chainEnded() };
    }
    this.known.set(id, known);
    return { id, known, expiredNow: faults.has('expire') };
  }

  /** `_hash[1]` of the block id: its second 32-bit word, little-endian (what steem-js computes). */
  private prefixOf(num: number): number | undefined {
    const id = num === this.chain.first - 1 ? this.chain.block(this.chain.first)?.previous : this.chain.block(num)?.block_id;
    return id === undefined ? undefined : Buffer.from(id, 'hex').readUInt32LE(4);
  }

  /** broadcast_transaction_synchronous: wait for the block (or the expiration). */
  private async confirmation(accepted: Accepted): Promise<Record<string, unknown>> {
    const expired = { id: accepted.id, block_num: -1, trx_num: -1, expired: true };
    if (accepted.expiredNow) return expired;
    const { block, expiration } = accepted.known;
    for (;;) {
      if (this.stopped) return expired;
      const head = this.chain.head();
      if (block !== null && head >= block) {
        const trxNum = this.chain.block(block)?.transaction_ids.indexOf(accepted.id) ?? -1;
        return { id: accepted.id, block_num: block, trx_num: trxNum, expired: false };
      }
      if (block === null && (this.chain.timeOf(head) >= expiration || head >= this.chain.last)) return expired;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  private find(params: unknown): Result {
    const p = params as { transaction_id?: unknown; expiration?: unknown } | null;
    if (typeof p !== 'object' || p === null || typeof p.transaction_id !== 'string' || !/^[0-9a-f]{40}$/.test(p.transaction_id))
      return { error: rpcErrors.invalidParams('expected {"transaction_id": "<40 hex digits>", "expiration"?: "..."}') };
    const head = this.chain.head();
    const headTime = this.chain.timeOf(head);
    const libTime = this.chain.timeOf(this.chain.lib());
    const known = this.known.get(p.transaction_id);
    if (known && known.block !== null && head >= known.block)
      return json({
        status: known.block <= this.chain.lib() ? 'within_irreversible_block' : 'within_reversible_block',
        block_num: known.block,
      });
    const expiration = known?.expiration ?? (typeof p.expiration === 'string' ? Date.parse(`${p.expiration}Z`) : undefined);
    if (known && headTime < known.expiration) return json({ status: 'within_mempool' });
    if (expiration === undefined || Number.isNaN(expiration)) return json({ status: 'unknown' });
    if (libTime >= expiration) return json({ status: 'expired_irreversible' });
    if (headTime >= expiration) return json({ status: 'expired_reversible' });
    return json({ status: 'unknown' });
  }

  private rcAccounts(params: unknown): Result {
    const accounts = (params as { accounts?: unknown } | null)?.accounts;
    if (!Array.isArray(accounts) || accounts.some((a) => typeof a !== 'string'))
      return { error: rpcErrors.invalidParams('expected {"accounts": ["name", ...]}') };
    const head = this.chain.head();
    const now = this.now();
    const starved = (name: string): boolean =>
      this.chain.faults.some(
        (f) => f.spec.kind === 'rc' && (f.spec.account === undefined || f.spec.account === name) && f.active(head, now),
      );
    return json({
      rc_accounts: (accounts as string[]).map((account) => ({
        account,
        rc_manabar: { current_mana: starved(account) ? '0' : MAX_RC, last_update_time: Math.floor(this.chain.timeOf(head) / 1000) },
        max_rc_creation_adjustment: { amount: '2020748973', precision: 6, nai: '@@000000037' },
        max_rc: MAX_RC,
      })),
    });
  }
}

/**
 * steemd's verify_authority for accounts whose every authority is DEVNODE_PUBLIC_KEY, given which
 * signatures are by that key; 'irrelevant' when a signature is by another key (or repeated).
 */
function checkAuthorities(required: RequiredAuthorities, byDevnodeKey: boolean[]): RpcError | 'irrelevant' | undefined {
  if (required.posting.size > 0 && required.active.size > 0) return chainErrors.postingMixed();
  const signed = byDevnodeKey.includes(true);
  for (const account of required.posting) if (!signed) return chainErrors.missingPosting(account);
  for (const account of required.active) if (!signed) return chainErrors.missingActive(account);
  return byDevnodeKey.filter((b) => b).length === byDevnodeKey.length && byDevnodeKey.length === 1 ? undefined : 'irrelevant';
}

/** Accounts named as authorities by a raw (unchecked) transaction, for fault filters. */
function accountsOf(raw: object): string[] {
  const ops = (raw as { operations?: unknown }).operations;
  if (!Array.isArray(ops)) return [];
  const out: string[] = [];
  for (const op of ops) {
    const value = Array.isArray(op) ? (op[1] as Record<string, unknown> | undefined) : undefined;
    if (!value) continue;
    for (const k of ['voter', 'author', 'from', 'account', 'delegator']) if (typeof value[k] === 'string') out.push(value[k] as string);
    for (const k of ['required_auths', 'required_posting_auths'])
      if (Array.isArray(value[k])) out.push(...(value[k] as unknown[]).filter((a): a is string => typeof a === 'string'));
  }
  return out;
}
