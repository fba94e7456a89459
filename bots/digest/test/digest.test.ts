import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { startTestBot, type TestBot } from '@steem-bot/bot';
import { projectRoot, variables } from '@steem-bot/config';

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
    const handler = digest.definition.on.vote as (op: unknown, ctx: unknown) => void;
    handler({}, { db: bot.running.store.db, name: 'vote', position: 3_000_000 });
    expect(bot.running.store.db.prepare('SELECT n FROM op_counts WHERE type = ?').pluck().get('vote')).toBe(1);
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
