import { randomBytes } from 'node:crypto';

import { Postgres } from '@steem-bot/store';
import { type Proc, projectRootFile, spawnProcess, testSetup, waitFor } from '@steem-bot/testkit';
import { SMTPServer } from 'smtp-server';

import { PostgresMailerStore } from '../src';

// Four mailer-worker processes, each as on a host of its own (own DATA_DIR and SOCKET_DIR, no
// shared file), sharing only PostgreSQL and the SMTP server. One is SIGKILLed mid-run and then
// every mailer connection is terminated by the server: each message still reaches the SMTP server
// exactly once, except at most those the killed worker had in flight (counted and printed).
const url = process.env.TEST_DATABASE_URL;
if (!url) process.stdout.write('mailer/postgres-workers: TEST_DATABASE_URL is not set; skipped\n');
const testPg = url ? test : test.skip;

const WORKER = projectRootFile('packages/mailer/dist/main-worker.js');
const MESSAGES = Number(process.env.MAILER_PG_TEST_MESSAGES ?? 2_000);

const cleanups: Array<() => unknown> = [];
afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

testPg(
  `4 workers on PostgreSQL, one SIGKILLed and all connections terminated: each of ${MESSAGES} messages sent once (bar the killed one's in-flight)`,
  async () => {
    const schema = `sbt_mailw_${process.pid}_${randomBytes(3).toString('hex')}`;
    const admin = await Postgres.open({ url: url as string, schema, name: 'admin', poolSize: 1 });
    cleanups.push(async () => {
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin.close();
    });
    // Not `steem-bot/mailer`: the terminations below are for the workers' connections.
    const store = await PostgresMailerStore.open({ url: url as string, schema, poolSize: 4, applicationName: 'steem-bot/test' });
    cleanups.push(() => store.close());
    const sink = await startSink();
    cleanups.push(() => sink.stop());

    const startWorker = async (): Promise<Proc> => {
      const t = testSetup({
        STORE: 'postgres',
        DATABASE_URL: url as string,
        DATABASE_SCHEMA: schema,
        SMTP_URL: `smtp://127.0.0.1:${sink.port}`,
        MAILER_LEASE_MS: '10000',
        LOG_LEVEL: 'warn',
        LOG_FORMAT: 'json',
      });
      cleanups.push(t.cleanup);
      const proc = await spawnProcess(WORKER, { env: t.env });
      cleanups.push(() => proc.stop());
      return proc;
    };
    // The intake, as mailer-api processes run it (four clients: one client's enqueues take turns).
    const enqueueRange = async (from: number, to: number): Promise<string[]> => {
      const ids: string[] = [];
      for (let n = from; n < to; n += 16) {
        const batch = await Promise.all(
          Array.from({ length: Math.min(16, to - n) }, (_, i) =>
            store.enqueue({
              client: `shop${(n + i) % 4}`,
              key: `m${n + i}`,
              request: { to: ['bob@example.com'], subject: `message ${n + i}`, text: 'hi' },
              tid: randomBytes(8).toString('hex'),
              now: Date.now(),
              domain: 'example.com',
            }),
          ),
        );
        ids.push(...batch.map((b) => b.id));
      }
      return ids;
    };
    // Half waits when the workers start; the other half arrives while they run (each enqueue NOTIFYs them).
    const first = await enqueueRange(0, MESSAGES / 2);
    const workers = await Promise.all([1, 2, 3, 4].map(() => startWorker()));
    const started = Date.now();
    const enqueueAll = enqueueRange(MESSAGES / 2, MESSAGES).then((rest) => [...first, ...rest]);
    const received = (): string[] => sink.ids;

    await waitFor(() => received().length >= MESSAGES * 0.3, 120_000, '30% sent');
    const victim = workers[1] as Proc;
    await victim.stop('SIGKILL');
    // Its leases stay until MAILER_LEASE_MS passes: what it had claimed and not finished.
    const leased = await admin.query<{ id: string }>(`SELECT id FROM ${schema}.messages WHERE status = 'sending' AND lease_owner LIKE $1`, [
      `${victim.child.pid}-%`,
    ]);
    const inFlight = new Set(leased.map((r) => r.id));

    const ids = await enqueueAll;
    await waitFor(() => received().length >= MESSAGES * 0.6, 120_000, '60% sent');
    const [terminated] = await admin.query<{ n: number }>(
      `SELECT COUNT(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
       WHERE datname = current_database() AND application_name = 'steem-bot/mailer' AND pid <> pg_backend_pid()`,
    );

    await waitFor(() => new Set(received()).size >= MESSAGES, 180_000, `all ${MESSAGES} sent`);
    await waitFor(async () => (await store.counts()).sent === MESSAGES, 30_000, 'every send recorded');
    const seconds = (Date.now() - started) / 1000;

    const got = received();
    const counts = new Map<string, number>();
    for (const id of got) counts.set(id, (counts.get(id) ?? 0) + 1);
    const twice = [...counts].filter(([, n]) => n > 1).map(([id]) => id);
    process.stdout.write(
      `mailer/postgres-workers: ${MESSAGES} messages by 4 workers in ${seconds.toFixed(1)} s; ${inFlight.size} in flight at the SIGKILL, ` +
        `${twice.length} of them sent twice; ${terminated?.n ?? 0} connections terminated\n`,
    );
    // A repeat the kill does not explain: its attempts say how it came about.
    for (const id of twice.filter((i) => !inFlight.has(i))) {
      const attempts = await admin.query(
        `SELECT a.at, a.outcome, a.error, a.duration_ms FROM ${schema}.attempts a JOIN ${schema}.messages m ON m.seq = a.message_seq WHERE m.id = $1 ORDER BY a.id`,
        [id],
      );
      process.stdout.write(`mailer/postgres-workers: ${id} sent twice, not in flight at the kill; attempts ${JSON.stringify(attempts)}\n`);
    }
    expect([...counts.keys()].sort()).toEqual([...ids].sort()); // every message, nothing else
    expect([...counts.values()].every((n) => n <= 2)).toBe(true);
    expect(twice.every((id) => inFlight.has(id))).toBe(true); // only the killed worker's in-flight ones repeat
    expect(terminated?.n).toBeGreaterThanOrEqual(3 * 2); // each live worker: its pool and its LISTEN connection
    // Every email.sent event was relayed out of the outbox (none left behind by the kill or the terminations).
    await waitFor(async () => (await store.pendingEvents('mailer-worker')).length === 0, 30_000, 'the outbox drained');
  },
  400_000,
);

/**
 * A real SMTP server that only notes the X-Steem-Bot-Message header of what it accepts (the
 * devnode sink also parses and indexes each message on disk, too slow for thousands).
 */
async function startSink(): Promise<{ port: number; ids: string[]; stop(): Promise<void> }> {
  const ids: string[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, _session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const id = /^X-Steem-Bot-Message: (\S+)/im.exec(Buffer.concat(chunks).toString('utf8'))?.[1];
        ids.push(id ?? '(none)');
        callback();
      });
    },
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as { port: number }).port;
  return { port, ids, stop: () => new Promise((resolve) => server.close(() => resolve())) };
}
