import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';

import { Postgres } from '@steem-bot/store';
import { testSetup } from '@steem-bot/testkit';

import { addClient, authenticate, PostgresWebhookStore, SqliteWebhookStore, storeFile } from '../src';

const CLI = join(__dirname, '..', 'dist', 'cli.js');
const run = (env: Record<string, string>, ...args: string[]) =>
  spawnSync(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, encoding: 'utf8' });

describe('npm run webhooks -- clients', () => {
  test('add prints the token once; list shows posted types and granted tasks, never a token; grant, own and revoke', async () => {
    const t = testSetup();
    try {
      const run = (...args: string[]) =>
        spawnSync(process.execPath, [CLI, ...args], { env: { ...process.env, ...t.env }, encoding: 'utf8' });
      const added = run('clients', 'add', 'shop', '--events', 'shop.order_paid');
      expect(added.status).toBe(0);
      const token = /^\s+(shop\.\S+)$/m.exec(added.stdout)?.[1] as string;
      expect(token).toMatch(/^shop\.[A-Za-z0-9_-]{43}$/);
      expect(run('clients', 'grant', 'shop', 'digest.report.send').status).toBe(0);
      expect(run('clients', 'own', 'shop', 'shop.refunded').status).toBe(0);
      const badTask = run('clients', 'grant', 'shop', 'no-such-task');
      expect([badTask.status, badTask.stderr]).toEqual([1, expect.stringContaining('not a task name')]);
      expect(run('clients', 'own', 'shop', 'transfer').status).toBe(1);
      expect(run('clients', 'add', 'other', '--events', 'shop.order_paid').status).toBe(0);
      expect(run('clients', 'own', 'other', 'shop.refunded').stderr).toContain('owned by another client');
      const list = run('clients', 'list');
      expect(list.stdout).toContain('events: shop.order_paid,shop.refunded  tasks: digest.report.send');
      expect(list.stdout).not.toContain(token.split('.')[1]);
      const store = new SqliteWebhookStore(storeFile(t.config.DATA_DIR));
      try {
        expect((await authenticate(store, `Bearer ${token}`))?.name).toBe('shop');
        expect(run('clients', 'revoke', 'shop').status).toBe(0);
        expect(await authenticate(store, `Bearer ${token}`)).toBeUndefined();
      } finally {
        await store.close();
      }
      expect(run('clients', 'add', 'shop').stderr).toContain('never reused');
      expect(run('clients', 'frobnicate').status).toBe(64);
    } finally {
      t.cleanup();
    }
  });
});

// The move of a single-host install to PostgreSQL: the CLI copies the SQLite file into an empty schema.
const pgUrl = process.env.TEST_DATABASE_URL;
if (!pgUrl) process.stdout.write('webhooks/cli: TEST_DATABASE_URL is not set; the migrate-store test is skipped\n');

(pgUrl ? test : test.skip)(
  'migrate-store copies every row of the SQLite store into an empty PostgreSQL store (ids, cursors, log, keys, pending own events); a second run is refused',
  async () => {
    const schema = `sbt_webhooksm_${process.pid}_${randomBytes(3).toString('hex')}`;
    const t = testSetup({ STORE: 'postgres', DATABASE_URL: pgUrl as string, DATABASE_SCHEMA: schema });
    const T = Date.parse('2027-03-27T00:00:05Z');
    try {
      const sqlite = new SqliteWebhookStore(storeFile(t.config.DATA_DIR));
      const { token } = await addClient(sqlite, 'shop', ['shop.order_paid']);
      await addClient(sqlite, 'gone');
      await sqlite.revokeClient('gone', T);
      const spec = { url: 'https://example.com/a', events: ['transfer'], filter: { to: 'alice' }, description: '', disabled: false };
      const a = (await sqlite.upsertEndpoint('shop', 'a', spec, 'whsec_a', T)).row;
      await sqlite.deleteEndpoint('shop', 'a'); // a gap in the ids
      const b = (await sqlite.upsertEndpoint('shop', 'b', spec, 'whsec_b', T)).row;
      await sqlite.advance(b.seq, 'broadcaster', 93_000_000_000_017);
      await sqlite.setRetry(b.seq, 2, T + 5_000, T);
      await sqlite.logDelivery(b.seq, {
        at: T,
        type: 'transfer',
        position: 1,
        webhook_id: 'w1',
        status: 500,
        error: 'HTTP 500',
        duration_ms: 4,
        response: 'no',
      });
      await sqlite.saveTaskKey('shop', 'k', 'mailer.email.send', 'h', { id: 'm' }, T);
      const pending = await sqlite.addOwnEvent(
        { name: 'event.posted', payload: { client: 'shop', type: 'shop.order_paid', data: { n: 1 } }, tid: 't' },
        T,
      );
      const before = {
        clients: await sqlite.clients(),
        endpoints: await sqlite.endpoints(),
        deliveries: await sqlite.deliveries(b.seq, 0, 10),
      };
      await sqlite.close();

      const migrate = run(t.env, 'migrate-store');
      expect([migrate.status, migrate.stderr]).toEqual([0, '']);
      expect(migrate.stdout).toContain(
        'copied 2 clients, 1 endpoints, 1 cursors, 1 attempt log rows, 1 task keys and 1 own events not yet relayed',
      );
      expect(migrate.stdout).not.toContain(pgUrl);

      const pg = await PostgresWebhookStore.open({ url: pgUrl as string, schema });
      try {
        expect(await pg.clients()).toEqual(before.clients);
        expect(await pg.endpoints()).toEqual(before.endpoints);
        expect(await pg.cursors(b.seq)).toEqual({ broadcaster: 93_000_000_000_017 });
        expect(await pg.deliveries(b.seq, 0, 10)).toEqual(before.deliveries);
        expect(await pg.taskKey('shop', 'k')).toEqual({ name: 'mailer.email.send', body_hash: 'h', reply: '{"id":"m"}' });
        expect((await pg.pendingOwn()).map((e) => e.pos)).toEqual([pending]);
        expect((await authenticate(pg, `Bearer ${token}`))?.name).toBe('shop');
        // new rows continue after the copied ids and positions
        const c = (await pg.upsertEndpoint('shop', 'c', spec, 'whsec_c', T)).row;
        expect(c.seq).toBeGreaterThan(Math.max(a.seq, b.seq));
        expect(await pg.addOwnEvent({ name: 'event.posted', payload: {}, tid: 't2' }, T)).toBe(pending + 1);
      } finally {
        await pg.close();
      }
      const again = run(t.env, 'migrate-store');
      expect([again.status, again.stderr]).toEqual([1, expect.stringContaining('already holds clients or endpoints')]);
    } finally {
      const admin = await Postgres.open({ url: pgUrl as string, schema, name: 'cleanup' });
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin.close();
      t.cleanup();
    }
  },
);
