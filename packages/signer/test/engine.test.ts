import { join } from 'node:path';

import { DevNode, type FaultSpec } from '@steem-bot/devnode';
import { keptLogger, type StoreHarness, storeImplementations, waitFor } from '@steem-bot/testkit';

import { NodeClient, PostgresSignerStore, type SignerStore, SqliteSignerStore } from '../src';
import { type Harness, onChain, OTHER_KEY, startNode, startSigner, TEST_KEY } from './helpers';

// The engine against each store: the SQLite file, and PostgreSQL when TEST_DATABASE_URL is set.
const impls = storeImplementations<SignerStore>('signer-engine', {
  sqlite: (dir) => new SqliteSignerStore(join(dir, 'signer.sqlite')),
  postgres: (url, schema) => PostgresSignerStore.open({ url, schema }),
});
let harness: StoreHarness<SignerStore>;

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await harness.teardown();
});

async function setup(
  faults: FaultSpec[] = [],
  options: Parameters<typeof startSigner>[1] = {},
): Promise<{ node: DevNode; h: Harness; calls: string[] }> {
  const calls: string[] = [];
  const node = await startNode(faults, (method) => calls.push(method));
  cleanups.push(() => node.stop());
  const h = startSigner(node, options, await harness.open());
  cleanups.push(() => h.stop());
  return { node, h, calls };
}

const transfer = (memo: string, account = 'alice') => ({ account, to: 'carol', amount: '1.000 STEEM', memo });
const ctx = (key: string) => ({ key, tid: `tid-${key}` });
const transfersWithMemo = (node: DevNode, memo: string) =>
  onChain(node, (t) => t.ops.some((o) => o.type === 'transfer_operation' && o.value.memo === memo));

