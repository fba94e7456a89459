import { join } from 'node:path';

import type { OutboxEvent, OutboxTarget } from '@steem-bot/store';
import { storeImplementations } from '@steem-bot/testkit';

import { type EndpointSpec, PostgresWebhookStore, SqliteWebhookStore, type WebhookStore } from '../src';

// One contract, two implementations: the same tests against the SQLite file and against a real
// PostgreSQL (TEST_DATABASE_URL; its own schema per test, dropped after).
const impls = storeImplementations<WebhookStore>('webhooks', {
  sqlite: (dir) => new SqliteWebhookStore(join(dir, 'webhooks.sqlite')),
  postgres: (url, schema) => PostgresWebhookStore.open({ url, schema }),
});

const T = Date.parse('2027-03-27T00:00:05Z'); // ms since the epoch: beyond 32 bits
const CHAIN_POS = 93_000_000 * 1_000_000 + 17; // a chain op's position: beyond 32 bits
const spec = (over: Partial<EndpointSpec> = {}): EndpointSpec => ({
  url: 'https://example.com/hook',
  events: ['transfer'],
  filter: { to: 'alice' },
  description: 'd',
  disabled: false,
  ...over,
});
const client = (name: string, owned: string[] = []) => ({
  name,
  token_hash: `hash-${name}`,
  owned_events: JSON.stringify(owned),
  granted_tasks: '[]',
  created_at: T,
});

/** The app's bus stream as the relay sees it: a head, and appends (which may be made to fail). */
class Stream implements OutboxTarget {
  readonly got: OutboxEvent[] = [];
  failing = false;
  constructor(public head: number | null = null) {}
  append(events: readonly OutboxEvent[]): Promise<void> {
    if (this.failing) return Promise.reject(new Error('the stream is not reachable'));
    this.got.push(...events);
    this.head = (events.at(-1) as OutboxEvent).pos;
    return Promise.resolve();
  }
}

