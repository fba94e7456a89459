import { join } from 'node:path';

import { storeImplementations } from '@steem-bot/testkit';

import { type ActionInput, PostgresSignerStore, type SignedTransaction, type SignerStore, SqliteSignerStore } from '../src';

// One contract, two implementations: the same tests against the SQLite file and against a real
// PostgreSQL (TEST_DATABASE_URL; its own schema per test, dropped after).
const impls = storeImplementations<SignerStore>('signer', {
  sqlite: (dir) => new SqliteSignerStore(join(dir, 'signer.sqlite')),
  postgres: (url, schema) => PostgresSignerStore.open({ url, schema }),
});

const T = Date.parse('2027-03-27T00:00:05Z'); // ms since the epoch: beyond 32 bits

const transfer = (key: string, memo = key, account = 'alice'): ActionInput => ({
  key,
  kind: 'transfer',
  account,
  role: 'active',
  op: ['transfer', { from: account, to: 'carol', amount: '1.000 STEEM', memo }],
  tid: `tid-${key}`,
});
const trxOf = (n: number): SignedTransaction => ({
  ref_block_num: n,
  ref_block_prefix: 7,
  expiration: '2027-03-27T00:01:05',
  operations: [['transfer', { memo: `m${n}` }]],
  extensions: [],
  signatures: [`sig${n}`],
});