describe.each(impls)('signer engine against devnode (real HTTP), store %s', (_name, impl) => {
  beforeEach(() => {
    harness = impl;
    harness.setup();
  });

  test('a transfer and a vote: recorded, signed once, on chain once, confirmed with trx_id and block_num', async () => {
    const { node, h } = await setup();
    const t = await h.signer.accept('transfer', transfer('k1'), ctx('k1'));
    expect(t.state).toBe('pending');
    expect(await h.signer.accept('transfer', transfer('k1'), ctx('k1'))).toEqual(t); // the same key: the same action
    await expect(h.signer.accept('transfer', transfer('other'), ctx('k1'))).rejects.toMatchObject({ code: 'ERR_SIGNER_CONFLICT' });
    await h.signer.accept('vote', { account: 'bob', author: 'carol', permlink: 'a-post', weight: 5000 }, ctx('v1'));
    await h.until('k1', ['confirmed']);
    await h.until('v1', ['confirmed']);
    const action = await h.store.byKey('k1');
    const chain = transfersWithMemo(node, 'k1');
    expect(chain).toHaveLength(1);
    expect(action).toMatchObject({ state: 'confirmed', signed: 1, trx_id: chain[0]?.id, block_num: chain[0]?.block });
    expect(h.events).toContainEqual({
      name: 'transaction.confirmed',
      payload: { action_id: t.action_id, key: 'k1', trx_id: chain[0]?.id, block_num: chain[0]?.block },
    });
    const v1 = await h.store.byKey('v1');
    expect(onChain(node, (x) => x.id === v1?.trx_id)[0]?.ops).toEqual([
      { type: 'vote_operation', value: { voter: 'bob', author: 'carol', permlink: 'a-post', weight: 5000 } },
    ]);
  });

  test('answers reset after acceptance: the same signed transaction is looked up / rebroadcast, one on chain', async () => {
    const { node, h } = await setup([{ kind: 'accept-reset', forMs: 1_500 }]);
    await h.signer.accept('transfer', transfer('reset'), ctx('reset'));
    await h.until('reset', ['confirmed']);
    expect(transfersWithMemo(node, 'reset')).toHaveLength(1);
    expect((await h.store.byKey('reset'))?.signed).toBe(1);
    expect(node.stats.faults['accept-reset']).toBeGreaterThanOrEqual(1);
  });

  test('duplicate: the node says it already has it; confirmed by lookup, not failed, signed once', async () => {
    const { node, h } = await setup([{ kind: 'duplicate' }]);
    await h.signer.accept('transfer', transfer('dup'), ctx('dup'));
    await h.until('dup', ['confirmed']);
    expect(transfersWithMemo(node, 'dup')).toHaveLength(1);
    expect((await h.store.byKey('dup'))?.signed).toBe(1);
  });

  test.each(['drop', 'expire'] as const)(
    '%s once: expires without inclusion (irreversibly), signed again, confirmed; one on chain',
    async (kind) => {
      const { node, h } = await setup([{ kind, forMs: 800 }], { expirationS: 15 });
      await h.signer.accept('transfer', transfer(kind), ctx(kind));
      await h.until(kind, ['confirmed'], 30_000);
      expect(transfersWithMemo(node, kind)).toHaveLength(1);
      expect((await h.store.byKey(kind))?.signed).toBe(2);
    },
  );

  test('drop for ever: after SIGNER_MAX_SIGNS transactions, failed (retryable) with the reason; nothing on chain', async () => {
    const { node, h } = await setup([{ kind: 'drop' }], { expirationS: 9, maxSigns: 2 });
    const { action_id } = await h.signer.accept('transfer', transfer('gone'), ctx('gone'));
    await h.until('gone', ['failed'], 30_000);
    expect(await h.store.byKey('gone')).toMatchObject({
      signed: 2,
      retryable: true,
      reason: expect.stringMatching(/^expired: none of the 2 transactions/),
    });
    expect(h.events).toContainEqual({
      name: 'transaction.failed',
      payload: { action_id, key: 'gone', reason: expect.stringMatching(/^expired/), retryable: true },
    });
    expect(transfersWithMemo(node, 'gone')).toHaveLength(0);
  });

  test('Retry: a failed, retryable action is signed again with a fresh budget once the drop is over; one on chain; failed then confirmed', async () => {
    const { node, h } = await setup([{ kind: 'drop' }], { expirationS: 9, maxSigns: 2 });
    const { action_id } = await h.signer.accept('transfer', transfer('again'), ctx('again'));
    await h.until('again', ['failed'], 30_000);
    await waitFor(() => h.events.length === 1, 5_000, 'the failed event');
    node.setFaults([]);
    expect(await h.signer.retry(action_id)).toEqual({ action_id, state: 'pending' });
    await h.until('again', ['confirmed'], 30_000);
    const action = await h.store.byKey('again');
    // Two expired transactions, then one more under the fresh budget.
    expect(action).toMatchObject({ state: 'confirmed', signed: 3, signs_base: 2, retryable: null });
    expect((await h.store.transactions(action_id)).map((t) => t.trx_id)).toContain(action?.trx_id);
    const chain = transfersWithMemo(node, 'again');
    expect(chain).toHaveLength(1);
    expect(chain[0]?.id).toBe(action?.trx_id);
    await waitFor(() => h.events.length === 2, 5_000, 'the confirmed event');
    expect(h.events.map((e) => e.name)).toEqual(['transaction.failed', 'transaction.confirmed']);
    // Confirmed now: a second Retry is refused.
    await expect(h.signer.retry(action_id)).rejects.toMatchObject({ code: 'ERR_SIGNER_NOT_RETRYABLE', retryable: false });
  }, 60_000);

  test('Retry refused: unknown id, a pending action, a failure for good, a transaction that can still be included', async () => {
    const { h } = await setup([], { live: true });
    await expect(h.signer.retry('no-such-id')).rejects.toMatchObject({ code: 'ERR_SIGNER_NOT_FOUND' });
    const bad = await h.signer.accept('transfer', transfer('bad', 'mallory'), ctx('bad'));
    await h.until('bad', ['failed']);
    await expect(h.signer.retry(bad.action_id)).rejects.toMatchObject({
      code: 'ERR_SIGNER_NOT_RETRYABLE',
      message: expect.stringMatching(/failed for good \(missing required active authority/),
    });
    // Recorded straight into the store, the engine stopped (no pass acts on them).
    await h.signer.stop();
    const store = h.store;
    const now = Date.now();
    const open = await store.record(
      { key: 'direct', kind: 'transfer', account: 'bob', role: 'active', op: ['transfer', { memo: 'x' }], tid: 't' },
      now,
    );
    await expect(h.signer.retry(open.id)).rejects.toMatchObject({
      code: 'ERR_SIGNER_NOT_RETRYABLE',
      message: expect.stringMatching(/is pending, not failed/),
    });
    // A failed, retryable action whose transaction expires only in 2099: it could still land.
    const trx = {
      ref_block_num: 1,
      ref_block_prefix: 2,
      expiration: '2099-01-01T00:00:00',
      operations: [],
      extensions: [],
      signatures: [],
    };
    const late = await store.record(
      { key: 'late', kind: 'transfer', account: 'bob', role: 'active', op: ['transfer', { memo: 'y' }], tid: 't' },
      now,
    );
    expect(await store.signed(late.id, trx, 'trx-late', Date.parse('2099-01-01T00:00:00Z'), now)).toBe(true);
    expect(await store.finish(late.id, { state: 'failed', reason: 'test', retryable: true }, now)).toBe(true);
    await expect(h.signer.retry(late.id)).rejects.toMatchObject({
      code: 'ERR_SIGNER_NOT_RETRYABLE',
      retryable: true,
      message: expect.stringMatching(/can still be included until 2099-01-01T00:00:00/),
    });
    expect(await store.byId(late.id)).toMatchObject({ state: 'failed', retryable: true });
  });

  test('RC exhausted: the action waits in state waiting-rc (checked before broadcasting), then goes out once RC is back', async () => {
    const { node, h, calls } = await setup([{ kind: 'rc', account: 'alice', forMs: 1_500 }]);
    await h.signer.accept('transfer', transfer('rc'), ctx('rc'));
    await h.until('rc', ['waiting-rc'], 5_000);
    expect((await h.store.byKey('rc'))?.reason).toMatch(/^waiting for resource credits: @alice has 0 RC/);
    expect(calls.filter((m) => m.includes('broadcast'))).toEqual([]);
    await h.until('rc', ['confirmed']);
    expect(transfersWithMemo(node, 'rc')).toHaveLength(1);
  });

  test("wrong authority: failed at once, not retryable, with the node's reason; nothing on chain", async () => {
    const { node, h } = await setup();
    const { action_id } = await h.signer.accept('transfer', transfer('bad', 'mallory'), ctx('bad'));
    await h.until('bad', ['failed']);
    const reason = 'missing required active authority:Missing Active Authority mallory';
    expect(await h.store.byKey('bad')).toMatchObject({ retryable: false, reason, signed: 1 });
    expect(h.events).toContainEqual({ name: 'transaction.failed', payload: { action_id, key: 'bad', reason, retryable: false } });
    expect(transfersWithMemo(node, 'bad')).toHaveLength(0);
    expect(OTHER_KEY).not.toBe(TEST_KEY);
  });

  test('refused before recording: no key for the account, a transaction over 64 KiB', async () => {
    const { h } = await setup();
    await expect(h.signer.accept('vote', { account: 'nobody', author: 'a', permlink: 'b', weight: 1 }, ctx('x'))).rejects.toMatchObject({
      code: 'ERR_SIGNER_NO_KEY',
    });
    await expect(
      h.signer.accept(
        'comment',
        { account: 'alice', parent_author: '', parent_permlink: 'steem', permlink: 'p', body: 'x'.repeat(70_000) },
        ctx('y'),
      ),
    ).rejects.toMatchObject({ code: 'ERR_SIGNER_INPUT' });
    await expect(h.signer.accept('transfer', transfer('z'), { key: undefined, tid: 't' })).rejects.toMatchObject({
      code: 'ERR_SIGNER_INPUT',
    });
    expect(await h.store.all()).toEqual([]);
  });

  test('two votes of one account go out 3 s apart (one writer per account); another account is not held up', async () => {
    const { node, h } = await setup();
    await h.signer.accept('vote', { account: 'alice', author: 'carol', permlink: 'p1', weight: 100 }, ctx('a1'));
    await h.signer.accept('vote', { account: 'alice', author: 'carol', permlink: 'p2', weight: 100 }, ctx('a2'));
    await h.signer.accept('vote', { account: 'bob', author: 'carol', permlink: 'p1', weight: 100 }, ctx('b1'));
    for (const k of ['a1', 'a2', 'b1']) await h.until(k, ['confirmed']);
    const [a1, a2, b1] = await Promise.all(['a1', 'a2', 'b1'].map((k) => h.store.byKey(k)));
    expect((a2?.signed_at ?? 0) - (a1?.signed_at ?? 0)).toBeGreaterThanOrEqual(3_000);
    expect((b1?.signed_at ?? 0) - (a1?.signed_at ?? 0)).toBeLessThan(3_000);
    // On chain, in two blocks at least 3 s of chain time apart.
    const blocks = [a1, a2].map((a) => onChain(node, (t) => t.id === a?.trx_id)[0]?.block ?? 0);
    expect((blocks[1] ?? 0) - (blocks[0] ?? 0)).toBeGreaterThanOrEqual(1);
  });

  test('posts: root posts spaced by the root rule, replies by the reply rule (rules shortened here), each on chain once', async () => {
    const { node, h } = await setup([], { spacing: { vote: 3_000, root: 1_500, reply: 300 } });
    const post = (permlink: string, parent = '') => ({
      account: 'alice',
      parent_author: parent,
      parent_permlink: parent ? 'r1' : 'steem',
      permlink,
      title: parent ? '' : permlink,
      body: 'hello',
    });
    await h.signer.accept('comment', post('r1'), ctx('r1'));
    await h.signer.accept('comment', post('r2'), ctx('r2'));
    await h.signer.accept('comment', post('c1', 'alice'), ctx('c1'));
    await h.signer.accept('comment', post('c2', 'alice'), ctx('c2'));
    for (const k of ['r1', 'r2', 'c1', 'c2']) await h.until(k, ['confirmed']);
    const actions = new Map((await h.store.all()).map((a) => [a.key, a]));
    const at = (k: string): number => actions.get(k)?.signed_at ?? 0;
    expect(at('r2') - at('r1')).toBeGreaterThanOrEqual(1_500);
    expect(at('c2') - at('c1')).toBeGreaterThanOrEqual(300);
    for (const k of ['r1', 'r2', 'c1', 'c2']) expect(onChain(node, (t) => t.id === actions.get(k)?.trx_id)).toHaveLength(1);
  });

  test('custom_json: at most 5 per account per block; the sixth is delayed (not failed) until the first is a block old', async () => {
    const { node, h } = await setup();
    const keys = Array.from({ length: 12 }, (_, i) => `cj${i}`);
    for (const key of keys)
      await h.signer.accept('custom_json', { account: 'alice', id: 'follow', json: JSON.stringify({ key }) }, ctx(key));
    await h.signer.accept('custom_json', { account: 'bob', id: 'follow', json: '{"k":"bob"}' }, ctx('bob-cj'));
    for (const key of [...keys, 'bob-cj']) await h.until(key, ['confirmed']);
    const byKey = new Map((await h.store.all()).map((a) => [a.key, a]));
    const signedAt = keys.map((k) => byKey.get(k)?.signed_at ?? 0);
    // Signed in windows of five, each a block interval (3 s) after the first of the previous one.
    expect((signedAt[5] ?? 0) - (signedAt[0] ?? 0)).toBeGreaterThanOrEqual(3_000);
    expect((signedAt[10] ?? 0) - (signedAt[5] ?? 0)).toBeGreaterThanOrEqual(3_000);
    expect((signedAt[4] ?? 0) - (signedAt[0] ?? 0)).toBeLessThan(3_000);
    const perBlock = new Map<number, number>();
    for (const trx of onChain(node, (t) => t.ops.some((o) => o.type === 'custom_json_operation'))) {
      const op = trx.ops.find((o) => o.type === 'custom_json_operation');
      if (String(op?.value.json).startsWith('{"key":"cj')) perBlock.set(trx.block, (perBlock.get(trx.block) ?? 0) + 1);
    }
    expect([...perBlock.values()].reduce((a, b) => a + b, 0)).toBe(12);
    expect(Math.max(...perBlock.values())).toBeLessThanOrEqual(5);
    // Another account is not held up by alice's limit.
    expect(((await h.store.byKey('bob-cj'))?.signed_at ?? 0) - (signedAt[0] ?? 0)).toBeLessThan(3_000);
  });

  test('a node on another fork refuses the TaPoS: the signer leaves it for another node, where the same transaction goes on chain', async () => {
    // `fork` is a devnode with other block ids past the real blocks (another seed): TaPoS taken
    // from `node` refers to a block it does not have. It is asked first for everything but the
    // TaPoS lookups (`get_*`), which fail on it, so the signer signs with `node`'s TaPoS.
    const node = await startNode();
    cleanups.push(() => node.stop());
    const fork = await DevNode.start({
      intervalMs: 100,
      initialBlocks: 1000,
      synthetic: 6000,
      opsPerBlock: [1, 2],
      libDistance: 3,
      seed: 99,
      faults: [{ kind: 'http502', method: 'get_' }],
    });
    cleanups.push(() => fork.stop());
    const { logger } = keptLogger('client', 'error');
    const h = startSigner(
      node,
      { client: new NodeClient({ nodes: [fork.url, node.url], timeoutMs: 1_000, logger, breakMs: 1 }) },
      await harness.open(),
    );
    cleanups.push(() => h.stop());
    // Past the real blocks, where the two chains differ.
    await waitFor(() => node.chain.head() > 1_001_010 && fork.chain.head() > 1_001_010, 10_000, 'synthetic blocks');
    await h.signer.accept('transfer', transfer('fork'), ctx('fork'));
    await h.until('fork', ['confirmed']);
    expect(transfersWithMemo(node, 'fork')).toHaveLength(1);
    expect(onChain(fork, (t) => t.ops.some((o) => o.value.memo === 'fork'))).toHaveLength(0);
    expect((await h.store.byKey('fork'))?.signed).toBe(1);
    expect(h.lines.some((l) => String(l.msg).includes('refused the TaPoS') && String(l.msg).includes(fork.url))).toBe(true);
  });

  test('dry run: the exact signed transaction is logged, the action ends dry-run, nothing is broadcast', async () => {
    const { h, calls } = await setup([], { live: false });
    await h.signer.accept('transfer', transfer('dry'), ctx('dry'));
    await h.until('dry', ['dry-run']);
    const line = h.lines.find((l) => String(l.msg).startsWith('dry run: would broadcast '));
    const trx = line?.trx as { operations: unknown[]; signatures: string[]; expiration: string };
    expect(trx.operations).toEqual([['transfer', { from: 'alice', to: 'carol', amount: '1.000 STEEM', memo: 'dry' }]]);
    expect(trx.signatures).toHaveLength(1);
    expect(String(line?.msg)).toContain(JSON.stringify(trx));
    expect(calls.filter((m) => m.includes('broadcast'))).toEqual([]);
    expect(h.events).toEqual([]);
    expect(JSON.stringify(h.lines)).not.toContain(TEST_KEY);
  });
});
