import { createHash } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type * as Secp256k1 from '@noble/secp256k1' with { 'resolution-mode': 'import' };

import { Keys, signTransaction, transactionId } from '../src';
import { signDigest } from '../src/ecdsa';
import { OTHER_KEY, TEST_KEY } from './helpers';

// ES modules only, compiled to CommonJS for jest (jest.preset.ts); its sha256/HMAC hooks are set by ../src/ecdsa.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const secp = require('@noble/secp256k1') as typeof Secp256k1;

// steem-js's own recovery and serializer, as a node checks a signature (untyped CommonJS).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const ecc = require('steem/lib/auth/ecc') as {
  Signature: {
    fromHex(h: string): {
      recoverPublicKeyFromBuffer(b: Buffer): { toString(): string };
      recoverPublicKey(digest: Buffer): { toString(): string };
    };
  };
  PrivateKey: { fromWif(wif: string): { toBuffer(): Buffer } };
};
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { ops } = require('steem/lib/auth/serializer') as {
  ops: { transaction: { toBuffer(t: unknown): Buffer; fromObject(t: unknown): unknown } };
};
// eslint-disable-next-line @typescript-eslint/no-require-imports
const auth = require('steem/lib/auth') as { wifToPublic(w: string): string };

/** steemd's is_canonical on a 65-byte compact signature. */
const canonical = (sig: Uint8Array): boolean =>
  [1, 33].every((i) => !((sig[i] as number) & 0x80) && !(sig[i] === 0 && !((sig[i + 1] as number) & 0x80)));

describe('signing (@noble/secp256k1) as steemd verifies it', () => {
  test('signatures: canonical, recover (with steem-js) to the signing key, id = sha256 of the serialized transaction', () => {
    for (let i = 0; i < 6; i++) {
      const wif = i % 2 ? TEST_KEY : OTHER_KEY;
      const trx = {
        ref_block_num: i,
        ref_block_prefix: 123456 + i,
        expiration: '2016-04-29T05:00:00',
        operations: [['vote', { voter: 'a', author: 'b', permlink: `p${i}`, weight: 100 }]] as Array<[string, Record<string, unknown>]>,
        extensions: [],
      };
      const signed = signTransaction(trx, wif);
      const sig = Buffer.from(signed.signatures[0] as string, 'hex');
      expect(sig).toHaveLength(65);
      expect([31, 32]).toContain(sig[0]);
      expect((sig[1] as number) & 0x80).toBe(0);
      expect((sig[33] as number) & 0x80).toBe(0);
      const buffer = ops.transaction.toBuffer(ops.transaction.fromObject(signed));
      expect(
        ecc.Signature.fromHex(signed.signatures[0] as string)
          .recoverPublicKeyFromBuffer(Buffer.concat([Buffer.alloc(32), buffer]))
          .toString(),
      ).toBe(auth.wifToPublic(wif));
      expect(transactionId(signed)).toMatch(/^[0-9a-f]{40}$/);
    }
  });

  test('200 signatures: canonical, low S, all different (hedged nonce), verify and recover to the key; a few recovered by steem-js', () => {
    const key = ecc.PrivateKey.fromWif(TEST_KEY).toBuffer();
    const publicKey = secp.getPublicKey(key);
    const digest = (i: number): Buffer =>
      createHash('sha256')
        .update(`digest ${i % 20}`)
        .digest(); // each digest signed 10 times
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const sig = signDigest(digest(i), key);
      expect(sig).toHaveLength(65);
      expect([31, 32]).toContain(sig[0]);
      expect(canonical(sig)).toBe(true);
      const compact = sig.subarray(1);
      expect(secp.Signature.fromBytes(compact).hasHighS()).toBe(false);
      expect(secp.verify(compact, digest(i), publicKey, { prehash: false })).toBe(true);
      const recovered = Buffer.concat([Buffer.from([(sig[0] as number) - 31]), compact]);
      expect(Buffer.from(secp.recoverPublicKey(recovered, digest(i), { prehash: false }))).toEqual(Buffer.from(publicKey));
      if (i % 100 === 0) {
        expect(ecc.Signature.fromHex(sig.toString('hex')).recoverPublicKey(digest(i)).toString()).toBe(auth.wifToPublic(TEST_KEY));
      }
      seen.add(sig.toString('hex'));
    }
    expect(seen.size).toBe(200);
  });

  test('no reliance on deterministic (RFC 6979) signing: a digest whose deterministic signature is not canonical still gets a canonical one', () => {
    const key = ecc.PrivateKey.fromWif(OTHER_KEY).toBuffer();
    // noble's 'recovered' form (recovery id, r, s) has r and s where steemd's compact form has them.
    const deterministic = (d: Buffer): Buffer => Buffer.from(secp.sign(d, key, { prehash: false, format: 'recovered' }));
    const digests = Array.from({ length: 50 }, (_, i) => createHash('sha256').update(`non-canonical ${i}`).digest());
    const digest = digests.find((d) => !canonical(deterministic(d)));
    if (!digest) throw new Error('no digest with a non-canonical deterministic signature');
    // Without extra entropy noble gives the same (refused) signature every time: a retry loop on it would never end.
    expect(deterministic(digest)).toEqual(deterministic(digest));
    const sig = signDigest(digest, key);
    expect(canonical(sig)).toBe(true);
    expect(sig.subarray(1)).not.toEqual(deterministic(digest).subarray(1));
    expect(ecc.Signature.fromHex(sig.toString('hex')).recoverPublicKey(digest).toString()).toBe(auth.wifToPublic(OTHER_KEY));
  });
});

