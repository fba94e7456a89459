import { BotStore, startTestBot, type TestBot } from '@steem-bot/bot';
import { appliedPosition } from '@steem-bot/config';
import { DevNode } from '@steem-bot/devnode';
import { type Proc, projectRootFile, spawnProcess, testSetup, waitFor } from '@steem-bot/testkit';

import { newPosts } from '../src';

const post = (author: string, permlink: string, body = 'Hello') => ({
  parent_author: '',
  parent_permlink: 'steem',
  author,
  permlink,
  title: 'T',
  body,
  json_metadata: '{}',
});

describe('new-posts', () => {
  let bot: TestBot | undefined;
  afterEach(() => bot?.stop());

  test('announces root posts once: not replies, not edits (a permlink seen before, or a diff patch)', async () => {
    bot = await startTestBot(newPosts, { LOG_LEVEL: 'info' });
    await bot.publish('comment', post('alice', 'first'), { block: 10, index: 0 });
    await bot.publish('comment', { ...post('bob', 'reply'), parent_author: 'alice', parent_permlink: 'first' }, { block: 10, index: 1 });
    await bot.publish('comment', post('alice', 'first', 'Hello, edited'), { block: 11, index: 0 });
    await bot.publish('comment', post('carol', 'old-post', '@@ -1,5 +1,6 @@\n-Hello\n+Hello!'), { block: 11, index: 1 });
    await bot.publish('comment', post('carol', 'second'), { block: 12, index: 0 });
    const announced = bot.lines.map((l) => String(l.msg)).filter((m) => m.startsWith('new post:'));
    expect(announced).toEqual(['new post: https://steemit.com/@alice/first', 'new post: https://steemit.com/@carol/second']);
  });
});

describe('new-posts process with devnode and the broadcaster', () => {
  const procs: Proc[] = [];
  const cleanups: Array<() => unknown> = [];
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    for (const c of cleanups) await c();
  });

  test('prints exactly the root posts of the replayed blocks', async () => {
    const node = await DevNode.start({ intervalMs: 0, synthetic: 200, opsPerBlock: [20, 40], libDistance: 0, seed: 3 });
    cleanups.push(() => node.stop());
    const first = 1_000_000;
    const last = node.chain.head();
    const expected: string[] = [];
    for (let n = first; n <= last; n++) {
      for (const trx of node.chain.block(n)?.transactions ?? []) {
        for (const op of trx.operations) {
          const v = op.value as { parent_author?: string; author?: string; permlink?: string };
          if (op.type === 'comment_operation' && v.parent_author === '')
            expected.push(`new post: https://steemit.com/@${v.author}/${v.permlink}`);
        }
      }
    }
    expect(expected.length).toBeGreaterThan(50);
    const t = testSetup({ STEEM_NODES: node.url, STEEM_START_BLOCK: String(first) });
    cleanups.push(t.cleanup);
    const store = new BotStore(`${t.config.DATA_DIR}/bot-new-posts.sqlite`);
    store.saveCheckpoint(appliedPosition(first - 1));
    store.close();
    const bot = await spawnProcess(projectRootFile('bots/new-posts/dist/main.js'), { env: t.env });
    procs.push(bot, await spawnProcess(projectRootFile('packages/broadcaster/dist/main.js'), { env: { ...t.env, LOG_LEVEL: 'warn' } }));
    const announced = (): string[] => bot.messagesLogged.filter((m) => m.startsWith('new post:'));
    await waitFor(() => announced().length >= expected.length, 60_000, `${expected.length} posts`);
    await new Promise((r) => setTimeout(r, 300));
    expect(announced()).toEqual(expected);
  });
});
