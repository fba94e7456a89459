import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Postgres } from '@steem-bot/store';
import { projectRootFile, spawnProcess, waitFor } from '@steem-bot/testkit';

import { migrateToPostgres, PostgresSignerStore, SqliteSignerStore, storeFile } from '../src';
import { MAIN, sendTransfers, signedInAll, signerWorld, transfersByMemo } from './helpers';

// `npm run signer -- migrate-store`: a single-machine signer's SQLite file moved into PostgreSQL,
// run as the operator runs it (the compiled CLI), between two real signer processes.
const url = process.env.TEST_DATABASE_URL;
if (!url) process.stdout.write('signer/migrate-store: TEST_DATABASE_URL is not set; skipped\n');
const testPg = url ? test : test.skip;

const CLI = projectRootFile('packages/signer/dist/cli.js');
const TRANSFERS = 60;

function run(env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, 'migrate-store'], { env: { ...process.env, ...env } }, (err, stdout, stderr) =>
      resolve({ code: typeof err?.code === 'number' ? err.code : 0, stdout, stderr }),
    );
  });
}

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

testPg(
  'a signer SIGKILLed mid-run on SQLite, its store moved to PostgreSQL, a signer on PostgreSQL finishes: each key exactly once on chain, nothing signed anew; a second run and the old file are refused',
  async () => {
    const schema = `sbt_signer_migr_${process.pid}_${randomBytes(3).toString('hex')}`;
    cleanups.push(async () => {
      const admin = await Postgres.open({ url: url as string, schema, name: 'admin', poolSize: 1 });
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin.close();
    });
    const w = await signerWorld(cleanups, [{ kind: 'accept-reset', rate: 0.2 }], {
      SIGNER_LIVE: '1',
      SIGNER_EXPIRATION_S: '120',
      BUS_TASK_TIMEOUT_MS: '2000',
      LOG_LEVEL: 'warn',
      STORE: 'postgres',
      DATABASE_URL: url as string,
      DATABASE_SCHEMA: schema,
    });
    const file = storeFile(w.env.DATA_DIR as string);
    // Without STORE=postgres: refused before anything is read.
    expect(await run({ ...w.env, STORE: 'sqlite' })).toMatchObject({ code: 78, stderr: expect.stringMatching(/set STORE=postgres/) });

    // 1. The single-machine signer (SQLite), killed with transfers recorded, signed and in flight.
    const onSqlite = await w.start({ env: { STORE: 'sqlite' } });
    const keys = Array.from({ length: TRANSFERS }, (_, i) => `moved-${i}`);
    await sendTransfers(w.bus, keys).done;
    await onSqlite.stop('SIGKILL');
    const before = new SqliteSignerStore(file);
    const actionsBefore = await before.all();
    const inFlight = actionsBefore.filter((a) => a.state === 'sent').length;
    const transactionsBefore = (await Promise.all(actionsBefore.map((a) => before.transactions(a.id)))).flat();
    await before.close();

    // 2. The move.
    const moved = await run(w.env);
    expect(moved).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(
        new RegExp(`^copied ${TRANSFERS} actions \\(\\d+ open\\) with the ${transactionsBefore.length} transactions`),
      ),
    });
    expect(moved.stdout).not.toContain('postgres@'); // the URL's credentials are masked (none here, but the user is)
    const pg = await w.store();
    expect(await pg.all()).toEqual(actionsBefore);
    expect((await Promise.all(actionsBefore.map((a) => pg.transactions(a.id)))).flat()).toEqual(transactionsBefore);
    // A second run changes nothing; a signer on the old file refuses to start.
    expect(await run(w.env)).toMatchObject({ code: 1, stderr: expect.stringMatching(/signer\.sqlite was moved to PostgreSQL/) });
    // Another SQLite file into the filled store: refused, nothing written, the file not marked.
    const dir = mkdtempSync(join(tmpdir(), 'signer-other-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const other = new SqliteSignerStore(join(dir, 'signer.sqlite'));
    await other.record({ key: 'other', kind: 'transfer', account: 'alice', role: 'active', op: ['transfer', { memo: 'o' }], tid: 't' }, 1);
    await expect(migrateToPostgres(other, pg as PostgresSignerStore, 'test')).rejects.toMatchObject({
      code: 'ERR_SIGNER_CONFLICT',
      message: expect.stringMatching(/not empty/),
    });
    await other.close();
    await new SqliteSignerStore(join(dir, 'signer.sqlite')).close(); // still a signer's file
    expect(await pg.byKey('other')).toBeUndefined();
    const old = await spawnProcess(MAIN, { env: { ...w.env, STORE: 'sqlite' }, ready: false, stderr: 'pipe' });
    cleanups.push(() => old.stop());
    expect(await old.exited).toBe(78);
    expect(old.messagesLogged.join('\n')).toMatch(/was moved to PostgreSQL .* run the signer with STORE=postgres/);

    // 3. The signer on PostgreSQL finishes what was in flight with the same transactions.
    await w.start();
    await waitFor(async () => ((await pg.counts()).confirmed ?? 0) === TRANSFERS, 60_000, `all ${TRANSFERS} confirmed`);
    const byKey = transfersByMemo(w.node, 'moved-');
    expect(keys.filter((k) => byKey.get(k) !== 1)).toEqual([]);
    const signed = await signedInAll(pg);
    expect(signed).toBe(transactionsBefore.length + actionsBefore.filter((a) => a.trx === null).length);
    process.stdout.write(
      `signer/migrate-store: ${TRANSFERS} actions moved (${inFlight} sent and unconfirmed at the SIGKILL, ${transactionsBefore.length} transactions signed), ` +
        `${signed} signed in all after the move\n`,
    );
    // The new seq numbers follow the copied ones.
    const next = await pg.record(
      { key: 'after', kind: 'transfer', account: 'alice', role: 'active', op: ['transfer', { memo: 'x' }], tid: 't' },
      1,
    );
    expect(next.seq).toBeGreaterThan(Math.max(...actionsBefore.map((a) => a.seq)));
  },
  120_000,
);