describe.each(impls)('SignerStore conformance: %s', (_name, harness) => {
  const open = (): Promise<SignerStore> => harness.open();
  beforeEach(() => harness.setup());
  afterEach(() => harness.teardown());

  test('record: the same key and op give the same action, from any handle and at once; another op under the key is ERR_SIGNER_CONFLICT', async () => {
    const [a, b, c] = await Promise.all([open(), open(), open()]);
    const all = await Promise.all([a, b, c, a, b, c].map((s) => s!.record(transfer('k1'), T)));
    expect(new Set(all.map((x) => x.id)).size).toBe(1);
    expect(all[0]).toMatchObject({
      key: 'k1',
      kind: 'transfer',
      account: 'alice',
      role: 'active',
      state: 'pending',
      trx: null,
      signed: 0,
      signs_base: 0,
      published: true,
      retryable: null,
      tid: 'tid-k1',
      created_at: T,
      op: transfer('k1').op,
    });
    await expect(b!.record(transfer('k1', 'another memo'), T)).rejects.toMatchObject({ code: 'ERR_SIGNER_CONFLICT' });
    expect(await c!.all()).toHaveLength(1);
    expect(await a!.byKey('k1')).toEqual(await b!.byId(all[0]!.id));
    expect(await a!.byKey('nope')).toBeUndefined();
    expect(await a!.byId('nope')).toBeUndefined();
  });

  test('a signed transaction is stored (sent, with its id and expiration) before any broadcast; only one in flight per action', async () => {
    const store = await open();
    const { id } = await store.record(transfer('k'), T);
    expect(await store.signed(id, trxOf(1), 'trx-1', T + 60_000, T + 1)).toBe(true);
    const action = await store.byId(id);
    expect(action).toMatchObject({ state: 'sent', trx: trxOf(1), trx_id: 'trx-1', expiration: T + 60_000, signed: 1, signed_at: T + 1 });
    // A second signing while one is in flight stores nothing.
    expect(await store.signed(id, trxOf(2), 'trx-2', T + 70_000, T + 2)).toBe(false);
    expect(await store.transactions(id)).toEqual([
      { trx_id: 'trx-1', action_id: id, trx: JSON.stringify(trxOf(1)), expiration: T + 60_000, signed_at: T + 1 },
    ]);
    // Expired without inclusion: the engine lets it go; the next one is stored as well.
    await store.update(id, { state: 'pending', trx: null, reason: 'expired', next_at: 0 }, T + 3);
    expect(await store.byId(id)).toMatchObject({ state: 'pending', trx: null, trx_id: 'trx-1', reason: 'expired' });
    expect(await store.signed(id, trxOf(2), 'trx-2', T + 70_000, T + 4)).toBe(true);
    expect(await store.byId(id)).toMatchObject({ state: 'sent', trx_id: 'trx-2', signed: 2, reason: null });
    expect((await store.transactions(id)).map((t) => t.trx_id)).toEqual(['trx-1', 'trx-2']);
  });

  test('confirmed by any of its signed transaction ids; a finished action takes no further change', async () => {
    const store = await open();
    const { id } = await store.record(transfer('k'), T);
    await store.signed(id, trxOf(1), 'trx-1', T + 60_000, T);
    await store.update(id, { trx: null, state: 'pending' }, T);
    await store.signed(id, trxOf(2), 'trx-2', T + 70_000, T);
    expect((await store.openByTrxId('trx-1'))?.id).toBe(id); // the first one landed after all
    expect((await store.openByTrxId('trx-2'))?.id).toBe(id);
    expect(await store.openByTrxId('trx-9')).toBeUndefined();
    expect(await store.finish(id, { state: 'confirmed', trx_id: 'trx-1', block_num: 5_000_000 }, T + 9)).toBe(true);
    expect(await store.byId(id)).toMatchObject({ state: 'confirmed', trx_id: 'trx-1', block_num: 5_000_000, published: false });
    expect(await store.openByTrxId('trx-1')).toBeUndefined();
    // Finished: no second outcome, no working-field change, no new transaction.
    expect(await store.finish(id, { state: 'failed', reason: 'late', retryable: true }, T + 10)).toBe(false);
    await store.update(id, { state: 'sent', reason: 'late', next_at: 1 }, T + 10);
    expect(await store.signed(id, trxOf(3), 'trx-3', T, T)).toBe(false);
    expect(await store.byId(id)).toMatchObject({ state: 'confirmed', reason: null, next_at: 0, signed: 2 });
  });

  test('outbox: the event is pending with the final state (confirmed, failed), gone once published; a dry run has none', async () => {
    const store = await open();
    const ids = [];
    for (const k of ['c', 'f', 'd', 'open']) ids.push((await store.record(transfer(k), T)).id);
    const [c, f, d] = ids as [string, string, string];
    expect(await store.unpublished()).toEqual([]);
    await store.finish(c, { state: 'confirmed', trx_id: 't', block_num: 1 }, T);
    await store.finish(f, { state: 'failed', reason: 'missing required active authority', retryable: false }, T);
    await store.finish(d, { state: 'dry-run', reason: 'dry run' }, T);
    expect((await store.unpublished()).map((a) => [a.key, a.state, a.reason, a.retryable])).toEqual([
      ['c', 'confirmed', null, null],
      ['f', 'failed', 'missing required active authority', false],
    ]);
    await store.markPublished(c);
    expect((await store.unpublished()).map((a) => a.key)).toEqual(['f']);
    expect(await store.counts()).toEqual({ confirmed: 1, failed: 1, 'dry-run': 1, pending: 1 });
  });

  test('open actions come in the order they were recorded (per account, the writing order); working fields change', async () => {
    const store = await open();
    for (const [k, account] of [
      ['a1', 'alice'],
      ['b1', 'bob'],
      ['a2', 'alice'],
      ['a3', 'alice'],
    ] as const)
      await store.record(transfer(k, k, account), T);
    const a2 = await store.byKey('a2');
    await store.update(a2!.id, { state: 'waiting-rc', reason: 'waiting for resource credits', next_at: T + 5_000, broadcast_at: T }, T);
    await store.finish((await store.byKey('a1'))!.id, { state: 'dry-run', reason: 'dry' }, T);
    const opened = await store.open();
    expect(opened.map((a) => a.key)).toEqual(['b1', 'a2', 'a3']);
    expect(opened.filter((a) => a.account === 'alice').map((a) => a.key)).toEqual(['a2', 'a3']);
    expect(opened[1]).toMatchObject({ state: 'waiting-rc', next_at: T + 5_000, broadcast_at: T });
    expect(opened[0]!.seq).toBeLessThan(opened[1]!.seq);
  });

  test('spacing: the last signing of an account by kind (root posts and replies apart), and how many since a time', async () => {
    const store = await open();
    const post = (key: string, parent: string): ActionInput => ({
      key,
      kind: 'comment',
      account: 'alice',
      role: 'posting',
      op: [
        'comment',
        { parent_author: parent, parent_permlink: 'p', author: 'alice', permlink: key, title: '', body: 'b', json_metadata: '' },
      ],
      tid: 't',
    });
    const root = await store.record(post('root', ''), T);
    const reply = await store.record(post('reply', 'bob'), T);
    const other = await store.record(post('other', ''), T);
    await store.signed(root.id, trxOf(1), 'r', T, T + 1_000);
    await store.signed(reply.id, trxOf(2), 'p', T, T + 2_000);
    expect(await store.lastSigned('alice', 'comment', other.id, true)).toBe(T + 1_000);
    expect(await store.lastSigned('alice', 'comment', other.id, false)).toBe(T + 2_000);
    expect(await store.lastSigned('alice', 'comment', other.id)).toBe(T + 2_000);
    expect(await store.lastSigned('alice', 'comment', reply.id, false)).toBeNull();
    expect(await store.lastSigned('bob', 'comment', other.id)).toBeNull();
    expect(await store.signedSince('alice', 'comment', other.id, T + 1_500)).toEqual({ count: 1, earliest: T + 2_000 });
    expect(await store.signedSince('alice', 'comment', other.id, T)).toEqual({ count: 2, earliest: T + 1_000 });
    expect(await store.signedSince('alice', 'vote', other.id, T)).toEqual({ count: 0, earliest: null });
  });

  test('Retry: a failed, retryable action back to pending with a fresh budget; anything else refused with a clear code; one of two racing wins', async () => {
    const [a, b] = await Promise.all([open(), open()]);
    const { id } = await a!.record(transfer('k'), T);
    await expect(a!.retry(id, 'r', T)).rejects.toMatchObject({
      code: 'ERR_SIGNER_NOT_RETRYABLE',
      message: expect.stringMatching(/is pending, not failed/),
    });
    await expect(a!.retry('no-such-id', 'r', T)).rejects.toMatchObject({ code: 'ERR_SIGNER_NOT_FOUND' });
    await a!.signed(id, trxOf(1), 'trx-1', T, T);
    await a!.update(id, { trx: null, state: 'pending' }, T);
    await a!.signed(id, trxOf(2), 'trx-2', T, T);
    await a!.finish(id, { state: 'failed', reason: 'expired: none of the 2 transactions signed for it was included', retryable: true }, T);
    const results = await Promise.allSettled([
      a!.retry(id, 'retried by the operator', T + 1),
      b!.retry(id, 'retried by the operator', T + 1),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    const lost = results.find((r) => r.status === 'rejected');
    expect(lost?.reason).toMatchObject({ code: 'ERR_SIGNER_NOT_RETRYABLE' });
    const retried = await a!.byId(id);
    expect(retried).toMatchObject({
      state: 'pending',
      trx: null,
      signed: 2,
      signs_base: 2,
      reason: 'retried by the operator',
      retryable: null,
      published: true,
      next_at: 0,
    });
    expect((await a!.open()).map((x) => x.id)).toEqual([id]);
    expect(await a!.unpublished()).toEqual([]); // the failure's event is not sent again for a retried action
    // Its old transactions still confirm it.
    expect((await b!.openByTrxId('trx-1'))?.id).toBe(id);
    expect(await b!.signed(id, trxOf(3), 'trx-3', T, T + 2)).toBe(true);
    expect((await b!.byId(id))?.signed).toBe(3);

    const bad = await a!.record(transfer('bad'), T);
    await a!.finish(bad.id, { state: 'failed', reason: 'missing required active authority', retryable: false }, T);
    await expect(a!.retry(bad.id, 'r', T)).rejects.toMatchObject({
      code: 'ERR_SIGNER_NOT_RETRYABLE',
      message: expect.stringMatching(/failed for good \(missing required active authority\)/),
    });
    expect(await a!.byId(bad.id)).toMatchObject({ state: 'failed', retryable: false, published: false });
  });
});
