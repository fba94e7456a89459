import { startTestBot, type TestBot } from '@steem-bot/bot';

import { mentionsIn, watcher } from '../src';

const comment = (author: string, permlink: string, body: string, parent = '') => ({
  parent_author: parent,
  parent_permlink: parent ? 'their-post' : 'steem',
  author,
  permlink,
  title: '',
  body,
  json_metadata: '{}',
});

describe('watcher', () => {
  let bot: TestBot | undefined;
  afterEach(() => bot?.stop());

  test('finds mentions of watched accounts, not emails, URLs or longer names', () => {
    const watched = new Set(['alice', 'bob.x']);
    expect(mentionsIn('hi @alice and @bob.x.', watched)).toEqual(['alice', 'bob.x']);
    expect(mentionsIn('mail me: me@alice.com, https://x.io/@alice/post, @alicex, @alice-b', watched)).toEqual([]);
    expect(mentionsIn('(@alice) @alice', watched)).toEqual(['alice']);
  });

  test('one email per incoming transfer, reply and mention, keyed by op position', async () => {
    bot = await startTestBot(watcher, { WATCHER_ACCOUNTS: 'alice,bob', WATCHER_EMAIL: 'ops@example.com' });
    await bot.publish('transfer', { from: 'carol', to: 'alice', amount: '1.000 STEEM', memo: 'thanks' }, { block: 5, index: 0 });
    await bot.publish('transfer', { from: 'alice', to: 'carol', amount: '2.000 STEEM', memo: '' }, { block: 5, index: 1 });
    await bot.publish('comment', comment('carol', 're-1', 'nice post @alice, cc @bob', 'alice'), { block: 6, index: 0 });
    await bot.publish('comment', comment('alice', 'self', 'I am @alice', 'alice'), { block: 6, index: 1 });
    await bot.publish('comment', comment('dave', 'edit', '@@ -1 +1 @@ @alice'), { block: 6, index: 2 });
    expect(bot.mails.map((m) => [m.key, m.payload.subject])).toEqual([
      ['watcher:5000000:0', '@alice received 1.000 STEEM from @carol'],
      ['watcher:6000000:0', '@carol replied to @alice'],
      ['watcher:6000000:1', '@carol mentioned @bob'],
    ]);
    expect(bot.mails.every((m) => JSON.stringify(m.payload.to) === '["ops@example.com"]')).toBe(true);
  });

  test('refuses to start without accounts or an address', async () => {
    await expect(startTestBot(watcher, {})).rejects.toThrow(/WATCHER_ACCOUNTS .* and WATCHER_EMAIL/);
  });
});
