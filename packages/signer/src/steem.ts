import { createHash } from 'node:crypto';

import { sha256, signDigest } from './ecdsa';

/** An operation in condenser form: `["transfer", {...}]`. */
export type Operation = [string, Record<string, unknown>];

/** A transaction in condenser form, signed. */
export interface SignedTransaction {
  ref_block_num: number;
  ref_block_prefix: number;
  expiration: string;
  operations: Operation[];
  extensions: unknown[];
  signatures: string[];
}

interface SerializerType {
  fromObject(value: unknown): unknown;
  toObject(value: unknown): unknown;
  toBuffer(value: unknown): Buffer;
}
interface SteemAuth {
  isWif(key: string): boolean;
  wifToPublic(key: string): string;
}
interface SteemEcc {
  PrivateKey: { fromWif(wif: string): { toBuffer(): Buffer } };
}

// steem-js 0.7 is CommonJS without types; only its auth part is loaded (signing, serialization),
// never its API client, which would pick nodes on its own.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const auth = require('steem/lib/auth') as SteemAuth;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const ecc = require('steem/lib/auth/ecc') as SteemEcc;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const serializer = require('steem/lib/auth/serializer') as { ops: { transaction: SerializerType; signed_transaction: SerializerType } };

/** Whether `key` is a private key in WIF. */
export const isWif = (key: string): boolean => {
  try {
    return auth.isWif(key);
  } catch {
    return false;
  }
};

/** The public key (STM...) of a WIF. */
export const publicKeyOf = (wif: string): string => auth.wifToPublic(wif);

/** The transaction id a node derives: sha256 of the serialized transaction without signatures, first 20 bytes. */
export function transactionId(trx: Omit<SignedTransaction, 'signatures'>): string {
  const buffer = serializer.ops.transaction.toBuffer(serializer.ops.transaction.fromObject(trx));
  return createHash('sha256').update(buffer).digest('hex').slice(0, 40);
}

/** Packed size in bytes of a signed transaction (the chain refuses more than 65,536). */
export function transactionSize(trx: SignedTransaction): number {
  return serializer.ops.signed_transaction.toBuffer(serializer.ops.signed_transaction.fromObject(trx)).length;
}

/** Steem's chain id: 32 zero bytes. */
const CHAIN_ID = Buffer.alloc(32);

/**
 * Sign with one key: serialized by steem-js (steemd's binary format), digest =
 * sha256(chain id + serialized transaction), signature by ./ecdsa (@noble/secp256k1).
 */
export function signTransaction(trx: Omit<SignedTransaction, 'signatures'>, wif: string): SignedTransaction {
  const object = serializer.ops.transaction.fromObject(trx);
  const digest = sha256(CHAIN_ID, serializer.ops.transaction.toBuffer(object));
  const signature = signDigest(digest, ecc.PrivateKey.fromWif(wif).toBuffer());
  return {
    ...(serializer.ops.transaction.toObject(object) as Omit<SignedTransaction, 'signatures'>),
    signatures: [signature.toString('hex')],
  };
}
