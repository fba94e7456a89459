import { createHash, createPublicKey, type KeyObject, verify } from 'node:crypto';

import { naiAsset } from './convert';

/** A transaction in condenser form, as clients broadcast it. */
export interface SignedTransaction {
  ref_block_num: number;
  ref_block_prefix: number;
  expiration: string;
  operations: Array<[string, Record<string, unknown>]>;
  extensions: unknown[];
  signatures: string[];
}

interface SerializerType {
  fromObject(value: unknown): unknown;
  toObject(value: unknown): unknown;
  toBuffer(value: unknown): Buffer;
}
interface SteemSerializer {
  ops: { transaction: SerializerType; signed_transaction: SerializerType };
}
interface SteemEcc {
  Signature: { fromHex(hex: string): { recoverPublicKey(sha256: Buffer): { toString(): string } } };
  PublicKey: { fromString(key: string): { toBuffer(): Buffer } };
}

// steem-js 0.7 ships no types and is CommonJS; these are the two parts that give steemd's own
// binary serialization and key recovery, so ids and signatures match a real node's.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const serializer = require('steem/lib/auth/serializer') as SteemSerializer;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const ecc = require('steem/lib/auth/ecc') as SteemEcc;

/** Steem's chain id: 32 zero bytes. */
export const CHAIN_ID = Buffer.alloc(32);

/** A transaction checked against steem-js's serializer, with what a node derives from it. */
export interface ParsedTransaction {
  /** Canonical condenser form (as the serializer renders it back). */
  trx: SignedTransaction;
  /** sha256 of the serialized transaction (without signatures), first 20 bytes, hex. */
  id: string;
  /** Bytes of the signed transaction as steemd packs it. */
  size: number;
  /** sha256(chain_id + serialized transaction): what the signatures sign. */
  digest: Buffer;
  /** The serialized transaction without signatures. */
  unsigned: Buffer;
}

/** Parse and serialize like steemd; throws with the serializer's first line on a malformed transaction. */
export function parseTransaction(value: unknown): ParsedTransaction {
  let object: unknown;
  try {
    object = serializer.ops.signed_transaction.fromObject(value);
  } catch (err) {
    throw new Error(firstLine(err), { cause: err });
  }
  const unsigned = serializer.ops.transaction.toBuffer(object);
  const signed = serializer.ops.signed_transaction.toBuffer(object);
  return {
    trx: serializer.ops.signed_transaction.toObject(object) as SignedTransaction,
    id: createHash('sha256').update(unsigned).digest('hex').slice(0, 40),
    size: signed.length,
    digest: createHash('sha256')
      .update(Buffer.concat([CHAIN_ID, unsigned]))
      .digest(),
    unsigned,
  };
}

// SPKI header of a compressed secp256k1 public key (id-ecPublicKey, secp256k1, 33-byte point).
const SPKI_SECP256K1 = Buffer.from('3036301006072a8648ce3d020106052b8104000a032200', 'hex');
const keyObjects = new Map<string, KeyObject>();

/**
 * Whether each signature is by `publicKey` (STM...): a native ECDSA verification (OpenSSL) of
 * r||s over sha256(chain id + serialized transaction). Recovering keys with steem-js's pure-JS
 * ecc instead takes a second per signature in a busy test runner.
 */
export function signedBy(parsed: ParsedTransaction, publicKey: string): boolean[] {
  let key = keyObjects.get(publicKey);
  if (!key) {
    const point = ecc.PublicKey.fromString(publicKey).toBuffer();
    key = createPublicKey({ key: Buffer.concat([SPKI_SECP256K1, point]), format: 'der', type: 'spki' });
    keyObjects.set(publicKey, key);
  }
  const signed = Buffer.concat([CHAIN_ID, parsed.unsigned]);
  return parsed.trx.signatures.map((hex) => {
    const sig = Buffer.from(hex, 'hex');
    if (sig.length !== 65) return false;
    return verify('sha256', signed, { key: key as KeyObject, dsaEncoding: 'ieee-p1363' }, sig.subarray(1));
  });
}

/** The public keys (STM...) that produced the signatures (slow: pure JS); an unreadable signature throws. */
export function signingKeys(parsed: ParsedTransaction): string[] {
  return parsed.trx.signatures.map((hex) => {
    try {
      return ecc.Signature.fromHex(hex).recoverPublicKey(parsed.digest).toString();
    } catch (err) {
      throw new Error(`invalid signature: ${firstLine(err)}`, { cause: err });
    }
  });
}

function firstLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return (text.split('\n')[0] ?? text).replace(/\s+/g, ' ').trim();
}

/** The authorities a transaction needs, by level, as steemd's get_required_authorities computes them. */
export interface RequiredAuthorities {
  posting: Set<string>;
  active: Set<string>;
}

const POSTING: Record<string, string> = {
  vote: 'voter',
  comment: 'author',
  comment_options: 'author',
  delete_comment: 'author',
  claim_reward_balance: 'account',
};
const ACTIVE: Record<string, string> = {
  transfer: 'from',
  transfer_to_vesting: 'from',
  transfer_to_savings: 'from',
  withdraw_vesting: 'account',
  delegate_vesting_shares: 'delegator',
  account_witness_vote: 'account',
};

/** Required authorities of the ops devnode accepts; undefined names an op it does not. */
export function requiredAuthorities(trx: SignedTransaction): RequiredAuthorities | { unsupported: string } {
  const out: RequiredAuthorities = { posting: new Set(), active: new Set() };
  for (const [name, value] of trx.operations) {
    if (name === 'custom_json') {
      for (const a of value.required_posting_auths as string[]) out.posting.add(a);
      for (const a of value.required_auths as string[]) out.active.add(a);
    } else if (POSTING[name]) out.posting.add(value[POSTING[name]] as string);
    else if (ACTIVE[name]) out.active.add(value[ACTIVE[name]] as string);
    else return { unsupported: name };
  }
  return out;
}

const ASSET_FIELDS = new Set(['amount', 'fee', 'reward_steem', 'reward_sbd', 'reward_vests', 'vesting_shares', 'max_accepted_payout']);

/** Condenser op -> block_api op (`{type: "vote_operation", value}`, NAI assets), as a block holds it. */
export function apiOperation([name, value]: [string, Record<string, unknown>]): { type: string; value: Record<string, unknown> } {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value))
    out[k] = ASSET_FIELDS.has(k) && typeof v === 'string' && /^-?\d+(\.\d+)? (STEEM|SBD|VESTS)$/.test(v) ? naiAsset(v) : v;
  return { type: `${name}_operation`, value: out };
}
