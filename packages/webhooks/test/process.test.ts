import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';

import { APPLIED_INDEX, positionOf } from '@steem-bot/broadcaster';
import { createIpcBus } from '@steem-bot/bus';
import { catalogue, chainOpMeta } from '@steem-bot/config';
import { DevNode, loadRealBlocks, opsInBlock } from '@steem-bot/devnode';
import { Postgres } from '@steem-bot/store';
import { keptLogger, type Proc, spawnProcess, testSetup } from '@steem-bot/testkit';

import { addClient, SqliteWebhookStore, storeFile } from '../src';
import { call, Receiver, waitFor } from './helpers';

const WEBHOOKS = join(__dirname, '..', 'dist', 'main.js');
const CLI = join(__dirname, '..', 'dist', 'cli.js');

const pgUrl = process.env.TEST_DATABASE_URL;
if (!pgUrl) process.stdout.write('webhooks/process: TEST_DATABASE_URL is not set; the STORE=postgres run is skipped\n');
const BROADCASTER = join(__dirname, '..', '..', 'broadcaster', 'dist', 'main.js');

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function start(file: string, env: Record<string, string>): Promise<Proc> {
  const proc = await spawnProcess(file, { env });
  cleanups.push(() => proc.stop());
  return proc;
}

/** The webhooks process's REST URL, from its log. */
async function apiUrl(proc: Proc): Promise<string> {
  let url: string | undefined;
  await waitFor(
    () => {
      url = proc.messagesLogged.map((m) => /^REST API on (\S+)/.exec(m)?.[1]).find((u) => u !== undefined);
      return url !== undefined;
    },
    10_000,
    'the REST API line',
  );
  return url as string;
}

async function environment(node: DevNode) {
  const t = testSetup({ WEBHOOKS_PORT: '0', WEBHOOKS_ALLOW: '127.0.0.1', WEBHOOKS_RETRY_SCHEDULE_MS: '50,50,50,50,50', LOG_LEVEL: 'info' });
  cleanups.push(() => t.cleanup());
  const store = new SqliteWebhookStore(storeFile(t.config.DATA_DIR));
  const { token } = await addClient(store, 'bot');
  store.close();
  const env = { ...t.env, STEEM_NODES: node.url, STEEM_START_BLOCK: '1000000', BROADCASTER_POLL_MS: '100' };
  return { t, token, env };
}

async function register(url: string, token: string, r: Receiver, id: string, body: Record<string, unknown>): Promise<void> {
  const res = await call(url, token, 'PUT', `/v1/endpoints/${id}`, { url: r.url, ...body });
  expect(res.status).toBe(201);
  r.secrets.push(String(res.body.secret));
  expect((await call(url, token, 'POST', `/v1/endpoints/${id}/replay`, { from_position: positionOf(1_000_000, 0) })).status).toBe(202);
}

