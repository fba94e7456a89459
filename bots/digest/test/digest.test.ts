import { startTestBot, type TestBot } from '@steem-bot/bot';

import { digest } from '../src';

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

    const reply = await bot.clock.send('digest.report.send', { period: 'day' }, { idempotencyKey: 'daily:2026-11-23' });
    expect(reply).toEqual({ ops: 4 });
    expect(bot.mails).toHaveLength(1);
    const text = String(bot.mails[0]?.payload.text);
    expect(bot.mails[0]?.payload.subject).toBe('Steem day digest: 4 ops');
    expect(text).toMatch(/comment +3/);
    expect(text).toMatch(/vote +1/);
    expect(text).toMatch(/@alice +2\n +@bob +1/);

    // The same tick again (a retry after a lost ack): the same report and the same mail key.
    await bot.publish('vote', { voter: 'x', author: 'alice', permlink: 'p', weight: 1 }, { block: 2, index: 0 });
    expect(await bot.clock.send('digest.report.send', { period: 'day' }, { idempotencyKey: 'daily:2026-11-23' })).toEqual({ ops: 4 });
    // The next tick reports only what came since.
    expect(await bot.clock.send('digest.report.send', { period: 'day' }, { idempotencyKey: 'daily:2026-11-24' })).toEqual({ ops: 1 });
    expect(bot.mails.map((m) => m.key)).toEqual(['digest:task:daily:2026-11-23:0', 'digest:task:daily:2026-11-24:0']);
  });

  test('an op delivered twice is counted once', async () => {
    bot = await startTestBot(digest, { DIGEST_EMAIL: 'me@example.com' });
    await bot.publish('vote', { voter: 'x', author: 'a', permlink: 'p', weight: 1 }, { block: 3, index: 0 });
    const handler = digest.definition.on.vote as (op: unknown, ctx: unknown) => void;
    handler({}, { db: bot.running.store.db, name: 'vote', position: 3_000_000 });
    expect(bot.running.store.db.prepare('SELECT n FROM op_counts WHERE type = ?').pluck().get('vote')).toBe(1);
  });

  test('refuses to start without DIGEST_EMAIL', async () => {
    await expect(startTestBot(digest, {})).rejects.toThrow(/DIGEST_EMAIL/);
  });
});
