import { startTestBot, type TestBot } from '@steem-bot/bot';
import { variables } from '@steem-bot/config';
import { waitFor } from '@steem-bot/testkit';

import { mentions, tipper, tipperVariables } from '../src';

const comment = (author: string, permlink: string, body: string, parent = '') => ({
  parent_author: parent,
  parent_permlink: parent ? 'their-post' : 'steem',
  author,
  permlink,
  title: '',
  body,
  json_metadata: '{}',
});

describe('tipper', () => {
  let bot: TestBot | undefined;
  afterEach(() => bot?.stop());

  test('finds mentions of its account, not emails, URLs or longer names', () => {
    expect(mentions('thanks @tipper.bot!', 'tipper.bot')).toBe(true);
    expect(mentions('(@tipper)', 'tipper')).toBe(true);
    expect(mentions('me@tipper.com https://x.io/@tipper/p @tipperx @tipper-b', 'tipper')).toBe(false);
  });

  test('replies once per post that mentions it, through the signer, keyed by op position; not to edits, its own posts or other posts', async () => {
    bot = await startTestBot(tipper, { TIPPER_ACCOUNT: 'tipper' });
    await bot.publish('comment', comment('carol', 'Hello_World', 'hi @tipper'), { block: 7, index: 0 });
    await bot.publish('comment', comment('carol', 'Hello_World', '@@ -1 +1 @@ hi @tipper again'), { block: 7, index: 1 });
    await bot.publish('comment', comment('carol', 'Hello_World', 'edited, still mentioning @tipper'), { block: 8, index: 0 });
    await bot.publish('comment', comment('tipper', 'mine', 'I am @tipper'), { block: 8, index: 1 });
    await bot.publish('comment', comment('dave', 'other', 'hi @alice'), { block: 8, index: 2 });
    expect(bot.actions).toEqual([
      {
        task: 'signer.comment.post',
        key: 'tipper:7000000:0',
        payload: {
          account: 'tipper',
          parent_author: 'carol',
          parent_permlink: 'Hello_World',
          permlink: 're-carol-hello-world',
          body: 'Thanks for the mention, @carol!',
        },
      },
    ]);
    expect(bot.lines.some((l) => l.msg === 'replying to @carol/Hello_World (signer action action-1)')).toBe(true);
    // The outcome, from the signer (here in dry run), is logged when it comes.
    await waitFor(() => bot?.lines.some((l) => String(l.msg).startsWith('replying to @carol/Hello_World: dry run')) ?? false, 5_000);
  });

  test('TIPPER_MODE=pay transfers TIPPER_AMOUNT to the author (it declares the active key)', async () => {
    bot = await startTestBot(tipper, { TIPPER_ACCOUNT: 'tipper', TIPPER_MODE: 'pay', TIPPER_AMOUNT: '0.010 SBD' });
    await bot.publish('comment', comment('carol', 're-x', 'cc @tipper', 'dave'), { block: 9, index: 3 });
    expect(bot.actions).toEqual([
      {
        task: 'signer.transfer.send',
        key: 'tipper:9000003:0',
        payload: { account: 'tipper', to: 'carol', amount: '0.010 SBD', memo: 'Thanks for mentioning @tipper in @carol/re-x' },
      },
    ]);
  });

  test('a signer without the key the mode needs stops it at start-up; without TIPPER_ACCOUNT it idles', async () => {
    await expect(
      startTestBot(tipper, { TIPPER_ACCOUNT: 'tipper', TIPPER_MODE: 'pay' }, { signerKeys: { tipper: ['posting'] } }),
    ).rejects.toMatchObject({ code: 'ERR_BOT_KEY_MISSING', message: expect.stringMatching(/no key for @tipper \(active\)/) });
    bot = await startTestBot(tipper, {});
    expect(bot.running.idle).toBe(true);
    expect(bot.lines.filter((l) => String(l.msg).startsWith('idle, handling nothing, until TIPPER_ACCOUNT is set'))).toHaveLength(1);
  });

  test('its variables are its own: declared by the bot package, not in the config catalogue', () => {
    expect(Object.keys(variables)).not.toContain('TIPPER_ACCOUNT');
    expect(Object.keys(tipperVariables)).toEqual(['TIPPER_ACCOUNT', 'TIPPER_MODE', 'TIPPER_AMOUNT']);
  });
});