describe('the webhooks process (compiled main.js, real node-ipc bus)', () => {
  test("a receiver verifying with standardwebhooks gets the real blocks' transfers to one account and every op, exactly as the fixture has them, in order", async () => {
    const node = await DevNode.start({ intervalMs: 0, libDistance: 0 });
    cleanups.push(() => node.stop());
    const { token, env } = await environment(node);
    const webhooks = await start(WEBHOOKS, env);
    const url = await apiUrl(webhooks);

    const expected: Array<{ pos: number; type: string; data: Record<string, unknown> }> = [];
    for (const block of loadRealBlocks()) {
      opsInBlock(block).forEach((o, index) => {
        const [type, data] = (o as { op: [string, Record<string, unknown>]; block: number }).op;
        expected.push({ pos: positionOf((o as { block: number }).block, index), type, data });
      });
    }
    const transfers = expected.filter((e) => e.type === 'transfer');
    const account = String(transfers[0]?.data.to);
    const toAccount = transfers.filter((e) => e.data.to === account);
    const types = [...new Set(expected.map((e) => e.type))];

    const payments = await Receiver.start();
    const everything = await Receiver.start();
    cleanups.push(
      () => payments.close(),
      () => everything.close(),
    );
    await register(url, token, payments, 'payments', { events: ['transfer'], filter: { to: account } });
    await register(url, token, everything, 'everything', { events: types });
    await start(BROADCASTER, env);

    await waitFor(() => everything.unique.length >= expected.length && payments.unique.length >= toAccount.length, 60_000, 'every op');
    for (const [r, want] of [
      [payments, toAccount],
      [everything, expected],
    ] as const) {
      expect(r.got.every((g) => g.verified)).toBe(true);
      const got = r.unique.map((g) => ({ pos: g.body.position, type: g.body.type, data: g.body.data }));
      expect(got.map((g) => [g.pos, g.type])).toEqual(want.map((e) => [e.pos, e.type]));
      // the op's own fields, as the chain has them, beside where it sits in the chain (a field
      // named like one of those, such as pow's block_id, is the broadcaster's)
      const own = (data: Record<string, unknown>) => Object.fromEntries(Object.entries(data).filter(([k]) => !(k in chainOpMeta)));
      got.forEach((g, i) => expect(g.data).toMatchObject(own(want[i]?.data ?? {})));
    }
    expect(payments.unique[0]?.body.data).toMatchObject({
      to: account,
      block_num: Math.floor((toAccount[0] as { pos: number }).pos / 1e6),
    });
  });

  test('SIGKILLed repeatedly during a replay of 1,300 blocks: after dedupe by webhook-id, every block.applied once, in order', async () => {
    const node = await DevNode.start({ intervalMs: 0, libDistance: 0, synthetic: 300, opsPerBlock: [5, 10] });
    cleanups.push(() => node.stop());
    const { token, env } = await environment(node);
    let webhooks = await start(WEBHOOKS, env);
    const r = await Receiver.start();
    cleanups.push(() => r.close());
    await register(await apiUrl(webhooks), token, r, 'blocks', { events: ['block.applied'] });
    await start(BROADCASTER, env);
    const total = 1_300;
    for (let kill = 1; kill <= 4; kill++) {
      const before = r.unique.length;
      await waitFor(() => r.unique.length >= Math.min(before + 150, total - 100), 60_000, `progress before kill ${kill}`);
      await webhooks.stop('SIGKILL');
      webhooks = await start(WEBHOOKS, env);
    }
    await waitFor(() => r.unique.length >= total, 60_000, 'every block');
    const want = Array.from({ length: total }, (_, i) => positionOf(1_000_000 + i, APPLIED_INDEX));
    expect(r.unique.map((g) => g.body.position)).toEqual(want);
    expect(r.got.every((g) => g.verified)).toBe(true);
    // at-least-once: a kill may repeat the delivery in flight, not more
    expect(r.got.length - r.unique.length).toBeLessThanOrEqual(4);
  });

  test('over node-ipc: a posted event reaches its endpoint and a bus subscriber in another process; SIGINT drains and exits 0', async () => {
    const t = testSetup({ WEBHOOKS_PORT: '0', WEBHOOKS_ALLOW: '127.0.0.1', LOG_LEVEL: 'info' });
    cleanups.push(() => t.cleanup());
    const store = new SqliteWebhookStore(storeFile(t.config.DATA_DIR));
    const { token } = await addClient(store, 'shop', ['shop.order_paid']);
    await store.close();
    const webhooks = await start(WEBHOOKS, t.env);
    const url = await apiUrl(webhooks);
    const r = await Receiver.start();
    cleanups.push(() => r.close());
    const put = await call(url, token, 'PUT', '/v1/endpoints/orders', { url: r.url, events: ['shop.order_paid'] });
    r.secrets.push(String(put.body.secret));
    const observer = createIpcBus('observer', catalogue, t.config, keptLogger('observer').logger);
    cleanups.push(() => observer.close());
    const seen: unknown[] = [];
    const sub = observer.subscribe('webhooks', { 'event.posted': (p) => void seen.push(p) }, { from: 0 });
    await sub.ready;
    const posted = await call(url, token, 'POST', '/v1/events/shop.order_paid', { order: 7 });
    expect(posted.status).toBe(202);
    await waitFor(() => r.got.length === 1 && seen.length === 1, 10_000, 'delivery and bus event');
    expect(r.got[0]?.body).toMatchObject({ type: 'shop.order_paid', position: posted.body.position, data: { order: 7 } });
    expect(r.got[0]?.verified).toBe(true);
    expect(seen).toEqual([{ client: 'shop', type: 'shop.order_paid', data: { order: 7 } }]);
    webhooks.child.kill('SIGINT');
    expect(await webhooks.exited).toBe(0);
    expect(webhooks.messagesLogged).toContain('stopped cleanly');
  });

  (pgUrl ? test : test.skip)(
    'STORE=postgres: a client added by the CLI, posted events reach the endpoint and a bus subscriber; SIGKILLed and restarted, it goes on without a gap',
    async () => {
      const schema = `sbt_webhooksp_${process.pid}_${randomBytes(3).toString('hex')}`;
      cleanups.push(async () => {
        const admin = await Postgres.open({ url: pgUrl as string, schema, name: 'cleanup' });
        await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        await admin.close();
      });
      const pg = { STORE: 'postgres', DATABASE_URL: pgUrl as string, DATABASE_SCHEMA: schema };
      const t = testSetup({ WEBHOOKS_PORT: '0', WEBHOOKS_ALLOW: '127.0.0.1', LOG_LEVEL: 'info', ...pg });
      cleanups.push(() => t.cleanup());
      const added = spawnSync(process.execPath, [CLI, 'clients', 'add', 'shop', '--events', 'shop.order_paid'], {
        env: { ...process.env, ...t.env },
        encoding: 'utf8',
      });
      expect(added.status).toBe(0);
      const token = /^\s+(shop\.\S+)$/m.exec(added.stdout)?.[1] as string;
      let webhooks = await start(WEBHOOKS, t.env);
      let url = await apiUrl(webhooks);
      const r = await Receiver.start();
      cleanups.push(() => r.close());
      const put = await call(url, token, 'PUT', '/v1/endpoints/orders', { url: r.url, events: ['shop.order_paid'] });
      expect(put.status).toBe(201);
      r.secrets.push(String(put.body.secret));
      const observer = createIpcBus('observer', catalogue, t.config, keptLogger('observer').logger);
      cleanups.push(() => observer.close());
      const seen: unknown[] = [];
      const sub = observer.subscribe(
        'webhooks',
        { 'event.posted': (p) => void seen.push((p.data as { order: number }).order) },
        { from: 0 },
      );
      await sub.ready;
      for (let order = 0; order < 5; order++)
        expect((await call(url, token, 'POST', '/v1/events/shop.order_paid', { order })).status).toBe(202);
      await waitFor(() => r.got.length === 5, 10_000, 'the first deliveries');
      webhooks.child.kill('SIGKILL');
      await webhooks.exited;
      webhooks = await start(WEBHOOKS, t.env);
      url = await apiUrl(webhooks);
      // the same PUT after the restart changes nothing: the endpoint, its secret and cursor are in PostgreSQL
      expect((await call(url, token, 'PUT', '/v1/endpoints/orders', { url: r.url, events: ['shop.order_paid'] })).status).toBe(200);
      for (let order = 5; order < 10; order++)
        expect((await call(url, token, 'POST', '/v1/events/shop.order_paid', { order })).status).toBe(202);
      await waitFor(() => r.unique.length === 10 && seen.length >= 10, 10_000, 'every delivery and bus event');
      expect(r.unique.map((g) => g.body.data.order)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      expect(r.got.every((g) => g.verified)).toBe(true);
      expect([...new Set(seen)]).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      const deliveries = await call(url, token, 'GET', '/v1/endpoints/orders/deliveries?limit=200');
      // the attempt log is in PostgreSQL too (a try cut by the kill may be missing from it)
      const logged = (deliveries.body.deliveries as unknown[]).length;
      expect(logged).toBeGreaterThanOrEqual(10);
      expect(logged).toBeLessThanOrEqual(r.got.length);
      webhooks.child.kill('SIGINT');
      expect(await webhooks.exited).toBe(0);
    },
  );
});