describe('SIGNER_KEYS_FILE', () => {
  const dir = mkdtempSync(join(tmpdir(), 'signer-keys-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, text: string, mode: number): string => {
    const path = join(dir, name);
    writeFileSync(path, text);
    chmodSync(path, mode);
    return path;
  };

  test('a 0600 file of this user is read; accounts and roles are listed without keys', () => {
    const keys = Keys.load(file('ok.json', JSON.stringify({ alice: { posting: TEST_KEY, active: OTHER_KEY } }), 0o600));
    expect(keys.get('alice', 'active')).toBe(OTHER_KEY);
    expect(keys.get('bob', 'posting')).toBeUndefined();
    expect(JSON.stringify(keys)).toBe('{"alice":["posting","active"]}');
  });

  test('refused: readable by others, missing, not JSON, a bad key; the message never holds a key', () => {
    const readable = file('readable.json', JSON.stringify({ alice: { posting: TEST_KEY } }), 0o644);
    expect(() => Keys.load(readable)).toThrow(
      expect.objectContaining({ code: 'ERR_CONFIG_INVALID', message: expect.stringMatching(/has mode 644; run chmod 600/) }),
    );
    expect(() => Keys.load(join(dir, 'none.json'))).toThrow(/does not exist/);
    const broken = file('broken.json', `{"alice": {"posting": "${TEST_KEY}"`, 0o600);
    expect(() => Keys.load(broken)).toThrow(expect.objectContaining({ message: expect.not.stringContaining(TEST_KEY) }));
    const bad = file('bad.json', JSON.stringify({ alice: { posting: `${TEST_KEY.slice(0, -1)}x`, owner: TEST_KEY } }), 0o600);
    let message = '';
    try {
      Keys.load(bad);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/@alice: the posting key is not a valid private key \(WIF\); @alice: unknown role "owner"/);
    expect(message).not.toContain(TEST_KEY.slice(0, 20));
  });
});

describe('SIGNER_ACCOUNT + SIGNER_POSTING_KEY / SIGNER_ACTIVE_KEY', () => {
  test('the keys of one account from the environment; a bad or missing key is named by its variable, never shown', () => {
    const keys = Keys.fromEnvironment('alice', TEST_KEY, '');
    expect(keys.get('alice', 'posting')).toBe(TEST_KEY);
    expect(keys.get('alice', 'active')).toBeUndefined();
    expect(JSON.stringify(keys)).toBe('{"alice":["posting"]}');
    const bad = `${TEST_KEY.slice(0, -1)}x`;
    expect(() => Keys.fromEnvironment('alice', TEST_KEY, bad)).toThrow(
      expect.objectContaining({ code: 'ERR_CONFIG_INVALID', message: 'SIGNER_ACTIVE_KEY is not a valid private key (WIF)' }),
    );
    expect(() => Keys.fromEnvironment('alice', '', '')).toThrow(/neither SIGNER_POSTING_KEY nor SIGNER_ACTIVE_KEY is set/);
  });
});
