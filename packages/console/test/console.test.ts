import { execFileSync } from 'node:child_process';
import { request } from 'node:http';
import { join } from 'node:path';

import { BotStore, deadLetterTasks } from '@steem-bot/bot';
import { Bus, MemoryHub, MemoryTransport } from '@steem-bot/bus';
import { clockStoreFile, SqliteClockStore } from '@steem-bot/clock';
import { type Catalogue, catalogue, type CatalogueShape, extendCatalogue, loadConfig, projectRoot } from '@steem-bot/config';
import { keptLogger, spawnProcess, testSetup } from '@steem-bot/testkit';

import { StatusMetrics } from '../src/metrics';
import { type RunningConsole, startConsole } from '../src/server';
import { collectStatus } from '../src/status';
import { traceTid } from '../src/trace';

const TOKEN = 'unit-console-token-abcdefghijkl';
const BROADCASTER = {
  mode: 'irreversible' as const,
  current_block: 1_000_010,
  head_block: 1_000_020,
  irreversible_block: 1_000_001,
  lag_blocks: 10,
  lag_seconds: 30,
  nodes: [{ url: 'http://127.0.0.1:1', state: 'healthy' as const, head: 1_000_020, failures: 0, lastError: null }],
  problem: null,
};

describe('console in-process, on the in-memory bus', () => {
  let setup: ReturnType<typeof testSetup>;
  let running: RunningConsole;
  let kept: ReturnType<typeof keptLogger>;
  const replays: number[] = [];
  const buses: Array<Bus<Catalogue>> = [];

  beforeAll(async () => {
    setup = testSetup();
    const hub = new MemoryHub();
    kept = keptLogger('console');
    const busFor = <C extends CatalogueShape = Catalogue>(app: string, own?: C): Bus<C> => {
      const cat = own ?? (catalogue as CatalogueShape as C);
      const bus = new Bus({ app, catalogue: cat, transport: new MemoryTransport(hub), logger: kept.logger, taskTimeoutMs: 1_000 });
      buses.push(bus as unknown as Bus<Catalogue>);
      return bus;
    };
    const broadcaster = busFor('broadcaster').handle('broadcaster.status.get', () => BROADCASTER);
    await broadcaster.serve();
    // A bot's dead-letter tasks are declared by the bot SDK, not in the project's catalogue.
    const watcher = busFor('watcher', extendCatalogue(catalogue, 'watcher', { tasks: deadLetterTasks('watcher') }));
    watcher.handle('watcher.deadletter.replay', ({ id }) => {
      replays.push(id);
      return { id, state: 'replay' as const };
    });
    await watcher.serve();
    const store = new BotStore(join(setup.config.DATA_DIR, 'bot-watcher.sqlite'));
    store.saveCheckpoint(1_000_005_000_002);
    store.addDeadLetter({
      position: 1_000_004_000_001,
      name: 'transfer',
      payload: { to: 'x' },
      tid: 'tid-unit-00001',
      error: 'E: boom',
      attempts: 3,
    });
    store.close();
    const clock = new SqliteClockStore(clockStoreFile(setup.config.DATA_DIR));
    await clock.claim('daily-digest', Date.parse('2026-11-30T08:00:00Z'), 'clock-1', 'tid-unit-tick1');
    await clock.close();
    running = await startConsole({
      config: { ...setup.config, CONSOLE_HOST: '127.0.0.1', CONSOLE_PORT: 0, CONSOLE_TOKEN: TOKEN, CONSOLE_REFRESH_MS: 200 },
      logger: kept.logger,
      bus: busFor('console'),
      listApps: () =>
        Promise.resolve([
          { name: 'watcher', status: 'online', restarts: 2, memory: 50e6, since: Date.now() - 5_000, pid: 42, bot: true, env: {} },
        ]),
    });
  });
  afterAll(async () => {
    await running?.stop();
    for (const bus of buses) await bus.close();
    setup.cleanup();
  });

  const post = (body: unknown, headers: Record<string, string> = {}): Promise<Response> =>
    fetch(`${running.url}/api/actions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-console-token': TOKEN, ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });

  test('the status joins PM2, the broadcaster call and the stores (read-only)', async () => {
    const status = await running.status();
    expect(status.apps).toEqual([expect.objectContaining({ name: 'watcher', status: 'online', restarts: 2, pid: 42 })]);
    expect(status.broadcaster).toEqual(BROADCASTER);
    expect(status.bots).toEqual([
      expect.objectContaining({ name: 'watcher', checkpoint: 1_000_005_000_002, block: 1_000_005, lag_blocks: 15, dead_letters: 1 }),
    ]);
    expect(status.bots[0]?.dead[0]).toMatchObject({ name: 'transfer', tid: 'tid-unit-00001', state: 'dead' });
    expect(status.ticks?.recent).toEqual([expect.objectContaining({ schedule: 'daily-digest', owner: 'clock-1', state: 'claimed' })]);
  });

  test('an action goes to the owning app as its task, and is logged with what and TID, never the token', async () => {
    const res = await post({ action: 'replay', bot: 'watcher', id: 7 });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true, reply: { id: 7, state: 'replay' } });
    expect(replays).toEqual([7]);
    const line = kept.lines.find((l) => String(l.msg).startsWith('console action: replay watcher dead letter #7'));
    expect(line).toMatchObject({ tid: expect.any(String), action: { action: 'replay', bot: 'watcher', id: 7 } });
    expect(JSON.stringify(kept.lines)).not.toContain(TOKEN);
  });

  test('bad actions get a clear error and reach no app', async () => {
    const cases: Array<[unknown, Record<string, string>, number, RegExp]> = [
      [{ action: 'replay', bot: 'watcher', id: 1 }, { 'x-console-token': '' }, 401, /X-Console-Token/],
      [{ action: 'replay', bot: 'watcher', id: 1 }, { 'x-console-token': `${TOKEN}x` }, 401, /X-Console-Token/],
      [{ action: 'replay', bot: 'watcher', id: 1 }, { origin: 'http://evil.example' }, 403, /cross-site/],
      [{ action: 'replay', bot: 'watcher', id: 1 }, { 'sec-fetch-site': 'cross-site' }, 403, /cross-site/],
      [{ action: 'replay', bot: 'watcher', id: 1 }, { 'content-type': 'text/plain' }, 400, /application\/json/],
      ['{"action":', {}, 400, /not JSON/],
      [{ action: 'explode', id: 1 }, {}, 400, /not an action/],
      [{ action: 'replay', bot: 'watcher', id: -1 }, {}, 400, /id/],
      // Sent by name (a bot declares its own tasks): no such app answers.
      [{ action: 'replay', bot: 'nobot', id: 1 }, {}, 504, /no answer from nobot/],
      [JSON.stringify({ action: 'retry', id: 'x'.repeat(5_000) }), {}, 400, /larger than/],
      // The mailer is not running here: the answer says so.
      [{ action: 'retry', id: 'm-1' }, {}, 504, /mailer/],
    ];
    for (const [body, headers, code, message] of cases) {
      const res = await post(body, headers);
      const answer = (await res.json()) as { error: { code: string; message: string } };
      expect([code, answer.error.message]).toEqual([res.status, expect.stringMatching(message)]);
    }
    expect(replays).toEqual([7]);
  });

  test('a Host that is not loopback is refused (DNS rebinding); a bad TID is refused', async () => {
    const status = await new Promise<number>((resolve, reject) =>
      request(`${running.url}/api/status`, { headers: { host: 'evil.example:80' } }, (res) => resolve(res.statusCode ?? 0))
        .on('error', reject)
        .end(),
    );
    expect(status).toBe(421);
    const res = await fetch(`${running.url}/api/trace?tid=${encodeURIComponent("x' OR 1=1 --")}`);
    expect(res.status).toBe(400);
  });

  test('the TID trace finds the dead letter, and the clock tick', () => {
    expect(traceTid(setup.config.DATA_DIR, 'tid-unit-tick1')).toEqual([expect.objectContaining({ app: 'clock', kind: 'tick' })]);
    expect(traceTid(setup.config.DATA_DIR, 'tid-unit-00001')).toEqual([
      expect.objectContaining({ app: 'watcher', kind: 'dead-letter', summary: expect.stringContaining('transfer at 1000004000001') }),
    ]);
  });

  test('metrics: the status becomes Prometheus series', async () => {
    const metrics = new StatusMetrics();
    metrics.update(await running.status());
    const text = await metrics.text();
    expect(text).toContain('steembot_app_up{app="watcher"} 1');
    expect(text).toContain('steembot_app_restarts_total{app="watcher"} 2');
    expect(text).toContain('steembot_broadcaster_lag_blocks 10');
    expect(text).toContain('steembot_broadcaster_node_state{url="http://127.0.0.1:1",state="healthy"} 1');
    expect(text).toContain('steembot_bot_dead_letters{bot="watcher"} 1');
    expect(text).toContain('steembot_clock_ticks_total{schedule="daily-digest",state="claimed"} 1');
  });
});

test('the console refuses to start on a non-loopback address without a token (exit 78), and says why', async () => {
  const { env, cleanup } = testSetup();
  try {
    const proc = await spawnProcess(join(projectRoot, 'packages/console/dist/main.js'), {
      env: { ...env, CONSOLE_HOST: '0.0.0.0', CONSOLE_PORT: '0', CONSOLE_TOKEN: '' },
      ready: false,
      stderr: 'pipe',
    });
    let stderr = '';
    proc.child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
    expect(await proc.exited).toBe(78);
    expect(stderr).toMatch(/CONSOLE_HOST 0.0.0.0 is not loopback: set CONSOLE_TOKEN/);
  } finally {
    cleanup();
  }
});

test('npm run status -- --json prints the object the console collects; the text screen shows the same', async () => {
  const { env, config, cleanup } = testSetup();
  const pm2Home = join(env.DATA_DIR as string, '..', 'pm2');
  const run = (...args: string[]): string =>
    execFileSync(process.execPath, [join(projectRoot, 'scripts/status.js'), ...args], {
      env: { ...process.env, ...env, PM2_HOME: pm2Home, LOG_LEVEL: 'silent' },
      encoding: 'utf8',
    });
  try {
    const store = new BotStore(join(config.DATA_DIR, 'bot-digest.sqlite'));
    store.addDeadLetter({ position: 5, name: 'vote', payload: {}, tid: 'tid-status-001', error: 'E: x', attempts: 1 });
    store.close();
    const printed = JSON.parse(run('--json')) as Record<string, unknown>;
    const collected = await collectStatus({
      config: loadConfig({ dotenvPath: false, env }),
      bus: { call: () => Promise.reject(new Error('broadcaster.status.get: no answer from broadcaster within 2000 ms')) },
      apps: [],
    });
    expect(Object.keys(printed).sort()).toEqual(Object.keys(collected).sort());
    expect(printed.bots).toEqual(JSON.parse(JSON.stringify(collected.bots)));
    expect(printed.broadcaster).toEqual(collected.broadcaster);
    const text = run();
    expect(text).toMatch(/BOTS\n {2}digest +block - +lag \? blocks +dead letters 1/);
    expect(text).toMatch(/not answering: broadcaster.status.get: no answer/);
  } finally {
    try {
      execFileSync(process.execPath, [join(projectRoot, 'node_modules/pm2/bin/pm2'), 'kill'], {
        env: { ...process.env, PM2_HOME: pm2Home },
        stdio: 'ignore',
      });
    } finally {
      cleanup();
    }
  }
});
