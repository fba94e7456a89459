import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { startTestBot, type TestBot } from '@steem-bot/bot';
import { projectRoot, variables } from '@steem-bot/config';
import { openDatabase } from '@steem-bot/store';

import { digest, digestVariables } from '../src';

const post = (author: string) => ({
  parent_author: '',
  parent_permlink: 's',
  author,
  permlink: 'p',
  title: '',
  body: 'b',
  json_metadata: '{}',
});

describe('digest', () => {
  let bot: TestBot | undefined;
  afterEach(() => bot?.stop());

  test('counts ops per type and authors, and emails one digest per task key', async () => {
    bot = await startTestBot(digest, { DIGEST_EMAIL: 'me@example.com' });
    await bot.publish('comment', post('alice'), { block: 1, index: 0 });
    await bot.publish('comment', post('alice'), { block: 1, index: 1 });
    await bot.publish('comment', post('bob'), { block: 1, index: 2 });
    await bot.publish('vote', { voter: 'x', author: 'alice', permlink: 'p', weight: 1 }, { block: 1, index: 3 });

    const reply = await bot.clock.sendByName('digest.report.send', { period: 'day' }, { idempotencyKey: 'daily:2026-11-23' });
    expect(reply).toEqual({ ops: 4 });
    expect(bot.mails).toHaveLength(1);
    const text = String(bot.mails[0]?.payload.text);
    expect(bot.mails[0]?.payload.subject).toBe('Steem day digest: 4 ops');
    expect(text).toMatch(/comment +3/);
    expect(text).toMatch(/vote +1/);
    expect(text).toMatch(/@alice +2\n +@bob +1/);

    // The same tick again (a retry after a lost ack): the same report and the same mail key.
    await bot.publish('vote', { voter: 'x', author: 'alice', permlink: 'p', weight: 1 }, { block: 2, index: 0 });
    expect(await bot.clock.sendByName('digest.report.send', { period: 'day' }, { idempotencyKey: 'daily:2026-11-23' })).toEqual({ ops: 4 });
    // The next tick reports only what came since.
    expect(await bot.clock.sendByName('digest.report.send', { period: 'day' }, { idempotencyKey: 'daily:2026-11-24' })).toEqual({ ops: 1 });
    expect(bot.mails.map((m) => m.key)).toEqual(['digest:task:daily:2026-11-23:0', 'digest:task:daily:2026-11-24:0']);
  });

  test('an op delivered twice is counted once', async () => {
    bot = await startTestBot(digest, { DIGEST_EMAIL: 'me@example.com' });
    await bot.publish('vote', { voter: 'x', author: 'a', permlink: 'p', weight: 1 }, { block: 3, index: 0 });
    const handler = digest.definition.on.vote as (op: unknown, ctx: unknown) => Promise<void>;
    await handler({}, { kv: bot.running.store, name: 'vote', position: 3_000_000 });
    expect(await bot.running.store.get('counts')).toMatchObject({ position: 3_000_000, types: { vote: 1 } });
  });

  test('many authors: each counted once, the top ones reported, all reset after the report', async () => {
    bot = await startTestBot(digest, { DIGEST_EMAIL: 'me@example.com' });
    for (let i = 0; i < 120; i++) await bot.publish('comment', post(`a${i % 40}`), { block: 4, index: i });
    expect(await bot.clock.sendByName('digest.report.send', { period: 'day' }, { idempotencyKey: 'k1' })).toEqual({ ops: 120 });
    expect(String(bot.mails[0]?.payload.text).match(/@a\d+ +3$/gm)).toHaveLength(10);
    await bot.publish('comment', post('a1'), { block: 5, index: 0 });
    expect(await bot.clock.sendByName('digest.report.send', { period: 'day' }, { idempotencyKey: 'k2' })).toEqual({ ops: 1 });
    expect(String(bot.mails[1]?.payload.text)).toMatch(/Top authors \(posts and comments\):\n +@a1 +1$/);
  });

  test('a digest file from before ctx.kv: the counts since the last digest are kept and counted on', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'digest-old-'));
    try {
      // As the digest before ctx.kv left its file: the first file format and its own tables.
      const db = openDatabase(join(dataDir, 'bot-digest.sqlite'));
      db.exec(`PRAGMA user_version = 1;
        CREATE TABLE checkpoint (id INTEGER PRIMARY KEY CHECK (id = 1), position INTEGER NOT NULL, updated_at INTEGER NOT NULL);
        CREATE TABLE dead_letters (id INTEGER PRIMARY KEY AUTOINCREMENT, position INTEGER NOT NULL, name TEXT NOT NULL, payload TEXT NOT NULL,
          tid TEXT NOT NULL, error TEXT NOT NULL, attempts INTEGER NOT NULL, created_at INTEGER NOT NULL,
          state TEXT NOT NULL DEFAULT 'dead' CHECK (state IN ('dead', 'replay', 'replayed')), replayed_at INTEGER);
        CREATE TABLE digest_state (id INTEGER PRIMARY KEY CHECK (id = 1), position INTEGER NOT NULL, since INTEGER NOT NULL);
        INSERT INTO digest_state VALUES (1, 2000005, 1700000000000);
        CREATE TABLE op_counts (type TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
        INSERT INTO op_counts VALUES ('comment', 3), ('vote', 7);
        CREATE TABLE author_counts (author TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
        INSERT INTO author_counts VALUES ('alice', 2), ('bob', 1);
        CREATE TABLE reports (key TEXT PRIMARY KEY, subject TEXT NOT NULL, body TEXT NOT NULL, ops INTEGER NOT NULL, created_at INTEGER NOT NULL);`);
      db.close();
      bot = await startTestBot(digest, { DIGEST_EMAIL: 'me@example.com', DATA_DIR: dataDir });
      await bot.publish('comment', post('alice'), { block: 2, index: 5 }); // counted before the upgrade
      await bot.publish('comment', post('alice'), { block: 2, index: 6 });
      expect(await bot.clock.sendByName('digest.report.send', { period: 'day' }, { idempotencyKey: 'k' })).toEqual({ ops: 11 });
      const text = String(bot.mails[0]?.payload.text);
      expect(text).toMatch(/^Steem ops since 2023-11-14T22:13:20.000Z: 11$/m);
      expect(text).toMatch(/vote +7\n +comment +4/);
      expect(text).toMatch(/@alice +3\n +@bob +1/);
    } finally {
      await bot?.stop();
      bot = undefined;
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test('without DIGEST_EMAIL it idles with one line saying what to set; an invalid one is a config error', async () => {
    expect(Object.keys(variables)).not.toContain('DIGEST_EMAIL');
    expect(Object.keys(digestVariables)).toEqual(['DIGEST_EMAIL']);
    bot = await startTestBot(digest, {});
    expect(bot.running.idle).toBe(true);
    expect(bot.lines.filter((l) => String(l.msg).startsWith('idle')).map((l) => l.msg)).toEqual([
      expect.stringMatching(/until DIGEST_EMAIL is set in \.env or the environment/),
    ]);
    await expect(startTestBot(digest, { DIGEST_EMAIL: 'me at example' })).rejects.toMatchObject({
      code: 'ERR_CONFIG_INVALID',
      message: expect.stringMatching(/DIGEST_EMAIL: expected an email address/),
    });
  });

  test("the README lists its variables under Bots' own variables, with their defaults", () => {
    const readme = readFileSync(join(projectRoot, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf("## Bots' own variables")).split('\n## ')[0] as string;
    const table = section.slice(section.indexOf('### digest\n')).split('\n### ')[0] as string;
    const rows = [...table.matchAll(/^\|\s*`([A-Z0-9_]+)`\s*\|\s*([^|]+?)\s*\|/gm)].map((m) => [m[1], m[2]]);
    const defaults = Object.entries(digestVariables).map(([name, def]) => [
      name,
      def.default === undefined ? 'required' : `\`${def.default}\``,
    ]);
    expect(rows.sort()).toEqual(defaults.sort());
  });
});
