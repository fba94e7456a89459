import { join } from 'node:path';

import type { ParsedEmailRequest } from '@steem-bot/config';
import type { OutboxEvent, OutboxTarget } from '@steem-bot/store';
import { storeImplementations } from '@steem-bot/testkit';

import { type MailerStore, MailStore, newClient, PostgresMailerStore, SqliteMailerStore } from '../src';

// One contract, two implementations: the same tests against the SQLite file and against a real
// PostgreSQL (TEST_DATABASE_URL; its own schema per test, dropped after).
const impls = storeImplementations<MailerStore>('mailer', {
  sqlite: (dir) => new SqliteMailerStore(new MailStore(join(dir, 'mailer.sqlite'))),
  postgres: (url, schema) => PostgresMailerStore.open({ url, schema, poolSize: 3 }),
});

const T = Date.parse('2027-03-27T00:00:05Z');
const DAY = 86_400_000;
const req = (subject: string, extra: Partial<ParsedEmailRequest> = {}): ParsedEmailRequest => ({
  to: ['bob@example.com'],
  subject,
  text: 'hello',
  ...extra,
});
const enqueue = (
  store: MailerStore,
  client: string,
  subject: string,
  options: { key?: string; now?: number; extra?: Partial<ParsedEmailRequest> } = {},
) =>
  store.enqueue({
    client,
    key: options.key,
    request: req(subject, options.extra),
    tid: `tid-${subject}`,
    now: options.now ?? T,
    domain: 'x.org',
  });

/** The app's stream as the relay sees it: a head and what was appended (a crash can leave the head ahead of the outbox). */
function stream(head: number | null = null): OutboxTarget & { events: OutboxEvent[] } {
  const events: OutboxEvent[] = [];
  return {
    events,
    get head() {
      return events.at(-1)?.pos ?? head;
    },
    append(batch) {
      events.push(...batch);
      return Promise.resolve();
    },
  };
}

