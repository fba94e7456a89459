import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { loadConfig } from '@steem-bot/config';
import { openDatabase } from '@steem-bot/store';

import { botStoreFile, openBotStore } from '../src';
import { MIGRATIONS } from '../src/store-sqlite';

// A bot's SQLite file from before ctx.kv: the first file format (user_version 1) plus the tables
// the shipped bots created themselves through ctx.db, as they created them.
const OLD_TABLES: Record<string, string> = {
  digest: `
    CREATE TABLE digest_state (id INTEGER PRIMARY KEY CHECK (id = 1), position INTEGER NOT NULL, since INTEGER NOT NULL);
    INSERT INTO digest_state (id, position, since) VALUES (1, 5000000000002, 1700000000000);
    CREATE TABLE op_counts (type TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
    INSERT INTO op_counts VALUES ('vote', 7), ('comment', 3);
    CREATE TABLE author_counts (author TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
    INSERT INTO author_counts VALUES ('alice', 2), ('bob', 1);
    CREATE TABLE reports (key TEXT PRIMARY KEY, subject TEXT NOT NULL, body TEXT NOT NULL, ops INTEGER NOT NULL, created_at INTEGER NOT NULL);
    INSERT INTO reports VALUES ('day:daily:2026-11-23', 'Steem day digest: 4 ops', 'body', 4, 1700000001000);`,
  'new-posts': `
    CREATE TABLE posts (author TEXT NOT NULL, permlink TEXT NOT NULL, position INTEGER NOT NULL, PRIMARY KEY (author, permlink)) WITHOUT ROWID;
    INSERT INTO posts VALUES ('alice', 'hello', 4000000000001);`,
  tipper: `
    CREATE TABLE answered (author TEXT NOT NULL, permlink TEXT NOT NULL, position INTEGER NOT NULL, action_id TEXT, PRIMARY KEY (author, permlink)) WITHOUT ROWID;
    INSERT INTO answered VALUES ('bob', 'hi', 3000000000004, 'action-1'), ('carol', 'yo', 3000000000009, NULL);`,
};

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'bot-legacy-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Write bot `name`'s file as the code before ctx.kv left it: checkpoint, a dead letter, its own tables. */
function oldFile(name: string): void {
  const db = openDatabase(botStoreFile(dir, name), { migrations: MIGRATIONS.slice(0, 1) });
  db.exec(`INSERT INTO checkpoint (id, position, updated_at) VALUES (1, 6000000000000, 1);
    INSERT INTO dead_letters (position, name, payload, tid, error, attempts, created_at) VALUES (5, 'vote', '{"a":1}', 'tid', 'E: x', 3, 1);`);
  db.exec(OLD_TABLES[name] ?? '');
  db.close();
}

const open = (name: string) => openBotStore(loadConfig({ dotenvPath: false, env: { DATA_DIR: dir } }), name);

test("a shipped bot's file from before ctx.kv opens as it is: checkpoint and dead letters kept, its own tables moved into its state once", async () => {
  for (const name of Object.keys(OLD_TABLES)) oldFile(name);
  const digest = await open('digest');
  expect(await digest.checkpoint()).toBe(6_000_000_000_000);
  expect(await digest.deadLetters()).toMatchObject([{ position: 5, payload: { a: 1 }, state: 'dead' }]);
  expect(await digest.get('counts')).toEqual({ position: 5_000_000_000_002, since: 1_700_000_000_000, types: { vote: 7, comment: 3 } });
  // Authors in the digest's 32 keys (bots/digest checks it reads them where they are put).
  const shards = await Promise.all(Array.from({ length: 32 }, (_, i) => digest.get(`authors:${i}`)));
  expect(Object.assign({}, ...shards.filter(Boolean))).toEqual({ alice: 2, bob: 1 });
  expect(await digest.get('report:day:daily:2026-11-23')).toEqual({ subject: 'Steem day digest: 4 ops', body: 'body', ops: 4 });
  await digest.close();

  const tipper = await open('tipper');
  expect(await tipper.get('answered:bob/hi')).toEqual({ position: 3_000_000_000_004, action_id: 'action-1' });
  expect(await tipper.get('answered:carol/yo')).toEqual({ position: 3_000_000_000_009, action_id: null });
  await tipper.close();
  const posts = await open('new-posts');
  expect(await posts.get('post:alice/hello')).toBe(4_000_000_000_001);
  await posts.close();

  // The old tables are gone (moved once): a second open changes nothing.
  const db = openDatabase(botStoreFile(dir, 'digest'), { readonly: true });
  expect(db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all()).toEqual([
    'checkpoint',
    'dead_letters',
    'sqlite_sequence',
    'state',
  ]);
  db.close();
  const again = await open('digest');
  await again.set('counts', { position: 1, since: 1, types: {}, authors: {} });
  await again.close();
  const third = await open('digest');
  expect(await third.get('counts')).toEqual({ position: 1, since: 1, types: {}, authors: {} });
  await third.close();
});

test("another bot's tables of the same names are not touched", async () => {
  const db = openDatabase(botStoreFile(dir, 'mine'), { migrations: MIGRATIONS.slice(0, 1) });
  db.exec(OLD_TABLES.tipper as string);
  db.close();
  const store = await open('mine');
  expect(await store.get('answered:bob/hi')).toBeUndefined();
  await store.close();
  const check = openDatabase(botStoreFile(dir, 'mine'), { readonly: true });
  expect(check.prepare('SELECT COUNT(*) FROM answered').pluck().get()).toBe(2);
  check.close();
});
