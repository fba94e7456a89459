import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// `npm ci && npm start` on a fresh clone with no .env: `pm2 start pm2.json` as it is, with the
// default variables (the public Steem nodes, which this machine cannot reach), must leave every
// app online: none restart-looping, none stopped red. Only the directories and the mailer's and webhooks' ports
// are moved, so that the test does not touch the repository's var/ or a running system.
jest.setTimeout(120_000);

const ROOT = join(__dirname, '..', '..');
const PM2 = join(ROOT, 'node_modules', 'pm2', 'bin', 'pm2');
const dir = mkdtempSync(join(tmpdir(), 'sbf-'));
const env: NodeJS.ProcessEnv = {
  ...Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) => !/^(STEEM|BOT|MAILER|WEBHOOKS|CLOCK|BUS|BROADCASTER|WATCHER|DIGEST|TIPPER|SIGNER|LOG|SMTP|STORE|DATABASE)_?/.test(k),
    ),
  ),
  PM2_HOME: join(dir, 'pm2'),
  SOCKET_DIR: join(dir, 'run'),
  DATA_DIR: join(dir, 'data'),
  MAILER_OUTBOX: join(dir, 'outbox'),
  MAILER_PORT: String(20_000 + Math.floor(Math.random() * 20_000)),
  WEBHOOKS_PORT: String(20_000 + Math.floor(Math.random() * 20_000)),
};
const pm2 = (...args: string[]): string => execFileSync(process.execPath, [PM2, ...args], { env, encoding: 'utf8', cwd: ROOT });

afterAll(() => {
  try {
    pm2('kill');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('pm2 start pm2.json with no .env: every app comes online and stays online', async () => {
  const names = (JSON.parse(readFileSync(join(ROOT, 'pm2.json'), 'utf8')) as { apps: Array<{ name: string }> }).apps.map((a) => a.name);
  pm2('start', 'pm2.json');
  await new Promise((r) => setTimeout(r, 15_000)); // long enough for a crashing app to have restarted
  const apps = JSON.parse(pm2('jlist')) as Array<{ name: string; pm2_env: { status: string; restart_time: number } }>;
  expect(apps.map((a) => [a.name, a.pm2_env.status, a.pm2_env.restart_time]).sort()).toEqual(names.map((n) => [n, 'online', 0]).sort());
});
