import { createHash, createHmac, randomBytes } from 'node:crypto';

import type * as Secp256k1 from '@noble/secp256k1' with { 'resolution-mode': 'import' };

// @noble/secp256k1 ships ES modules only: Node (20.19+) loads it through require(esm); jest compiles
// it to CommonJS (ESM_ONLY in jest.preset.ts). TypeScript's node16 mode refuses a static import of
// it from CommonJS, hence require with the types imported on their own.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { hashes, sign } = require('@noble/secp256k1') as typeof Secp256k1;

// noble's synchronous sign() needs sha256 and HMAC-SHA256 supplied; Node's native ones are used.
hashes.sha256 = (message) => createHash('sha256').update(message).digest();
hashes.hmacSha256 = (key, message) => createHmac('sha256', key).update(message).digest();

/** steemd's is_canonical: neither r nor s has its top bit set or a needless leading zero byte. */
function isCanonical(r: Uint8Array, s: Uint8Array): boolean {
  const ok = (x: Uint8Array): boolean => !((x[0] as number) & 0x80) && !(x[0] === 0 && !((x[1] as number) & 0x80));
  return ok(r) && ok(s);
}

/**
 * A compact recoverable secp256k1 signature of a sha256 digest, in the form steemd expects
 * (65 bytes: 27 + 4 + recovery id, r, s; canonical per steemd's is_canonical, low S), signed by
 * @noble/secp256k1. Its RFC 6979 nonce is hedged with 32 fresh CSPRNG bytes on every try: a
 * non-canonical result is signed again with new entropy (about one try in four is kept), since
 * a deterministic nonce would give the same non-canonical signature forever.
 */
export function signDigest(digest: Buffer, privateKey: Buffer): Buffer {
  for (;;) {
    // 'recovered': recovery id (one byte), then r and s (32 bytes each).
    const sig = sign(digest, privateKey, { prehash: false, lowS: true, format: 'recovered', extraEntropy: randomBytes(32) });
    const recovery = sig[0] as number;
    // Ids 2-3 (R's x at or above the group order, about 2^-128) are not ones steemd takes.
    if (recovery > 1) continue;
    if (!isCanonical(sig.subarray(1, 33), sig.subarray(33, 65))) continue;
    return Buffer.concat([Buffer.from([27 + 4 + recovery]), sig.subarray(1)]);
  }
}

/** sha256 of the parts. */
export const sha256 = (...parts: Buffer[]): Buffer => createHash('sha256').update(Buffer.concat(parts)).digest();
