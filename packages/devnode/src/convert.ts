/**
 * block_api rendering (what the fixture holds) -> condenser_api rendering (what steem-js, dsteem
 * and most bots read): `["vote", {...}]` op pairs, legacy asset strings, and per-transaction
 * `transaction_id`, `block_num`, `transaction_num`. The fixture was served by Hive, whose field
 * names say hive/hbd where Steem's say steem/sbd; those are renamed back.
 */

/** A block in block_api rendering, as in the fixture. */
export interface ApiBlock {
  block_id: string;
  previous: string;
  timestamp: string;
  witness: string;
  transaction_merkle_root: string;
  extensions: unknown[];
  witness_signature: string;
  signing_key: string;
  transaction_ids: string[];
  transactions: ApiTransaction[];
}

export interface ApiTransaction {
  ref_block_num: number;
  ref_block_prefix: number;
  expiration: string;
  operations: Array<{ type: string; value: Record<string, unknown> }>;
  extensions: unknown[];
  signatures: string[];
}

export type CondenserOp = [string, Record<string, unknown>];

export interface CondenserTransaction extends Omit<ApiTransaction, 'operations'> {
  operations: CondenserOp[];
  transaction_id: string;
  block_num: number;
  transaction_num: number;
}

export interface CondenserBlock extends Omit<ApiBlock, 'transactions'> {
  transactions: CondenserTransaction[];
}

const SYMBOLS: Record<string, string> = { '@@000000021': 'STEEM', '@@000000013': 'SBD', '@@000000037': 'VESTS' };
const NAIS: Record<string, { nai: string; precision: number }> = {
  STEEM: { nai: '@@000000021', precision: 3 },
  SBD: { nai: '@@000000013', precision: 3 },
  VESTS: { nai: '@@000000037', precision: 6 },
};

interface NaiAsset {
  amount: string;
  precision: number;
  nai: string;
}

function isNaiAsset(v: unknown): v is NaiAsset {
  return typeof v === 'object' && v !== null && 'nai' in v && 'amount' in v && 'precision' in v;
}

/** `{"amount":"10000","precision":3,"nai":"@@000000021"}` -> `"10.000 STEEM"`. */
export function legacyAsset(a: NaiAsset): string {
  const symbol = SYMBOLS[a.nai] ?? a.nai;
  const digits = a.amount.replace(/^-/, '').padStart(a.precision + 1, '0');
  const sign = a.amount.startsWith('-') ? '-' : '';
  const whole = digits.slice(0, digits.length - a.precision);
  return a.precision === 0 ? `${sign}${whole} ${symbol}` : `${sign}${whole}.${digits.slice(-a.precision)} ${symbol}`;
}

/** `"10.000 STEEM"` -> `{"amount":"10000","precision":3,"nai":"@@000000021"}`. */
export function naiAsset(s: string): NaiAsset {
  const [value = '', symbol = ''] = s.split(' ');
  const known = NAIS[symbol];
  if (!known) throw new Error(`unknown asset symbol in "${s}"`);
  return { amount: String(BigInt(value.replace('.', ''))), precision: known.precision, nai: known.nai };
}

const KEY_RENAMES: Record<string, string> = { percent_hbd: 'percent_steem_dollars' };

function steemKey(key: string): string {
  return KEY_RENAMES[key] ?? key.replace(/hbd/g, 'sbd').replace(/hive/g, 'steem');
}

/** Deep-convert a value: NAI assets to legacy strings, Hive field names to Steem's. */
export function toLegacy(value: unknown): unknown {
  if (isNaiAsset(value)) return legacyAsset(value);
  if (Array.isArray(value)) return value.map(toLegacy);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[steemKey(k)] = toLegacy(v);
    return out;
  }
  return value;
}

/** `{"type":"vote_operation","value":{...}}` -> `["vote", {...}]`. */
export function condenserOp(op: { type: string; value: Record<string, unknown> }): CondenserOp {
  return [op.type.replace(/_operation$/, ''), toLegacy(op.value) as Record<string, unknown>];
}

const opJson = new WeakMap<object, string>();
const derived = new WeakMap<object, { base: object; from: string; to: string }>();

/**
 * Mark `op` as `base` with one string field changed (`from` -> `to`): its rendering is then the
 * base's cached rendering with that one string replaced (synthetic comments, unique permlinks).
 */
export function deriveOp<T extends object>(op: T, base: object, from: string, to: string): T {
  derived.set(op, { base, from: JSON.stringify(from), to: JSON.stringify(to) });
  return op;
}

function renderOp(op: ApiTransaction['operations'][number]): string {
  let text = opJson.get(op);
  if (text !== undefined) return text;
  const d = derived.get(op);
  text = d ? renderOp(d.base as ApiTransaction['operations'][number]).replace(d.from, d.to) : JSON.stringify(condenserOp(op));
  if (!d) opJson.set(op, text);
  return text;
}

/**
 * `JSON.stringify(condenserBlock(block))` (keys in another order), assembled from per-op
 * renderings cached by op object, since synthetic blocks share their ops.
 */
export function condenserBlockJson(block: ApiBlock): string {
  const num = blockNumFromId(block.block_id);
  let out = `${JSON.stringify({ ...block, transactions: undefined }).slice(0, -1)},"transactions":[`;
  let headerKey = '';
  let header = '';
  for (let i = 0; i < block.transactions.length; i++) {
    const trx = block.transactions[i] as ApiTransaction;
    const key = `${trx.ref_block_num}|${trx.ref_block_prefix}|${trx.expiration}|${trx.extensions.length}|${trx.signatures.join()}`;
    if (key !== headerKey) {
      headerKey = key;
      header = JSON.stringify({ ...trx, operations: undefined }).slice(0, -1);
    }
    if (i > 0) out += ',';
    out += `${header},"operations":[${trx.operations.map(renderOp).join(',')}],"transaction_id":${JSON.stringify(block.transaction_ids[i])},"block_num":${num},"transaction_num":${i}}`;
  }
  return `${out}]}`;
}
/** The block number encoded in a block id: its first 8 hex digits. */
export function blockNumFromId(id: string): number {
  return Number.parseInt(id.slice(0, 8), 16);
}

export function condenserBlock(block: ApiBlock): CondenserBlock {
  const num = blockNumFromId(block.block_id);
  return {
    ...block,
    transactions: block.transactions.map((trx, i) => ({
      ...trx,
      operations: trx.operations.map(condenserOp),
      transaction_id: block.transaction_ids[i] as string,
      block_num: num,
      transaction_num: i,
    })),
  };
}

/** `condenser_api.get_ops_in_block(n, false)`: the block's (non-virtual) ops, one entry each. */
export function opsInBlock(block: ApiBlock): unknown[] {
  const num = blockNumFromId(block.block_id);
  return block.transactions.flatMap((trx, trxIndex) =>
    trx.operations.map((op, opIndex) => ({
      trx_id: block.transaction_ids[trxIndex],
      block: num,
      trx_in_block: trxIndex,
      op_in_trx: opIndex,
      virtual_op: 0,
      timestamp: block.timestamp,
      op: condenserOp(op),
    })),
  );
}