describe.each(impls)('WebhookStore conformance: %s', (_name, harness) => {
  const open = (): Promise<WebhookStore> => harness.open();
  beforeEach(() => harness.setup());
  afterEach(() => harness.teardown());

  test('clients: added once (a used name is refused, even revoked), listed by name, revoked once, lists set; revoked owners own nothing', async () => {
    const store = await open();
    await store.addClient(client('shop', ['shop.order_paid']));
    await store.addClient(client('crm'));
    // (not `rejects.toThrow()`: better-sqlite3's SqliteError is no Error of the realm of a second test file in a jest worker)
    const again = await store.addClient(client('shop')).then(
      () => 'added',
      (err: unknown) => err,
    );
    expect(again).not.toBe('added');
    expect(await store.client('shop')).toEqual({ ...client('shop', ['shop.order_paid']), revoked_at: null });
    expect(await store.client('nobody')).toBeUndefined();
    expect((await store.clients()).map((c) => c.name)).toEqual(['crm', 'shop']);
    expect(await store.typeOwned('shop.order_paid')).toBe(true);
    await store.setClientLists('crm', ['crm.lead'], ['mailer.email.send']);
    expect(await store.client('crm')).toMatchObject({ owned_events: '["crm.lead"]', granted_tasks: '["mailer.email.send"]' });
    expect(await store.revokeClient('shop', T + 1)).toBe(true);
    expect(await store.revokeClient('shop', T + 2)).toBe(false);
    expect((await store.client('shop'))?.revoked_at).toBe(T + 1);
    expect(await store.typeOwned('shop.order_paid')).toBe(false);
    // another handle (a restart, the CLI) sees the same
    expect((await (await open()).clients()).map((c) => [c.name, c.revoked_at])).toEqual([
      ['crm', null],
      ['shop', T + 1],
    ]);
  });

  test('endpoints: created, the same body again changes nothing, a change resets the retry state; per client; rotation; disabling with its event', async () => {
    const store = await open();
    const first = await store.upsertEndpoint('shop', 'pay', spec(), 'whsec_a', T);
    expect(first).toMatchObject({ created: true, changed: true });
    expect(first.row).toMatchObject({
      client: 'shop',
      id: 'pay',
      events: '["transfer"]',
      filter: '{"to":"alice"}',
      disabled: 0,
      secret: 'whsec_a',
    });
    expect(first.row).toMatchObject({ attempts: 0, next_attempt_at: null, failing_since: null, created_at: T, updated_at: T });
    const again = await store.upsertEndpoint('shop', 'pay', spec(), 'whsec_other', T + 1);
    expect(again).toMatchObject({ created: false, changed: false });
    expect(again.row).toEqual(first.row);

    await store.setRetry(first.row.seq, 3, T + 5_000, T - 1);
    expect(await store.endpointBySeq(first.row.seq)).toMatchObject({ attempts: 3, next_attempt_at: T + 5_000, failing_since: T - 1 });
    const changed = await store.upsertEndpoint('shop', 'pay', spec({ url: 'https://example.com/new' }), 'whsec_other', T + 2);
    expect(changed).toMatchObject({ created: false, changed: true });
    expect(changed.row).toMatchObject({ seq: first.row.seq, url: 'https://example.com/new', secret: 'whsec_a', attempts: 0 });
    expect(changed.row).toMatchObject({ next_attempt_at: null, failing_since: null, updated_at: T + 2 });
    const off = await store.upsertEndpoint('shop', 'pay', spec({ url: 'https://example.com/new', disabled: true }), 'x', T + 3);
    expect(off.row).toMatchObject({ disabled: 1, disabled_reason: 'by the client' });

    await store.upsertEndpoint('crm', 'pay', spec(), 'whsec_c', T);
    await store.upsertEndpoint('shop', 'votes', spec({ events: ['vote'], filter: {} }), 'whsec_v', T);
    expect((await store.endpoints('shop')).map((e) => e.id)).toEqual(['pay', 'votes']);
    expect((await store.endpoints()).map((e) => `${e.client}/${e.id}`)).toEqual(['shop/pay', 'crm/pay', 'shop/votes']);
    expect(await store.countEndpoints('shop')).toBe(2);
    expect(await store.countEndpoints('nobody')).toBe(0);
    expect(await store.endpoint('crm', 'votes')).toBeUndefined();

    await store.rotateSecret(first.row.seq, 'whsec_b', T + 86_400_000);
    expect(await store.endpointBySeq(first.row.seq)).toMatchObject({
      secret: 'whsec_b',
      old_secret: 'whsec_a',
      old_secret_until: T + 86_400_000,
    });

    const votes = (await store.endpoint('shop', 'votes'))?.seq as number;
    const payload = { client: 'shop', endpoint: 'votes', url: 'https://example.com/hook', reason: 'gone' };
    await store.disable(votes, 'gone', T + 9, { name: 'endpoint.disabled', payload, tid: 'tid1' });
    expect(await store.endpointBySeq(votes)).toMatchObject({ disabled: 1, disabled_reason: 'gone', updated_at: T + 9 });
    expect(await store.pendingOwn()).toEqual([{ pos: (T + 9) * 1000, name: 'endpoint.disabled', payload, tid: 'tid1' }]);
  });

  test("enabling (the operator's Enable) clears the reason and the retry state and keeps the cursors; an enabled endpoint is left as it is", async () => {
    const store = await open();
    const { row } = await store.upsertEndpoint('shop', 'pay', spec(), 'whsec_a', T);
    await store.advance(row.seq, 'broadcaster', CHAIN_POS);
    await store.setRetry(row.seq, 7, T + 5_000, T - 1);
    await store.disable(row.seq, '8 tries failed', T + 1);
    expect(await store.enable(row.seq, T + 2)).toBe(true);
    expect(await store.endpointBySeq(row.seq)).toMatchObject({
      disabled: 0,
      disabled_reason: null,
      attempts: 0,
      next_attempt_at: null,
      failing_since: null,
      updated_at: T + 2,
    });
    expect(await store.cursors(row.seq)).toEqual({ broadcaster: CHAIN_POS });
    expect(await store.enable(row.seq, T + 3)).toBe(false);
    expect((await store.endpointBySeq(row.seq))?.updated_at).toBe(T + 2);
    expect(await store.enable(row.seq + 100, T + 3)).toBe(false);
  });

  test('cursors move only forward, except by a replay, which also clears the retry state; a deleted endpoint takes its cursors and log with it', async () => {
    const store = await open();
    const { row } = await store.upsertEndpoint('shop', 'pay', spec(), 's', T);
    expect(await store.cursor(row.seq, 'broadcaster')).toBeNull();
    await store.advance(row.seq, 'broadcaster', CHAIN_POS);
    await store.advance(row.seq, 'broadcaster', CHAIN_POS - 5); // late: no change
    await store.advance(row.seq, 'webhooks', T * 1000);
    expect(await store.cursor(row.seq, 'broadcaster')).toBe(CHAIN_POS);
    expect(await store.cursors(row.seq)).toEqual({ broadcaster: CHAIN_POS, webhooks: T * 1000 });
    await store.setRetry(row.seq, 2, T + 1, T);
    await store.setCursors(row.seq, ['broadcaster', 'mailer'], 1_000_000_000_000 - 1);
    expect(await store.cursors(row.seq)).toEqual({ broadcaster: 999_999_999_999, mailer: 999_999_999_999, webhooks: T * 1000 });
    expect(await store.endpointBySeq(row.seq)).toMatchObject({ attempts: 0, next_attempt_at: null, failing_since: null });

    await store.logDelivery(row.seq, {
      at: T,
      type: 'transfer',
      position: CHAIN_POS,
      webhook_id: 'w',
      status: 200,
      error: null,
      duration_ms: 3,
      response: 'ok',
    });
    expect(await store.deleteEndpoint('shop', 'nope')).toBeUndefined();
    expect((await store.deleteEndpoint('shop', 'pay'))?.seq).toBe(row.seq);
    expect(await store.endpoint('shop', 'pay')).toBeUndefined();
    expect(await store.cursors(row.seq)).toEqual({});
    expect(await store.deliveries(row.seq, 0, 10)).toEqual([]);
    // a new endpoint under the same id starts afresh
    const again = await store.upsertEndpoint('shop', 'pay', spec(), 's2', T);
    expect(again.created).toBe(true);
    expect(again.row.seq).not.toBe(row.seq);
    expect(await store.cursors(again.row.seq)).toEqual({});
  });

  test('the attempt log pages by cursor, oldest first, and keeps the newest 1,000 per endpoint', async () => {
    const store = await open();
    const a = (await store.upsertEndpoint('shop', 'a', spec(), 's', T)).row.seq;
    const b = (await store.upsertEndpoint('shop', 'b', spec(), 's', T)).row.seq;
    await store.logDelivery(b, {
      at: T,
      type: 'vote',
      position: 1,
      webhook_id: 'b1',
      status: null,
      error: 'timeout',
      duration_ms: 15_000,
      response: null,
    });
    for (let i = 0; i < 1_005; i++) {
      await store.logDelivery(a, {
        at: T + i,
        type: 'transfer',
        position: CHAIN_POS + i,
        webhook_id: `msg_broadcaster_${CHAIN_POS + i}`,
        status: i % 2 ? 200 : 500,
        error: i % 2 ? null : 'HTTP 500',
        duration_ms: i,
        response: 'x',
      });
    }
    const first = await store.deliveries(a, 0, 3);
    expect(first.map((d) => d.position)).toEqual([CHAIN_POS + 5, CHAIN_POS + 6, CHAIN_POS + 7]);
    expect(first[0]).toMatchObject({ at: T + 5, type: 'transfer', status: 200, error: null, duration_ms: 5, response: 'x' });
    expect(first[1]).toMatchObject({ status: 500, error: 'HTTP 500' });
    const next = await store.deliveries(a, (first.at(-1) as { seq: number }).seq, 2);
    expect(next.map((d) => d.position)).toEqual([CHAIN_POS + 8, CHAIN_POS + 9]);
    let all = 0;
    for (let page = await store.deliveries(a, 0, 200); page.length > 0;) {
      all += page.length;
      page = await store.deliveries(a, (page.at(-1) as { seq: number }).seq, 200);
    }
    expect(all).toBe(1_000);
    expect(await store.deliveries(b, 0, 10)).toEqual([expect.objectContaining({ webhook_id: 'b1', status: null, error: 'timeout' })]);
  });

  test('a logged try carries what it settled, in the same transaction: the cursor past a delivered event, the retry state', async () => {
    const store = await open();
    const { row } = await store.upsertEndpoint('shop', 'pay', spec(), 's', T);
    const log = {
      at: T,
      type: 'transfer',
      position: CHAIN_POS,
      webhook_id: 'w',
      status: 500,
      error: 'HTTP 500',
      duration_ms: 1,
      response: null,
    };
    await store.logDelivery(row.seq, log, { retry: { attempts: 1, nextAttemptAt: T + 5_000, failingSince: T } });
    expect(await store.endpointBySeq(row.seq)).toMatchObject({ attempts: 1, next_attempt_at: T + 5_000, failing_since: T });
    expect(await store.cursors(row.seq)).toEqual({});
    await store.logDelivery(
      row.seq,
      { ...log, status: 200, error: null },
      { advance: { app: 'broadcaster', pos: CHAIN_POS }, retry: { attempts: 0, nextAttemptAt: null, failingSince: null } },
    );
    expect(await store.endpointBySeq(row.seq)).toMatchObject({ attempts: 0, next_attempt_at: null, failing_since: null });
    expect(await store.cursors(row.seq)).toEqual({ broadcaster: CHAIN_POS });
    await store.logDelivery(
      row.seq,
      { ...log, status: 200, error: null, position: CHAIN_POS - 9 },
      { advance: { app: 'broadcaster', pos: CHAIN_POS - 9 } },
    );
    expect(await store.cursors(row.seq)).toEqual({ broadcaster: CHAIN_POS }); // never back
    expect((await store.deliveries(row.seq, 0, 10)).map((d) => d.status)).toEqual([500, 200, 200]);
  });

  test('own events: positions time-based and strictly increasing; the relay moves them in order, skips what the stream holds, and keeps them when the stream fails', async () => {
    const store = await open();
    const post = (n: number, now: number) =>
      store.addOwnEvent({ name: 'event.posted', payload: { client: 'shop', type: 'shop.x', data: { n } }, tid: `t${n}` }, now);
    const p1 = await post(1, T);
    const p2 = await post(2, T); // the same ms
    const p3 = await post(3, T - 10_000); // a clock that stepped back
    expect([p1, p2, p3]).toEqual([T * 1000, T * 1000 + 1, T * 1000 + 2]);

    const stream = new Stream(p1); // the first reached the stream before a crash
    stream.failing = true;
    await expect(store.relayOwn(stream)).rejects.toThrow('not reachable');
    expect((await store.pendingOwn()).map((e) => e.pos)).toEqual([p1, p2, p3]);
    stream.failing = false;
    await Promise.all([store.relayOwn(stream), store.relayOwn(stream)]); // concurrent: one run
    expect(stream.got).toEqual([
      { pos: p2, name: 'event.posted', payload: { client: 'shop', type: 'shop.x', data: { n: 2 } }, tid: 't2' },
      { pos: p3, name: 'event.posted', payload: { client: 'shop', type: 'shop.x', data: { n: 3 } }, tid: 't3' },
    ]);
    expect(await store.pendingOwn()).toEqual([]);

    // A stream that is ahead (events published before this store): positions continue above it.
    const ahead = new Stream(T * 1000 + 50);
    await store.relayOwn(ahead);
    expect(await post(4, T)).toBe(T * 1000 + 51);
    // A new handle continues the positions too.
    const other = await open();
    expect(await other.addOwnEvent({ name: 'event.posted', payload: {}, tid: 't5' }, T)).toBe(T * 1000 + 52);
  });

  test('task keys: the first reply is kept, a second save of the key changes nothing; keys are per client', async () => {
    const store = await open();
    expect(await store.taskKey('shop', 'k1')).toBeUndefined();
    await store.saveTaskKey('shop', 'k1', 'mailer.email.send', 'h1', { id: 'm1' }, T);
    await store.saveTaskKey('shop', 'k1', 'mailer.email.send', 'h2', { id: 'm2' }, T);
    await store.saveTaskKey('crm', 'k1', 'digest.report.send', 'h3', undefined, T);
    expect(await store.taskKey('shop', 'k1')).toEqual({ name: 'mailer.email.send', body_hash: 'h1', reply: '{"id":"m1"}' });
    expect(await store.taskKey('crm', 'k1')).toEqual({ name: 'digest.report.send', body_hash: 'h3', reply: 'null' });
  });
});
