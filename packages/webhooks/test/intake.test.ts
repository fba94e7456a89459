import { catalogue, extendCatalogue } from '@steem-bot/config';
import { openDatabase } from '@steem-bot/store';
import { keptLogger } from '@steem-bot/testkit';
import { z } from 'zod';

import { ownRelayer } from '../src/relay';
import { MIGRATIONS } from '../src/store-sqlite';
import { call, client, Receiver, startApp, waitFor, webhooksEnv } from './helpers';

// The digest bot's own task, declared by its package (not in the project's catalogue).
const digestCatalogue = extendCatalogue(catalogue, 'digest', {
  tasks: {
    'digest.report.send': { payload: z.object({ period: z.string().default('day') }), reply: z.object({ ops: z.number().int() }) },
  },
});

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(vars: Record<string, string> = {}, now?: () => number) {
  const w = webhooksEnv(vars);
  cleanups.push(() => w.cleanup());
  const app = await startApp(w, now ? { now } : {});
  cleanups.push(() => app.stop());
  return { w, app };
}

describe('events and tasks posted in by outside apps', () => {
  test('a posted event is appended to the webhooks bus stream: it reaches the endpoints registered for it and a bus subscriber, also after a restart', async () => {
    const w = webhooksEnv({}, { ipc: true });
    cleanups.push(() => w.cleanup());
    let app = await startApp(w);
    const shop = await client(w, 'shop', ['shop.order_paid']);
    const crm = await client(w, 'crm');
    const r = await Receiver.start();
    cleanups.push(() => r.close());
    const put = await call(app.url, crm, 'PUT', '/v1/endpoints/orders', {
      url: r.url,
      events: ['shop.order_paid'],
      filter: { currency: 'STEEM' },
    });
    expect(put.status).toBe(201);
    r.secrets.push(String(put.body.secret));
    const bot = w.busFor('some-bot');
    cleanups.push(() => bot.close());
    const seen: Array<{ type: string; data: unknown; tid: string }> = [];
    bot.subscribe('webhooks', { 'event.posted': (p, ctx) => void seen.push({ type: p.type, data: p.data, tid: ctx.tid }) }, { from: 0 });

    const answers = [];
    for (const [i, currency] of ['STEEM', 'SBD', 'STEEM'].entries()) {
      const res = await call(app.url, shop, 'POST', '/v1/events/shop.order_paid', { order: i, currency });
      expect(res.status).toBe(202);
      answers.push(res.body);
    }
    await waitFor(() => r.got.length === 2 && seen.length === 3, 5_000, 'deliveries and bus events');
    expect(r.got.map((g) => [g.body.type, g.body.data, g.body.position, g.body.tid, g.verified])).toEqual([
      ['shop.order_paid', { order: 0, currency: 'STEEM' }, answers[0]?.position, answers[0]?.tid, true],
      ['shop.order_paid', { order: 2, currency: 'STEEM' }, answers[2]?.position, answers[2]?.tid, true],
    ]);
    expect(r.got[0]?.id).toBe(`msg_webhooks_${String(answers[0]?.position)}`);
    expect(seen.map((s) => [s.type, s.data, s.tid])).toEqual(
      answers.map((a, i) => ['shop.order_paid', { order: i, currency: i === 1 ? 'SBD' : 'STEEM' }, a.tid]),
    );

    // the app's bus stream is on disk: a subscriber that comes after a restart gets every posted event
    await app.stop();
    app = await startApp(w);
    cleanups.push(() => app.stop());
    const late = w.busFor('late-bot');
    cleanups.push(() => late.close());
    const later: number[] = [];
    late.subscribe('webhooks', { 'event.posted': (_p, ctx) => void later.push(ctx.pos) }, { from: 0 });
    await waitFor(() => later.length === 3, 5_000, 'backfilled events');
    expect(later).toEqual(answers.map((a) => a.position));
  });

  test('a store from before the bus stream: the events its old stream table held reach the bus stream once (the ones already there are not repeated) and the table is gone', async () => {
    // Version 1 kept the own events in a `stream` table and published them from there.
    const legacy = (file: string): void => {
      const db = openDatabase(file, { migrations: MIGRATIONS.slice(0, 1) });
      const insert = db.prepare('INSERT INTO stream VALUES (?, ?, ?, ?, ?)');
      for (const pos of [1_000, 2_000, 3_000])
        insert.run(pos, 'event.posted', JSON.stringify({ client: 'shop', type: 'shop.order_paid', data: { pos } }), `tid${pos}`, 1);
      db.close();
    };
    const w = webhooksEnv({}, { ipc: true, seed: legacy });
    cleanups.push(() => w.cleanup());
    expect(w.store.db.prepare("SELECT name FROM sqlite_master WHERE name = 'stream'").get()).toBeUndefined();
    expect(w.store.outbox.pending().map((e) => e.pos)).toEqual([1_000, 2_000, 3_000]);
    // The first of them reached the stream before the upgrade (published, then the process stopped).
    const before = w.busFor('webhooks');
    await before.serve();
    await before.publish(
      'event.posted',
      { client: 'shop', type: 'shop.order_paid', data: { pos: 1_000 } },
      { position: 1_000, tid: 'tid1000' },
    );
    await before.close();

    const app = await startApp(w);
    cleanups.push(() => app.stop());
    const bot = w.busFor('some-bot');
    cleanups.push(() => bot.close());
    const seen: Array<[number, unknown]> = [];
    bot.subscribe('webhooks', { 'event.posted': (p, ctx) => void seen.push([ctx.pos, p.data]) }, { from: 0 });
    await waitFor(async () => seen.length >= 3 && (await w.store.pendingOwn()).length === 0, 5_000, 'the relayed events');
    await new Promise((r) => setTimeout(r, 100)); // nothing more comes
    expect(seen).toEqual([1_000, 2_000, 3_000].map((pos) => [pos, { pos }]));
  });

  test('a relay that fails (the stream not served yet) is tried again by itself a second later: the event reaches the stream with no other post', async () => {
    const w = webhooksEnv();
    cleanups.push(() => w.cleanup());
    const bus = w.busFor('webhooks');
    cleanups.push(() => bus.close());
    const { logger, lines } = keptLogger('webhooks');
    const own = ownRelayer(w.store, bus, logger, 200);
    cleanups.push(() => own.stop());
    const pos = await w.store.addOwnEvent(
      { name: 'event.posted', payload: { client: 'shop', type: 'shop.x', data: { n: 1 } }, tid: 't1' },
      Date.now(),
    );
    own.relay(); // fails: the bus does not serve the stream yet
    await waitFor(() => lines.some((l) => String(l.msg).includes('will retry')), 2_000, 'the failed relay');
    await bus.serve();
    const bot = w.busFor('some-bot');
    cleanups.push(() => bot.close());
    const seen: number[] = [];
    bot.subscribe('webhooks', { 'event.posted': (_p, ctx) => void seen.push(ctx.pos) }, { from: 0 });
    await waitFor(() => seen.length === 1, 3_000, 'the event relayed by the retry');
    expect(seen).toEqual([pos]);
    expect(await w.store.pendingOwn()).toEqual([]);
  });

  test('a type the client does not own is 403; the body must be a JSON object; posted events beyond WEBHOOKS_EVENTS_PER_MINUTE are 429', async () => {
    // A fixed clock at the start of a minute, so the window cannot roll over mid-test.
    const { w, app } = await setup({ WEBHOOKS_EVENTS_PER_MINUTE: '3' }, () => 1_800_000_000_000);
    const shop = await client(w, 'shop', ['shop.order_paid']);
    const other = await client(w, 'other', ['other.thing']);
    expect((await call(app.url, other, 'POST', '/v1/events/shop.order_paid', { a: 1 })).status).toBe(403);
    expect((await call(app.url, shop, 'POST', '/v1/events/transfer', { a: 1 })).status).toBe(403);
    expect((await call(app.url, shop, 'POST', '/v1/events/shop.order_paid', [1, 2])).status).toBe(400);
    expect((await call(app.url, shop, 'POST', '/v1/events/shop.order_paid', 'null')).status).toBe(400);
    for (let i = 0; i < 3; i++) expect((await call(app.url, shop, 'POST', '/v1/events/shop.order_paid', { i })).status).toBe(202);
    const limited = await call(app.url, shop, 'POST', '/v1/events/shop.order_paid', { i: 4 });
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(limited.body.error).toMatchObject({ code: 'rate_limited' });
    // the limit is per client
    expect((await call(app.url, other, 'POST', '/v1/events/other.thing', { i: 1 })).status).toBe(202);
  });

  test('a granted task reaches its app and the reply is its acknowledgement; the same Idempotency-Key runs it once; a non-granted task is 403', async () => {
    const { w, app } = await setup();
    const ops = await client(w, 'ops', [], ['digest.report.send']);
    const plain = await client(w, 'plain');
    const digest = w.busFor('digest', digestCatalogue);
    cleanups.push(() => digest.close());
    const got: Array<{ period: string; key: string | undefined }> = [];
    digest.handle('digest.report.send', (p, ctx) => {
      got.push({ period: p.period, key: ctx.key });
      return { ops: 42 };
    });
    await digest.serve();
    const send = (token: string, body: unknown, key?: string) =>
      call(app.url, token, 'POST', '/v1/tasks/digest.report.send', body, key === undefined ? {} : { 'idempotency-key': key });
    const first = await send(ops, { period: 'week' }, 'k1');
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ task: 'digest.report.send', reply: { ops: 42 } });
    const again = await send(ops, { period: 'week' }, 'k1');
    expect(again.status).toBe(200);
    expect(again.body.reply).toEqual({ ops: 42 });
    expect(got).toEqual([{ period: 'week', key: 'webhooks:ops:k1' }]);
    expect((await send(ops, { period: 'day' }, 'k1')).status).toBe(409);
    expect((await send(ops, { period: 'week' })).status).toBe(400);
    expect((await send(ops, { period: 7 }, 'k2')).status).toBe(400);
    expect((await send(plain, { period: 'week' }, 'k3')).status).toBe(403);
    expect((await call(app.url, ops, 'POST', '/v1/tasks/mailer.email.send', { to: 'a@b.c' }, { 'idempotency-key': 'k4' })).status).toBe(
      403,
    );
    expect((await call(app.url, ops, 'POST', '/v1/tasks/no.such.task', {}, { 'idempotency-key': 'k5' })).status).toBe(403);
    expect(got).toHaveLength(1);
  });

  test('a granted task whose app is not running: 503 with Retry-After, and the same key works once it is', async () => {
    const { w, app } = await setup({ BUS_TASK_TIMEOUT_MS: '200' });
    const ops = await client(w, 'ops', [], ['digest.report.send']);
    const res = await call(app.url, ops, 'POST', '/v1/tasks/digest.report.send', {}, { 'idempotency-key': 'k1' });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('5');
    const digest = w.busFor('digest', digestCatalogue);
    cleanups.push(() => digest.close());
    digest.handle('digest.report.send', () => ({ ops: 1 }));
    await digest.serve();
    expect((await call(app.url, ops, 'POST', '/v1/tasks/digest.report.send', {}, { 'idempotency-key': 'k1' })).body).toMatchObject({
      reply: { ops: 1 },
    });
  });
});
