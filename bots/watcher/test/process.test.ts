import { BotStore } from '@steem-bot/bot';
import { appliedPosition } from '@steem-bot/config';
import { condenserOp, DevNode, SmtpSink } from '@steem-bot/devnode';
import { type Proc, projectRootFile, spawnProcess, testSetup, waitFor } from '@steem-bot/testkit';

import { emailsFor } from '../src';

const cleanups: Array<() => unknown> = [];
afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

test('with devnode, the broadcaster, the mailer and a real SMTP server: exactly one email per matching event', async () => {
  const node = await DevNode.start({ intervalMs: 0, synthetic: 300, opsPerBlock: [10, 30], libDistance: 0, seed: 21 });
  cleanups.push(() => node.stop());
  const sink = await SmtpSink.start({ dir: `/tmp/watcher-sink-${process.pid}` });
  cleanups.push(() => sink.stop());
  const watched = new Set(['alice', 'bob']);
  const expected: string[] = [];
  for (let n = 1_000_000; n <= node.chain.head(); n++) {
    for (const trx of node.chain.block(n)?.transactions ?? []) {
      for (const op of trx.operations) {
        const [name, value] = condenserOp(op);
        if (name === 'transfer' || name === 'comment')
          expected.push(...emailsFor(name, { ...value, block_num: n }, watched).map((e) => e.subject));
      }
    }
  }
  expect(expected.length).toBeGreaterThan(20);

  const t = testSetup({
    STEEM_NODES: node.url,
    STEEM_START_BLOCK: '1000000',
    SMTP_URL: `smtp://127.0.0.1:${sink.port}`,
    MAILER_PORT: '0',
    WATCHER_ACCOUNTS: 'alice,bob',
    WATCHER_EMAIL: 'ops@example.com',
    LOG_LEVEL: 'warn',
  });
  cleanups.push(t.cleanup);
  const store = new BotStore(`${t.config.DATA_DIR}/bot-watcher.sqlite`);
  store.saveCheckpoint(appliedPosition(999_999));
  store.close();
  const start = async (file: string): Promise<Proc> => {
    const proc = await spawnProcess(projectRootFile(file), { env: t.env });
    cleanups.push(() => proc.stop());
    return proc;
  };
  await start('packages/mailer/dist/main-api.js');
  await start('packages/mailer/dist/main-worker.js');
  await start('bots/watcher/dist/main.js');
  await start('packages/broadcaster/dist/main.js');
  await waitFor(() => sink.messages.length >= expected.length, 60_000, `${expected.length} emails`);
  await new Promise((r) => setTimeout(r, 500)); // nothing more arrives
  const received = sink.messages.map((m) => m.subject as string);
  expect(received.sort()).toEqual([...expected].sort());
  expect(sink.messages.every((m) => m.to.join() === 'ops@example.com')).toBe(true);
});
