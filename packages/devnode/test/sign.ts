import { createHash, createHmac, randomBytes } from 'node:crypto';

import type * as Secp256k1 from '@noble/secp256k1' with { 'resolution-mode': 'import' };

import { CHAIN_ID, type SignedTransaction as Signed } from '../src/steem-tx';

export type { Signed };

interface SerializerType {
  fromObject(value: unknown): unknown;
  toObject(value: unknown): unknown;
  toBuffer(value: unknown): Buffer;
}

// steem-js's serializer (steemd's binary format) and key decoding (untyped CommonJS).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { ops } = require('steem/lib/auth/serializer') as { ops: { transaction: SerializerType; signed_transaction: SerializerType } };
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { PrivateKey } = require('steem/lib/auth/ecc') as { PrivateKey: { fromWif(wif: string): { toBuffer(): Buffer } } };
// ES modules only: compiled to CommonJS for jest (ESM_ONLY in jest.preset.ts); TypeScript's node16
// mode refuses a static import of it from CommonJS, hence require with the types imported apart.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const secp = require('@noble/secp256k1') as typeof Secp256k1;
secp.hashes.sha256 = (message) => createHash('sha256').update(message).digest();
secp.hashes.hmacSha256 = (key, message) => createHmac('sha256', key).update(message).digest();

/** steemd's is_canonical for r or s: no top bit set, no needless leading zero byte. */
const canonical = (x: Uint8Array): boolean => !((x[0] as number) & 0x80) && !(x[0] === 0 && !((x[1] as number) & 0x80));

/**
 * Sign like steem-js's auth.signTransaction (steem-js serializer, sha256(chain id + bytes), 65-byte
 * compact signature 27 + 4 + recovery id, r, s; canonical, low S) with @noble/secp256k1: steem-js's
 * pure-JS ECDSA takes seconds per signature inside jest on a busy machine. The nonce is hedged with
 * fresh random bytes on each try, so a non-canonical result is not produced again.
 */
export function signFast(trx: Omit<Signed, 'signatures'>, wifs: string[]): Signed {
  const object = ops.transaction.fromObject(trx);
  const digest = createHash('sha256')
    .update(Buffer.concat([CHAIN_ID, ops.transaction.toBuffer(object)]))
    .digest();
  const signatures = wifs.map((wif) => {
    const key = PrivateKey.fromWif(wif).toBuffer();
    for (;;) {
      const sig = secp.sign(digest, key, { prehash: false, format: 'recovered', extraEntropy: randomBytes(32) });
      const recovery = sig[0] as number;
      if (recovery > 1 || !canonical(sig.subarray(1, 33)) || !canonical(sig.subarray(33))) continue;
      return Buffer.concat([Buffer.from([27 + 4 + recovery]), sig.subarray(1)]).toString('hex');
    }
  });
  return ops.signed_transaction.toObject(ops.signed_transaction.fromObject({ ...trx, signatures })) as Signed;
}
