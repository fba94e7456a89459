import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';

import { Postgres } from '@steem-bot/store';
import { projectRootFile, testSetup } from '@steem-bot/testkit';

import { authenticate, MailStore, newClient, PostgresMailerStore, storeFile } from '../src';

// `npm run migrate-store`: a single-machine mailer's SQLite file copied into PostgreSQL, run as
// the operator runs it (the compiled CLI, a real process).
const url = process.env.TEST_DATABASE_URL;
if (!url) process.stdout.write('mailer/migrate: TEST_DATABASE_URL is not set; skipped\n');
const testPg = url ? test : test.skip;

const CLI = projectRootFile('packages/mailer/dist/cli.js');
const T = Date.parse('2027-05-01T10:00:00Z');

function run(env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, 'migrate-store'], { env: { ...process.env, ...env } }, (err, stdout, stderr) =>
      resolve({ code: typeof err?.code === 'number' ? err.code : 0, stdout, stderr }),
    );
  });
}

const cleanups: Array<() => unknown> = [];
afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

testPg(
  'migrate-store copies clients, messages, attempts, keys and unpublished events; a second run is refused and changes nothing',
  async () => {
    const schema = `sbt_migr_${process.pid}_${randomBytes(3).toString('hex')}`;
    const t = testSetup({ STORE: 'postgres', DATABASE_URL: url as string, DATABASE_SCHEMA: schema, LOG_LEVEL: 'warn' });
    cleanups.push(t.cleanup);
    cleanups.push(async () => {
      const admin = await Postgres.open({ url: url as string, schema, name: 'admin' });
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin.close();
    });
    mkdirSync(t.env.DATA_DIR as string, { recursive: true });

    // The single-machine mailer as it was left: every kind of state.
    const sqlite = new MailStore(storeFile(t.env.DATA_DIR as string));
    cleanups.push(() => sqlite.close());
    const shop = newClient('shop', ['shop@example.com'], T);
    sqlite.addClient(shop.row);
    sqlite.addClient(newClient('old', undefined, T).row);
    sqlite.revokeClient('old', T + 1);
    const req = (subject: string, extra = {}) => ({ to: ['bob@example.com'], subject, text: 'hi', ...extra });
    const enqueue = (subject: string, key?: string, extra = {}) =>
      sqlite.enqueue({ client: 'shop', key, request: req(subject, extra), tid: `tid-${subject}`, now: T, domain: 'example.com' });
    const sent = enqueue('sent', 'order-1');
    const [claimed] = sqlite.claimDue('w', T, 60_000, 1);
    const event = { name: 'email.sent', payload: { id: sent.id, client: 'shop' }, tid: sent.message!.tid };
    sqlite.finish(claimed!.seq, 'w', 'sent', { status: 'sent', now: T + 5, durationMs: 5, countsAsAttempt: true }, event);
    const inFlight = enqueue('in flight', 'order-2');
    sqlite.claimDue('dead-worker', T, 60_000, 1); // its lease dies with the old machine
    const later = enqueue('later', undefined, { send_at: new Date(T + 86_400_000).toISOString(), check_url: 'https://shop.example/check' });
    const pending = sqlite.outbox('mailer').pending().concat(sqlite.outbox('mailer-worker').pending());
    expect(pending).toHaveLength(4); // 3 queued, 1 sent: none relayed yet

    // Not configured for PostgreSQL: a clear error, nothing done.
    const wrong = await run({ ...t.env, STORE: 'sqlite' });
    expect(wrong.code).toBe(78);
    expect(wrong.stderr).toMatch(/set STORE=postgres and DATABASE_URL/);

    const first = await run(t.env);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/copied 2 clients, 3 messages \(1 attempts\), 2 idempotency keys and 4 events not yet published/);

    const pg = await PostgresMailerStore.open({ url: url as string, schema, applicationName: 'steem-bot/test' });
    cleanups.push(() => pg.close());
    expect(await pg.counts()).toEqual({ sent: 1, scheduled: 2 });
    expect(await authenticate(pg, `Bearer ${shop.token}`)).toMatchObject({ name: 'shop', allowed_from: '["shop@example.com"]' });
    expect((await pg.clients()).map((c) => [c.name, c.revoked_at])).toEqual([
      ['old', T + 1],
      ['shop', null],
    ]);
    const { request: _r, ...before } = sqlite.get(sent.id)!;
    expect(await pg.get(sent.id)).toMatchObject(before);
    expect(await pg.attempts(sent.message!.seq)).toEqual(sqlite.attempts(sent.message!.seq));
    expect(await pg.get(inFlight.id)).toMatchObject({ status: 'scheduled', lease_owner: null, lease_until: null });
    expect((await pg.get(later.id))?.request.check_url).toBe('https://shop.example/check');
    // Keys still deduplicate; new messages number on; events wait to be relayed, in order.
    const replay = await pg.enqueue({ client: 'shop', key: 'order-1', request: req('sent'), tid: 't', now: T + 10, domain: 'example.com' });
    expect(replay).toMatchObject({ id: sent.id, created: false, status: 'sent' });
    const next = await pg.enqueue({ client: 'shop', key: 'order-3', request: req('next'), tid: 't', now: T + 10, domain: 'example.com' });
    expect(next.message!.seq).toBe(later.message!.seq + 1);
    const events = [...(await pg.pendingEvents('mailer')), ...(await pg.pendingEvents('mailer-worker'))];
    expect(events.slice(0, 3).concat(events.slice(4))).toEqual(pending);
    expect(events[3]!.pos).toBeGreaterThan(events[2]!.pos); // positions continue above the copied ones

    const again = await run(t.env);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/not empty: migrate-store copies into an empty one only/);
    expect(await pg.counts()).toEqual({ sent: 1, scheduled: 3 });
  },
);
