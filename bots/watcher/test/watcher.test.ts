import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { startTestBot, type TestBot } from '@steem-bot/bot';
import { projectRoot, variables } from '@steem-bot/config';

import { mentionsIn, watcher, watcherVariables } from '../src';

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

  test('without WATCHER_ACCOUNTS and WATCHER_EMAIL it idles: one line says what to set, no op is handled', async () => {
    bot = await startTestBot(watcher, {});
    expect(bot.running.idle).toBe(true);
    const idle = bot.lines.filter((l) => String(l.msg).startsWith('idle'));
    expect(idle).toHaveLength(1);
    expect(idle[0]).toMatchObject({ level: 40, msg: expect.stringMatching(/until WATCHER_ACCOUNTS and WATCHER_EMAIL are set in \.env/) });
  });

  test('declares its own variables (config does not know them); an invalid value is a config error listing each', async () => {
    expect(Object.keys(variables)).not.toContain('WATCHER_ACCOUNTS');
    expect(Object.keys(variables)).not.toContain('WATCHER_EMAIL');
    expect(Object.keys(watcherVariables).sort()).toEqual(['WATCHER_ACCOUNTS', 'WATCHER_EMAIL']);
    await expect(startTestBot(watcher, { WATCHER_ACCOUNTS: 'alice,Not A Name', WATCHER_EMAIL: 'nobody' })).rejects.toMatchObject({
      code: 'ERR_CONFIG_INVALID',
      message: expect.stringMatching(
        /^invalid configuration:\n {2}WATCHER_ACCOUNTS: expected Steem account names.*\n {2}WATCHER_EMAIL: expected an email address/,
      ),
    });
  });

  test("the README lists its variables under Bots' own variables, with their defaults", () => {
    const readme = readFileSync(join(projectRoot, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf("## Bots' own variables")).split('\n## ')[0] as string;
    const table = section.slice(section.indexOf('### watcher\n')).split('\n### ')[0] as string;
    const rows = [...table.matchAll(/^\|\s*`([A-Z0-9_]+)`\s*\|\s*([^|]+?)\s*\|/gm)].map((m) => [m[1], m[2]]);
    const defaults = Object.entries(watcherVariables).map(([name, def]) => [
      name,
      def.default === undefined ? 'required' : `\`${def.default}\``,
    ]);
    expect(rows.sort()).toEqual(defaults.sort());
  });
});
