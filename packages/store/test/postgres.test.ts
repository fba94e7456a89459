import { randomBytes } from 'node:crypto';

import { type ActiveLock, Postgres } from '../src';

// Against a real PostgreSQL (TEST_DATABASE_URL, e.g. postgres://postgres@127.0.0.1:5432/test);
// each run uses a schema of its own and drops it.
const url = process.env.TEST_DATABASE_URL;
if (!url) process.stdout.write('store/postgres: TEST_DATABASE_URL is not set; PostgreSQL tests skipped\n');
const describePg = url ? describe : describe.skip;

async function waitFor(predicate: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describePg('Postgres (real server)', () => {
  const schema = `sbt_${process.pid}_${randomBytes(3).toString('hex')}`;
  const open: Postgres[] = [];
  const connect = async (migrations: string[] = [], name = 'test'): Promise<Postgres> => {
    const db = await Postgres.open({ url: url as string, schema, name, migrations, poolSize: 2 });
    open.push(db);
    return db;
  };
  let admin: Postgres;

  beforeAll(async () => (admin = await connect()));
  afterAll(async () => {
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await Promise.all(open.map((db) => db.close()));
  });

  /** Kill the server side of one connection. */
  const terminate = (backendPid: number): Promise<unknown> => admin.query('SELECT pg_terminate_backend($1)', [backendPid]);

  test('migrations run once each, in order, even when several processes start at once', async () => {
    const steps = ['CREATE TABLE item (id BIGSERIAL PRIMARY KEY, pos BIGINT NOT NULL)', 'ALTER TABLE item ADD COLUMN note TEXT'];
    const dbs = await Promise.all([1, 2, 3, 4].map(() => connect(steps, 'items')));
    const rows = await admin.query<{ version: number }>(`SELECT version FROM ${schema}.schema_migrations WHERE name = 'items'`);
    expect(rows).toEqual([{ version: 2 }]);
    const more = await connect([...steps, 'CREATE INDEX item_pos ON item (pos)'], 'items');
    expect(await more.query(`SELECT version FROM schema_migrations WHERE name = 'items'`)).toEqual([{ version: 3 }]);
    await dbs[0]?.query('INSERT INTO item (pos, note) VALUES ($1, $2)', [1, 'x']); // search_path is the schema
    expect(await admin.query(`SELECT count(*)::int AS n FROM ${schema}.item`)).toEqual([{ n: 1 }]);
  });

  test('BIGINT positions come back as numbers, and one beyond 2^53 - 1 is refused, not rounded', async () => {
    const db = await connect();
    const [row] = await db.query<{ a: number; b: number[] }>(
      'SELECT 9007199254740991::bigint AS a, ARRAY[1::bigint, 1000000000123]::bigint[] AS b',
    );
    expect(row).toEqual({ a: Number.MAX_SAFE_INTEGER, b: [1, 1_000_000_000_123] });
    await expect(db.query('SELECT 9007199254740993::bigint AS a')).rejects.toThrow(/beyond Number.MAX_SAFE_INTEGER/);
  });

  test('a transaction commits when its function resolves and rolls back when it throws', async () => {
    const db = await connect(['CREATE TABLE tx_t (v INTEGER)'], 'tx');
    await db.transaction(async (c) => void (await c.query('INSERT INTO tx_t VALUES (1)')));
    await expect(
      db.transaction(async (c) => {
        await c.query('INSERT INTO tx_t VALUES (2)');
        throw new Error('handler failed');
      }),
    ).rejects.toThrow('handler failed');
    expect(await db.query('SELECT v FROM tx_t')).toEqual([{ v: 1 }]);
  });

  test('a connection killed inside a transaction, between two statements: the transaction fails, the process lives, the pool reconnects', async () => {
    const db = await connect(['CREATE TABLE killed_t (v INTEGER)'], 'killed');
    const attempt = db.transaction(async (c) => {
      await c.query('INSERT INTO killed_t VALUES (1)');
      const { rows } = await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      await terminate(rows[0]?.pid as number);
      // The connection's death arrives while no statement of it runs (as during a relay's append).
      await new Promise((r) => setTimeout(r, 200));
      await c.query('INSERT INTO killed_t VALUES (2)');
    });
    await expect(attempt).rejects.toThrow(/terminat|connection error/i);
    expect(await db.query('SELECT v FROM killed_t')).toEqual([]); // nothing of it committed
    await db.transaction(async (c) => void (await c.query('INSERT INTO killed_t VALUES (3)')));
    expect(await db.query('SELECT v FROM killed_t')).toEqual([{ v: 3 }]);
  });

  test('LISTEN comes back after its connection is killed, and says so, so that the caller polls', async () => {
    const db = await connect();
    const got: string[] = [];
    let reconnects = 0;
    const listener = db.listen(
      'wakeups',
      (p) => got.push(p ?? ''),
      () => reconnects++,
    );
    await listener.ready;
    await admin.query(`SELECT pg_notify('wakeups', 'one')`);
    await waitFor(() => got.includes('one'));
    const [backend] = await admin.query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity WHERE application_name = 'steem-bot/test' AND query LIKE 'LISTEN%'`,
    );
    await terminate(backend?.pid as number);
    await waitFor(() => reconnects === 1);
    await admin.query(`SELECT pg_notify('wakeups', 'two')`);
    await waitFor(() => got.includes('two'));
    await listener.close();
  });

  test('a standby whose connection is cut while it waits fails with a clear error instead of crashing the process', async () => {
    const db = await connect();
    const holder = await db.acquireLock('signer', () => undefined);
    const waiting = db.acquireLock('signer', () => undefined, { pollMs: 2_000 });
    await new Promise((r) => setTimeout(r, 300));
    // The standby sleeps between polls: its connection is idle on pg_try_advisory_lock.
    const rows = await admin.query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity WHERE application_name = 'steem-bot/test' AND query LIKE '%pg_try_advisory_lock%' AND state = 'idle'
       ORDER BY backend_start DESC LIMIT 1`,
    );
    await terminate(rows[0]?.pid as number);
    await expect(waiting).rejects.toThrow(/terminat/i);
    await holder.release();
  });

  test('one active instance: a standby waits on the lock and takes over when the holder dies; the holder is told at once', async () => {
    const db = await connect();
    const lost: Error[] = [];
    const holder = await db.acquireLock('broadcaster', (err) => lost.push(err));
    let standby: ActiveLock | undefined;
    const waiting = db.acquireLock('broadcaster', () => undefined, { pollMs: 50 }).then((l) => (standby = l));
    await new Promise((r) => setTimeout(r, 300));
    expect(standby).toBeUndefined();

    const [backend] = await admin.query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity WHERE application_name = 'steem-bot/test' AND query LIKE '%pg_try_advisory_lock%' AND state = 'idle'
       ORDER BY backend_start LIMIT 1`,
    );
    await terminate(backend?.pid as number);
    await waitFor(() => lost.length === 1);
    await waiting;
    expect(standby).toBeDefined();
    await holder.release();
    await standby?.release();
  });
});