describe.each(impls)('MailerStore conformance: %s', (_name, harness) => {
  const open = (): Promise<MailerStore> => harness.open();
  beforeEach(() => harness.setup());
  afterEach(() => harness.teardown());

  test('intake: a key replayed with the same body returns the same message, another body is a conflict; the pending cap counts unsent ones', async () => {
    const store = await open();
    const first = await enqueue(store, 'shop', 'a', { key: 'order-1' });
    expect(first).toMatchObject({ status: 'scheduled', created: true });
    expect(first.message).toMatchObject({
      client: 'shop',
      idem_key: 'order-1',
      send_at: T,
      attempts: 0,
      message_id: `<${first.id}@x.org>`,
    });
    expect(typeof first.message?.seq).toBe('number');
    expect(await enqueue(store, 'shop', 'a', { key: 'order-1' })).toMatchObject({ id: first.id, created: false });
    await expect(enqueue(store, 'shop', 'b', { key: 'order-1' })).rejects.toMatchObject({ code: 'ERR_MAILER_CONFLICT' });
    expect(await enqueue(store, 'blog', 'a', { key: 'order-1' })).toMatchObject({ created: true }); // keys are per client
    const capped = { client: 'shop', key: undefined, request: req('c'), tid: 't', now: T, domain: 'x.org', maxPending: 1 };
    await expect(store.enqueue(capped)).rejects.toMatchObject({ code: 'ERR_MAILER_TOO_MANY_PENDING' });
    expect(await store.counts()).toEqual({ scheduled: 2 }); // the refused ones left nothing behind
  });

  test('the same key raced from several processes stores one message', async () => {
    const handles = await Promise.all([1, 2, 3, 4].map(() => open()));
    const results = await Promise.all(handles.map((s) => enqueue(s, 'shop', 'same', { key: 'k' })));
    expect(new Set(results.map((r) => r.id)).size).toBe(1);
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(await handles[0]!.counts()).toEqual({ scheduled: 1 });
  });

  test('get, list by client and status with a cursor, cancel of a scheduled message only', async () => {
    const store = await open();
    const ids = [];
    for (const s of ['a', 'b', 'c']) ids.push((await enqueue(store, 'shop', s)).id);
    await enqueue(store, 'blog', 'other');
    expect((await store.get(ids[0]!))?.request.subject).toBe('a');
    expect(await store.get(ids[0]!, 'blog')).toBeUndefined();
    const page = await store.list('shop', { limit: 2 });
    expect(page.map((m) => m.request.subject)).toEqual(['a', 'b']);
    expect((await store.list('shop', { limit: 2, after: page[1]!.seq })).map((m) => m.request.subject)).toEqual(['c']);
    expect(await store.cancel(ids[1]!, 'shop', T + 1)).toMatchObject({ status: 'cancelled', finished_at: T + 1 });
    expect((await store.list('shop', { limit: 10, status: 'cancelled' })).map((m) => m.id)).toEqual([ids[1]]);
    await expect(store.cancel(ids[1]!, 'shop', T)).rejects.toMatchObject({ code: 'ERR_MAILER_CONFLICT' });
    await expect(store.cancel(ids[0]!, 'blog', T)).rejects.toMatchObject({ code: 'ERR_MAILER_NOT_FOUND' });
  });

  test('claims: several workers racing never get the same message; nothing is claimed before it is due or while leased', async () => {
    const handles = await Promise.all([1, 2, 3, 4].map(() => open()));
    for (let i = 0; i < 40; i++) await enqueue(handles[0]!, 'shop', `m${i}`);
    await enqueue(handles[0]!, 'shop', 'later', { extra: { send_at: new Date(T + 60_000).toISOString() } });
    const claimed = (await Promise.all(handles.map((s, i) => s.claimDue(`w${i}`, T, 10_000, 15)))).flat();
    expect(claimed).toHaveLength(40);
    expect(new Set(claimed.map((m) => m.id)).size).toBe(40);
    expect(claimed.every((m) => m.status === 'sending' && m.lease_until === T + 10_000)).toBe(true);
    expect(await handles[0]!.claimDue('w0', T + 9_999, 10_000, 10)).toEqual([]); // all leased, 'later' not due
  });

  test('claims: at most maxChecked with a check_url, the rest plain ones; nextDue can leave check_url messages out', async () => {
    const store = await open();
    for (let i = 0; i < 5; i++) await enqueue(store, 'shop', `checked${i}`, { extra: { check_url: 'https://example.com/c' } });
    await enqueue(store, 'shop', 'plain', { now: T + 100 });
    const mixed = await store.claimDue('w', T + 100, 10_000, 10, 2);
    expect(mixed.map((m) => m.request.subject)).toEqual(['checked0', 'checked1', 'plain']);
    const holding = mixed.map((m) => m.seq);
    expect(await store.nextDue(holding)).toBe(T);
    expect(await store.nextDue(holding, false)).toBeUndefined();
    expect(await store.nextDue([], false)).toBe(T + 10_100); // a lease not held by a send in flight expires
  });

  test('leases: renewed for the sends in flight, taken over once expired, never while in flight; release gives them back', async () => {
    const [a, b] = await Promise.all([open(), open()]);
    const { id } = await enqueue(a!, 'shop', 'm');
    const [claimed] = await a!.claimDue('a', T, 1_000, 10);
    expect(await a!.renewLeases('a', [claimed!.seq], T + 5_000)).toBe(1);
    expect(await b!.renewLeases('b', [claimed!.seq], T + 9_000)).toBe(0); // not b's lease
    expect(await b!.claimDue('b', T + 2_000, 1_000, 10)).toEqual([]); // renewed: not expired
    expect(await a!.nextDue([])).toBe(T + 5_000);
    expect(await a!.nextDue([claimed!.seq])).toBeUndefined();
    expect(await a!.claimDue('a', T + 6_000, 1_000, 10, 10, [claimed!.seq])).toEqual([]); // still in flight at a: expired or not
    const [taken] = await b!.claimDue('b', T + 6_000, 1_000, 10);
    expect(taken).toMatchObject({ id, lease_owner: 'b' });
    // The old owner's outcome no longer counts.
    const update = { status: 'sent' as const, now: T + 6_500, durationMs: 5, countsAsAttempt: true };
    expect(await a!.finish(claimed!.seq, 'a', 'sent', update)).toBe(false);
    expect(await b!.release('b')).toBe(1);
    expect(await a!.get(id)).toMatchObject({ status: 'scheduled', lease_owner: null, lease_until: null });
  });

  test('a lease its owner holds with no send behind it (the claim’s answer was lost) is not renewed and comes back to that owner', async () => {
    const store = await open();
    const { id } = await enqueue(store, 'shop', 'orphan');
    const { id: other } = await enqueue(store, 'shop', 'sending');
    const [orphan, sending] = await store.claimDue('w', T, 1_000, 10);
    expect([orphan?.id, sending?.id]).toEqual([id, other]);
    // Only the send in flight is renewed.
    expect(await store.renewLeases('w', [sending!.seq], T + 5_000)).toBe(1);
    const [again] = await store.claimDue('w', T + 1_000, 1_000, 10, 10, [sending!.seq]);
    expect(again).toMatchObject({ id, lease_owner: 'w', lease_until: T + 2_000 });
  });

  test('finish records the attempt and the state; dead messages can be retried; counts and oldestDue', async () => {
    const store = await open();
    const { id } = await enqueue(store, 'shop', 'm');
    expect(await store.oldestDue(T + 10)).toBe(T);
    const [m] = await store.claimDue('w', T, 1_000, 1);
    const retrying = {
      status: 'retrying' as const,
      error: '451 later',
      nextAttemptAt: T + 500,
      now: T + 10,
      durationMs: 7,
      countsAsAttempt: true,
    };
    expect(await store.finish(m!.seq, 'w', 'temporary', retrying)).toBe(true);
    expect(await store.get(id)).toMatchObject({ status: 'retrying', attempts: 1, last_error: '451 later', next_attempt_at: T + 500 });
    const [again] = await store.claimDue('w', T + 500, 1_000, 1);
    const dead = { status: 'dead' as const, error: '550 no', now: T + 600, durationMs: 3, countsAsAttempt: true };
    expect(await store.finish(again!.seq, 'w', 'permanent', dead)).toBe(true);
    expect(await store.attempts(m!.seq)).toEqual([
      { at: T + 10, outcome: 'temporary', error: '451 later', duration_ms: 7 },
      { at: T + 600, outcome: 'permanent', error: '550 no', duration_ms: 3 },
    ]);
    expect(await store.counts()).toEqual({ dead: 1 });
    const queuedBefore = (await store.pendingEvents('mailer')).filter((e) => e.name === 'email.queued').length;
    expect(await store.retry(id, T + 700)).toBe(true);
    expect(await store.retry(id, T + 700)).toBe(false); // no longer dead
    // Queued again with the state change (outbox), once: the worker wakes, subscribers see it.
    const queued = (await store.pendingEvents('mailer')).filter((e) => e.name === 'email.queued');
    expect(queued).toHaveLength(queuedBefore + 1);
    expect(queued.at(-1)?.payload).toMatchObject({ id, client: 'shop' });
    expect(await store.get(id)).toMatchObject({ status: 'scheduled', attempts: 0, next_attempt_at: T + 700, finished_at: null });
  });

  test('purge keeps pending messages; a purged message’s key remembers its status until the key is purged too', async () => {
    const store = await open();
    const sent = await enqueue(store, 'shop', 'old', { key: 'k1' });
    const pending = await enqueue(store, 'shop', 'pending');
    const [m] = await store.claimDue('w', T, 1_000, 1);
    expect(m?.id).toBe(sent.id);
    await store.finish(m!.seq, 'w', 'sent', { status: 'sent', now: T, durationMs: 1, countsAsAttempt: true });
    expect(await store.purge(T + 31 * DAY, 30 * DAY, 400 * DAY)).toEqual({ messages: 1, keys: 0 });
    expect(await store.get(sent.id)).toBeUndefined();
    expect(await store.get(pending.id)).toBeDefined();
    expect(await enqueue(store, 'shop', 'old', { key: 'k1' })).toEqual({ id: sent.id, status: 'sent', created: false, message: undefined });
    expect(await store.purge(T + 401 * DAY, 30 * DAY, 400 * DAY)).toEqual({ messages: 0, keys: 1 });
  });

  test('clients: a name is never given out twice, not even once revoked', async () => {
    const store = await open();
    const { row } = newClient('shop', ['a@x.org'], T);
    await store.addClient(row);
    expect(await store.client('shop')).toMatchObject({ name: 'shop', allowed_from: '["a@x.org"]', created_at: T, revoked_at: null });
    await expect(store.addClient(row)).rejects.toMatchObject({ code: 'ERR_MAILER_CONFLICT', message: 'client shop exists' });
    expect(await store.revokeClient('shop', T + 1)).toBe(true);
    expect(await store.revokeClient('shop', T + 2)).toBe(false);
    await expect(store.addClient(row)).rejects.toMatchObject({ message: expect.stringMatching(/never reused/) });
    expect((await store.clients()).map((c) => [c.name, c.revoked_at])).toEqual([['shop', T + 1]]);
  });

  test('outbox: every state change writes its event in its transaction; a relay after a crash sends each once, in order', async () => {
    const store = await open();
    const a = await enqueue(store, 'shop', 'a');
    const b = await enqueue(store, 'shop', 'b');
    await store.cancel(b.id, 'shop', T + 1);
    await enqueue(store, 'shop', 'a'); // no key: a second message
    await expect(enqueue(store, 'x', 'c', { key: 'k' }).then(() => store.cancel(a.id, 'nobody', T))).rejects.toThrow(); // no event for a refusal
    const [m] = await store.claimDue('w', T, 1_000, 1);
    const event = { name: 'email.sent', payload: { id: m!.id, client: 'shop' }, tid: m!.tid };
    await store.finish(m!.seq, 'w', 'sent', { status: 'sent', now: T + 2, durationMs: 1, countsAsAttempt: true }, event);

    // "The process crashed after the commits": another handle relays what waits.
    const other = await open();
    const waiting = await other.pendingEvents('mailer');
    expect(waiting.map((e) => e.name)).toEqual(['email.queued', 'email.queued', 'email.cancelled', 'email.queued', 'email.queued']);
    const positions = waiting.map((e) => e.pos);
    expect([...positions].sort((x, y) => x - y)).toEqual(positions);
    expect(new Set(positions).size).toBe(positions.length);
    expect(positions[0]).toBeGreaterThanOrEqual(T * 1000);

    const mailer = stream();
    await Promise.all([other.relay('mailer', mailer), store.relay('mailer', mailer), other.relay('mailer', mailer)]);
    expect(mailer.events.map((e) => e.pos)).toEqual(positions);
    expect(await other.pendingEvents('mailer')).toEqual([]);
    await store.relay('mailer', mailer);
    expect(mailer.events).toHaveLength(5);

    // "Crashed after the append, before the delete": the stream already holds the event; it is only removed.
    const worker = stream((await store.pendingEvents('mailer-worker'))[0]!.pos);
    expect((await store.pendingEvents('mailer-worker')).map((e) => [e.name, e.payload, e.tid])).toEqual([
      ['email.sent', event.payload, m!.tid],
    ]);
    await store.relay('mailer-worker', worker);
    expect(worker.events).toEqual([]);
    expect(await store.pendingEvents('mailer-worker')).toEqual([]);
    // Positions continue above the stream's head.
    await enqueue(store, 'shop', 'next');
    expect((await store.pendingEvents('mailer'))[0]!.pos).toBeGreaterThan(positions.at(-1)!);
  });
});

// PostgreSQL only: workers on other hosts hear of a new message by NOTIFY (SQLite's workers hear
// the bus's email.queued instead; its watch is a no-op).
const postgres = impls.find(([name]) => name === 'postgres')?.[1];
(postgres ? describe : describe.skip)('PostgresMailerStore wake-ups', () => {
  beforeEach(() => postgres?.setup());
  afterEach(() => postgres?.teardown());

  test('an enqueue on another handle wakes a watcher at commit; a refused one does not', async () => {
    const [api, worker] = await Promise.all([postgres!.open(), postgres!.open()]);
    let wakes = 0;
    const stop = await worker.watch(() => wakes++);
    try {
      await enqueue(api, 'shop', 'a', { key: 'k' });
      const deadline = Date.now() + 5_000;
      while (wakes === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(wakes).toBe(1);
      await expect(enqueue(api, 'shop', 'other body', { key: 'k' })).rejects.toMatchObject({ code: 'ERR_MAILER_CONFLICT' });
      await new Promise((r) => setTimeout(r, 200));
      expect(wakes).toBe(1); // rolled back: no NOTIFY
    } finally {
      await stop();
    }
  });
});
