import { DevNode } from '@steem-bot/devnode';
import { spawnProcess, testSetup } from '@steem-bot/testkit';

// Each app validates the shared variables and its own only: another app's bad value must not
// stop it (it did: a bad MAILER_FROM stopped the broadcaster).
const apps: Array<{ script: string; bad: Record<string, string> }> = [
  { script: 'packages/broadcaster/dist/main.js', bad: { MAILER_FROM: 'not an address', CLOCK_KEEP_DAYS: 'soon' } },
  { script: 'packages/mailer/dist/main-api.js', bad: { STEEM_NODES: 'ftp://nowhere', STEEM_MODE: 'sideways', BOT_LIVE: 'yes' } },
  { script: 'packages/mailer/dist/main-worker.js', bad: { STEEM_START_BLOCK: 'tomorrow', CLOCK_SCHEDULES: '' } },
  { script: 'packages/clock/dist/main.js', bad: { MAILER_PORT: 'eighty', BROADCASTER_BATCH: '-1', WEBHOOKS_RETRY_SCHEDULE_MS: 'soon' } },
  { script: 'packages/webhooks/dist/main.js', bad: { MAILER_PORT: 'eighty', STEEM_MODE: 'sideways', CLOCK_KEEP_DAYS: 'soon' } },
];

let node: DevNode;
beforeAll(async () => (node = await DevNode.start({ intervalMs: 0 })));
afterAll(() => node.stop());

test.each(apps)("$script starts although other apps' variables are invalid", async ({ script, bad }) => {
  const setup = testSetup({ STEEM_NODES: node.url, MAILER_PORT: '0', WEBHOOKS_PORT: '0' });
  const proc = await spawnProcess(script, { env: { ...setup.env, ...bad } });
  try {
    expect(proc.messagesLogged).toContain('ready');
    expect(await proc.stop('SIGINT')).toBe(0);
  } finally {
    await proc.stop();
    setup.cleanup();
  }
});
