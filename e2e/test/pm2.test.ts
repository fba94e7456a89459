import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { APPLIED_INDEX, positionOf } from '@steem-bot/broadcaster';
import { createIpcBus } from '@steem-bot/bus';
import { catalogue, createLogger, loadConfig } from '@steem-bot/config';

// The apps under the project's own PM2 (node_modules/pm2), with a private PM2_HOME: SIGKILL one,
// PM2 restarts it, the others keep working, and the stream goes on with no gap.
jest.setTimeout(180_000);

const ROOT = join(__dirname, '..', '..');
const PM2 = join(ROOT, 'node_modules', 'pm2', 'bin', 'pm2');

interface Pm2App {
  name: string;
  pid: number;
  pm2_env: { status: string; restart_time: number };
}

let dir: string;
let env: NodeJS.ProcessEnv;
const pm2 = (...args: string[]): string => execFileSync(process.execPath, [PM2, ...args], { env, encoding: 'utf8', cwd: ROOT });
const list = (): Pm2App[] => JSON.parse(pm2('jlist')) as Pm2App[];
const app = (name: string): Pm2App => list().find((a) => a.name === name) as Pm2App;

async function until(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'sbe-'));
  env = { ...process.env, PM2_HOME: join(dir, 'pm2') };
});
afterAll(() => {
  try {
    pm2('kill');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('PM2 restarts a SIGKILLed app; the others keep working; nothing is lost', async () => {
  const appEnv = { SOCKET_DIR: join(dir, 'run'), DATA_DIR: join(dir, 'data'), LOG_FORMAT: 'json', LOG_LEVEL: 'info' };
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const broadcaster = (JSON.parse(readFileSync(join(ROOT, 'pm2.json'), 'utf8')) as { apps: Array<Record<string, unknown>> }).apps[0];
  const ecosystem = {
    apps: [
      {
        name: 'devnode',
        script: 'packages/devnode/dist/cli.js',
        args: ['--port', String(port), '--interval-ms', '20', '--synthetic', '20000', '--ops-per-block', '5-20'],
        cwd: ROOT,
        wait_ready: true,
        listen_timeout: 10_000,
        kill_timeout: 3_000,
      },
      {
        ...broadcaster,
        cwd: ROOT,
        env: { ...appEnv, STEEM_NODES: `http://127.0.0.1:${port}`, STEEM_START_BLOCK: '1000000', BROADCASTER_POLL_MS: '200' },
      },
    ],
  };
  writeFileSync(join(dir, 'ecosystem.json'), JSON.stringify(ecosystem));
  pm2('start', join(dir, 'ecosystem.json'));
  expect(list().map((a) => [a.name, a.pm2_env.status])).toEqual([
    ['devnode', 'online'],
    ['broadcaster', 'online'],
  ]);

  const config = loadConfig({ dotenvPath: false, env: { ...appEnv, LOG_LEVEL: 'warn' } });
  const bus = createIpcBus('e2e', catalogue, config, createLogger({ app: 'e2e', level: 'warn', format: 'json' }));
  const blocks: number[] = [];
  bus.subscribe('broadcaster', { 'block.applied': (p) => void blocks.push(p.block_num) }, { from: positionOf(999_999, APPLIED_INDEX) });
  try {
    await until(() => blocks.length > 300, 60_000, '300 blocks');
    const before = app('broadcaster');
    const devnodePid = app('devnode').pid;
    process.kill(before.pid, 'SIGKILL');
    await until(
      () => app('broadcaster').pm2_env.restart_time === before.pm2_env.restart_time + 1 && app('broadcaster').pm2_env.status === 'online',
      30_000,
      'the restart',
    );
    expect(app('broadcaster').pid).not.toBe(before.pid);
    expect(app('devnode')).toMatchObject({ pid: devnodePid, pm2_env: { status: 'online', restart_time: 0 } });
    const atRestart = blocks.length;
    await until(() => blocks.length > atRestart + 300, 60_000, '300 more blocks after the restart');
    expect(blocks).toEqual(Array.from({ length: blocks.length }, (_, i) => 1_000_000 + i));
  } finally {
    await bus.close();
  }
});
