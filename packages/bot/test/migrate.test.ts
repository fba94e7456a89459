import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Postgres } from '@steem-bot/store';
import { projectRootFile } from '@steem-bot/testkit';

import { botStoreFile, PostgresBotStore, SqliteBotStore } from '../src';

const url = process.env.TEST_DATABASE_URL;
if (!url) process.stdout.write('bot/migrate-store: TEST_DATABASE_URL is not set; skipped\n');
const testPg = url ? test : test.skip;
const CLI = projectRootFile('packages/bot/dist/cli.js');

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

testPg(
  'npm run bot -- migrate-store NAME: the checkpoint, dead letters and state into PostgreSQL, once; another bot untouched',
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bot-migrate-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const schema = `sbt_botmig_${process.pid}_${randomBytes(3).toString('hex')}`;
    cleanups.push(async () => {
      const admin = await Postgres.open({ url: url as string, schema, name: 'admin', poolSize: 1 });
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin.close();
    });
    const source = new SqliteBotStore(botStoreFile(dir, 'digest'));
    await source.saveCheckpoint(7_000_000_000_001);
    await source.addDeadLetter({ position: 5, name: 'vote', payload: { a: [1] }, tid: 'tid-1', error: 'E: x', attempts: 3 });
    const replayed = await source.addDeadLetter({ position: 6, name: 'comment', payload: {}, tid: 'tid-2', error: 'E: y', attempts: 1 });
    await source.requestReplay(replayed);
    await source.replaySucceeded(replayed);
    await source.set('counts', { position: 7, types: { vote: 2 } });
    await source.set('report:day:1', 'r');
    await source.close();
    const other = await PostgresBotStore.open({ url: url as string, schema, bot: 'tipper' });
    cleanups.push(() => other.close());
    await other.set('answered:a/b', 1);

    const env = { ...process.env, DATA_DIR: dir, STORE: 'postgres', DATABASE_URL: url as string, DATABASE_SCHEMA: schema };
    const run = () => spawnSync(process.execPath, [CLI, 'migrate-store', 'digest'], { env, encoding: 'utf8' });
    const first = run();
    expect(first.stderr).toBe('');
    expect(first.stdout).toMatch(/bot digest: checkpoint 7000000000001, 2 dead letters, 2 state keys copied/);

    const target = await PostgresBotStore.open({ url: url as string, schema, bot: 'digest' });
    cleanups.push(() => target.close());
    expect(await target.checkpoint()).toBe(7_000_000_000_001);
    expect(await target.deadLetters()).toMatchObject([
      { position: 5, name: 'vote', payload: { a: [1] }, tid: 'tid-1', error: 'E: x', attempts: 3, state: 'dead' },
      { position: 6, state: 'replayed' },
    ]);
    expect(await target.get('counts')).toEqual({ position: 7, types: { vote: 2 } });
    expect(await target.get('report:day:1')).toBe('r');
    expect(await other.get('answered:a/b')).toBe(1);

    // Once: a second run is refused and writes nothing.
    const second = run();
    expect(second.status).toBe(1);
    expect(second.stderr).toBe('bot digest already has rows in PostgreSQL: migrate-store copies into none\n');
    expect(await target.deadLetters()).toHaveLength(2);
    // Without STORE=postgres: a config error (78).
    expect(
      spawnSync(process.execPath, [CLI, 'migrate-store', 'digest'], { env: { ...env, STORE: 'sqlite' }, encoding: 'utf8' }).status,
    ).toBe(78);
  },
);
