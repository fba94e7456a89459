import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { join } from 'node:path';

import { BotStore, deadLetterTasks } from '@steem-bot/bot';
import { Bus, MemoryHub, MemoryTransport } from '@steem-bot/bus';
import { clockStoreFile, openClockStore, parseSchedules, SqliteClockStore } from '@steem-bot/clock';
import { AppError, type Catalogue, catalogue, type CatalogueShape, extendCatalogue, loadConfig, projectRoot } from '@steem-bot/config';
import { openMailerStore } from '@steem-bot/mailer';
import { openSignerStore } from '@steem-bot/signer';
import { keptLogger, spawnProcess, testSetup } from '@steem-bot/testkit';
import { addClient, openWebhookStore, startWebhooks } from '@steem-bot/webhooks';

import { readClockFigures } from '../src/clock-misses';
import { StatusMetrics } from '../src/metrics';
import { openReaders, type StoreReaders } from '../src/readers';
import { type RunningConsole, startConsole } from '../src/server';
import { collectStatus } from '../src/status';
import { traceTid } from '../src/trace';
import { dropSchema, fillBot } from './fill';

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

// The suite runs on each store the console reads: SQLite files, and PostgreSQL tables filled by the
// apps' own PostgreSQL stores on a schema of its own (dropped after) when TEST_DATABASE_URL is set.
const databaseUrl = process.env.TEST_DATABASE_URL;
if (!databaseUrl) process.stdout.write('console on PostgreSQL: TEST_DATABASE_URL is not set; the PostgreSQL half is skipped\n');
const storeKinds: Array<[string, () => Record<string, string>]> = [['sqlite', () => ({})]];
if (databaseUrl)
  storeKinds.push([
    'postgres',
    () => ({
      STORE: 'postgres',
      DATABASE_URL: databaseUrl,
      DATABASE_SCHEMA: `sbt_console_${process.pid}_${randomBytes(3).toString('hex')}`,
    }),
  ]);

describe.each(storeKinds)('console in-process, on the in-memory bus, stores on %s', (kind, storeVars) => {
  let setup: ReturnType<typeof testSetup>;
  let running: RunningConsole;
  let kept: ReturnType<typeof keptLogger>;
  let readers: StoreReaders;
  const replays: number[] = [];
  const retries: string[] = [];
  const buses: Array<Bus<Catalogue>> = [];
  let webhooks: Awaited<ReturnType<typeof startWebhooks>>;
  let failed: { retryable: string; final: string };

  beforeAll(async () => {
    setup = testSetup({ WEBHOOKS_PORT: '0', ...storeVars() });
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
    // The signer's Retry handler is another package's work: this one answers as the catalogue
    // says, and refuses what is not retryable with the signer's own error.
    const signer = busFor('signer').handle('signer.action.retry', ({ action_id }) => {
      retries.push(action_id);
      if (action_id !== failed.retryable) throw new AppError('ERR_SIGNER_CONFLICT', `action ${action_id} failed for good; send it again`);
      return { action_id, state: 'pending' as const };
    });
    await signer.serve();
    // Every store is filled through its app's own store class (SQLite or PostgreSQL, as configured).
    const signerStore = await openSignerStore(setup.config);
    const op = (memo: string) => ['transfer', { from: 'alice', to: 'bob', amount: '1.000 STEEM', memo }] as never;
    const a = await signerStore.record(
      { key: 'tipper:1000004000001:0', kind: 'transfer', account: 'alice', role: 'active', op: op('a'), tid: 'tid-unit-sign1' },
      1,
    );
    const b = await signerStore.record(
      { key: 'tipper:1000004000002:0', kind: 'transfer', account: 'alice', role: 'active', op: op('b'), tid: 'tid-unit-sign2' },
      2,
    );
    await signerStore.finish(a.id, { state: 'failed', reason: 'RC too low', retryable: true }, 3);
    await signerStore.finish(b.id, { state: 'failed', reason: 'missing active authority', retryable: false }, 4);
    await signerStore.close();
    failed = { retryable: a.id, final: b.id };
    // A disabled webhook endpoint with one logged try, enabled later through the real webhooks app.
    const hooks = await openWebhookStore(setup.config);
    await addClient(hooks, 'shop');
    const spec = { url: 'https://example.com/hook?token=secret', events: ['transfer'], filter: {}, description: '', disabled: false };
    const { row } = await hooks.upsertEndpoint('shop', 'orders', spec, 'whsec_x', 1);
    await hooks.logDelivery(row.seq, {
      at: 2,
      type: 'transfer',
      position: 5,
      webhook_id: 'msg_1',
      status: 410,
      error: 'HTTP 410',
      duration_ms: 30,
      response: null,
    });
    await hooks.disable(row.seq, 'the receiver answered 410 Gone', 3);
    await hooks.close();
    webhooks = await startWebhooks({ config: setup.config, logger: kept.logger, bus: busFor('webhooks') });
    // A message sent 2.5 s after it was queued: the send latency histogram.
    const mail = await openMailerStore(setup.config, 'cli');
    const queued = Date.now() - 10_000;
    await mail.enqueue({
      client: 'bus',
      key: 'watcher:1000004000001:0',
      request: { to: ['ops@example.com'], subject: 's', text: 't' } as never,
      tid: 'tid-unit-mail1',
      now: queued,
      domain: 'example.com',
    });
    const [claimed] = await mail.claimDue('unit', queued + 2_000, 60_000, 1);
    await mail.finish(claimed!.seq, 'unit', 'sent', { status: 'sent', now: queued + 2_500, durationMs: 400, countsAsAttempt: true });
    await mail.close();
    await fillBot(setup.config, 'watcher', 1_000_005_000_002, {
      position: 1_000_004_000_001,
      name: 'transfer',
      payload: { to: 'x' },
      tid: 'tid-unit-00001',
      error: 'E: boom',
      attempts: 3,
    });
    const clock = await openClockStore(setup.config);
    await clock.claim('daily-digest', Date.parse('2026-11-30T08:00:00Z'), 'clock-1', 'tid-unit-tick1');
    await clock.close();
    readers = openReaders(setup.config);
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
    await webhooks?.stop();
    await readers?.close();
    for (const bus of buses) await bus.close();
    await dropSchema(setup?.config);
    setup?.cleanup();
  });

  test('the stores are read as configured, and never written: a write through a reader is refused', async () => {
    expect(readers.kind).toBe(kind);
    // The refusal's own words (SQLite: "attempt to write a readonly database"; PostgreSQL: "cannot
    // execute DELETE in a read-only transaction"), or what came back instead.
    const outcome = await readers
      .read('mailer', (r) => r.all(`DELETE FROM ${r.t('messages')} RETURNING id`))
      .then(
        (rows) => `not refused: ${JSON.stringify(rows)}`,
        (err: unknown) => String((err as Error | undefined)?.message ?? err),
      );
    expect(outcome).toMatch(/read-only|readonly/);
    expect((await readers.read('mailer', (r) => r.get<{ n: number }>(`SELECT COUNT(*) AS n FROM ${r.t('messages')}`)))?.n).toBe(1);
  });

  test('/metrics and /api/trace answer from the stores', async () => {
    const metrics = await (await fetch(`${running.url}/metrics`)).text();
    expect(metrics).toContain('steembot_mailer_messages{status="sent"} 1');
    expect(metrics).toContain('steembot_signer_actions{account="alice",state="failed"} 2');
    expect(metrics).toContain('steembot_bot_checkpoint_block{bot="watcher"} 1000005');
    expect(metrics).toContain('steembot_clock_ticks_total{schedule="daily-digest",state="claimed"} 1');
    expect(metrics).toContain('steembot_webhooks_endpoint_failed_attempts{client="shop",endpoint="orders"} 0');
    const trace = (await (await fetch(`${running.url}/api/trace?tid=tid-unit-sign2`)).json()) as {
      records: Array<{ app: string; summary: string }>;
    };
    expect(trace.records).toEqual([
      expect.objectContaining({ app: 'tipper', summary: expect.stringContaining('key tipper:1000004000002:0') }),
      expect.objectContaining({ app: 'signer', summary: 'transfer by alice: failed (missing active authority)' }),
    ]);
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

  test("Enable goes through the real webhooks app's task: the endpoint is enabled, the action logged with what and TID", async () => {
    const before = (await running.status()).webhooks?.find((e) => e.id === 'orders');
    expect(before).toMatchObject({ client: 'shop', disabled: true, disabled_reason: 'the receiver answered 410 Gone' });
    // The page never shows an endpoint URL's query (it may hold a credential).
    expect(before?.url).toBe('https://example.com/hook');
    expect(before?.last).toEqual([expect.objectContaining({ status: 410, error: 'HTTP 410', duration_ms: 30 })]);
    const none = await post({ action: 'enable', client: 'shop', endpoint: 'none' });
    expect([none.status, ((await none.json()) as { error: { message: string } }).error.message]).toEqual([400, 'no endpoint shop/none']);
    const res = await post({ action: 'enable', client: 'shop', endpoint: 'orders' });
    expect(await res.json()).toEqual({ ok: true, reply: { client: 'shop', endpoint: 'orders', disabled: false } });
    const line = kept.lines.find((l) => l.msg === 'console action: enable webhook endpoint shop/orders');
    expect(line).toMatchObject({ tid: expect.any(String), action: { action: 'enable', client: 'shop', endpoint: 'orders' } });
    const store = await openWebhookStore(setup.config);
    try {
      expect(await store.endpoint('shop', 'orders')).toMatchObject({ disabled: 0, disabled_reason: null });
    } finally {
      await store.close();
    }
  });

  test("failed signer actions are listed with reason and retryable; Retry sends signer.action.retry, and the signer's refusal is shown as it said it", async () => {
    const view = (await running.status()).signer;
    expect(view?.failed).toEqual([
      expect.objectContaining({ id: failed.final, reason: 'missing active authority', retryable: false, tid: 'tid-unit-sign2' }),
      expect.objectContaining({ id: failed.retryable, reason: 'RC too low', retryable: true, key: 'tipper:1000004000001:0' }),
    ]);
    const ok = await post({ action: 'retry-action', id: failed.retryable });
    expect(await ok.json()).toEqual({ ok: true, reply: { action_id: failed.retryable, state: 'pending' } });
    const refused = await post({ action: 'retry-action', id: failed.final });
    expect(refused.status).toBe(409);
    expect(await refused.json()).toEqual({
      error: { code: 'ERR_SIGNER_CONFLICT', message: `action ${failed.final} failed for good; send it again` },
    });
    expect(retries).toEqual([failed.retryable, failed.final]);
    expect(
      kept.lines.some(
        (l) =>
          l.msg === `console action failed: retry signer action ${failed.final}: action ${failed.final} failed for good; send it again`,
      ),
    ).toBe(true);
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

  test("the TID trace shows a bot's email as the bot's handling of the op, then the email and its attempt, in time order", async () => {
    expect((await traceTid(readers, 'tid-unit-mail1')).map((r) => [r.app, r.kind, r.summary])).toEqual([
      ['watcher', 'bot', expect.stringMatching(/^handled the op at 1000004000001: sent email \S+ #0 \(key watcher:1000004000001:0\)$/)],
      ['mailer', 'email', expect.stringContaining('now sent, 1 attempts')],
      ['mailer-worker', 'email-attempt', expect.stringContaining(': sent')],
    ]);
    expect((await traceTid(readers, 'tid-unit-sign1')).map((r) => [r.app, r.kind])).toEqual([
      ['tipper', 'bot'],
      ['signer', 'action'],
    ]);
  });

  test('the TID trace finds the dead letter, and the clock tick', async () => {
    expect(await traceTid(readers, 'tid-unit-tick1')).toEqual([expect.objectContaining({ app: 'clock', kind: 'tick' })]);
    expect(await traceTid(readers, 'tid-unit-00001')).toEqual([
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
    expect(text).toContain('steembot_bot_dead_letters_total{bot="watcher"} 1');
    expect(text).toContain('steembot_bot_checkpoint_block{bot="watcher"} 1000005');
    // Queued -> sent in 2.5 s (bounds are "at most").
    expect(text).toContain('steembot_mailer_send_latency_seconds_bucket{le="1"} 0');
    expect(text).toContain('steembot_mailer_send_latency_seconds_bucket{le="2.5"} 1');
    expect(text).toContain('steembot_mailer_send_latency_seconds_bucket{le="+Inf"} 1');
    expect(text).toContain('steembot_mailer_send_latency_seconds_sum 2.5');
    expect(text).toContain('steembot_webhooks_delivery_duration_seconds_bucket{client="shop",endpoint="orders",le="0.025"} 0');
    expect(text).toContain('steembot_webhooks_delivery_duration_seconds_bucket{client="shop",endpoint="orders",le="0.05"} 1');
    expect(text).toContain('steembot_webhooks_delivery_duration_seconds_count{client="shop",endpoint="orders"} 1');
    expect(text).toContain('steembot_webhooks_deliveries_total{client="shop",endpoint="orders",outcome="failed"} 1');
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

test('clock figures: fires, overlap skips, and ticks no clock claimed (within a minute), counted from the ticks table', async () => {
  const { config, cleanup } = testSetup();
  try {
    const [every] = parseSchedules(
      JSON.stringify({ schedules: [{ id: 'every-minute', cron: '0 * * * * *', task: 'digest.report.send' }] }),
    );
    const store = new SqliteClockStore(clockStoreFile(config.DATA_DIR));
    const stores = openReaders(config);
    const at = (hhmm: string): number => Date.parse(`2026-11-30T${hhmm}:00Z`);
    for (const t of ['10:00', '10:01', '10:04']) await store.claim('every-minute', at(t), 'clock-1', `tid-${t}`);
    await store.claim('every-minute', at('10:05'), 'clock-1', 'tid-skip', 'skipped');
    // 10:02 and 10:03 missed; 10:06 and 10:07 too, by 10:08:30 (10:08 is within its grace minute).
    const now = at('10:08') + 30_000;
    expect(await readClockFigures(stores, [every!], now)).toEqual({ 'every-minute': { fires: 3, skipped: 1, missed: 4 } });
    expect(await readClockFigures(stores, [every!], now)).toEqual({ 'every-minute': { fires: 3, skipped: 1, missed: 4 } });
    // A late catch-up fire of 10:07 claims it: no longer missed.
    await store.claim('every-minute', at('10:07'), 'clock-2', 'tid-late');
    expect(await readClockFigures(stores, [every!], now)).toEqual({ 'every-minute': { fires: 4, skipped: 1, missed: 3 } });
    // An irregular pattern (minutes 0 and 20: gaps of 20 and 40 min) is walked tick by tick.
    const [twice] = parseSchedules(JSON.stringify({ schedules: [{ id: 'twice', cron: '0 0,20 * * * *', task: 'digest.report.send' }] }));
    for (const t of ['09:00', '09:20', '10:00', '11:00']) await store.claim('twice', at(t), 'clock-1', `tid-twice-${t}`);
    // 10:20 missed; 11:20 too by 11:30; a 40-minute gap (09:20 -> 10:00) misses nothing.
    expect(await readClockFigures(stores, [twice!], at('11:30'))).toEqual({ twice: { fires: 4, skipped: 0, missed: 2 } });
    await store.close();
  } finally {
    cleanup();
  }
});

const pgTest = databaseUrl ? test : test.skip;

pgTest(
  'on PostgreSQL: an app without tables shows empty, bots without bot tables are read from their SQLite files, then from PostgreSQL; npm run status reads the same',
  async () => {
    const schema = `sbt_console_${process.pid}_${randomBytes(3).toString('hex')}`;
    const { env, config, cleanup } = testSetup({ STORE: 'postgres', DATABASE_URL: databaseUrl as string, DATABASE_SCHEMA: schema });
    const pm2Home = join(env.DATA_DIR as string, '..', 'pm2');
    const noBroadcaster = { call: () => Promise.reject(new Error('broadcaster.status.get: no answer from broadcaster within 2000 ms')) };
    try {
      // Only the signer has run; the digest bot keeps its SQLite file (bots not moved to PostgreSQL).
      const signer = await openSignerStore(config);
      await signer.record(
        { key: 'k-1', kind: 'vote', account: 'alice', role: 'posting', op: ['vote', {}] as never, tid: 'tid-pg-0001' },
        1,
      );
      await signer.close();
      const file = new BotStore(join(config.DATA_DIR, 'bot-digest.sqlite'));
      file.saveCheckpoint(2_000_001_000_000);
      file.close();
      const before = await collectStatus({ config, bus: noBroadcaster, apps: [] });
      expect(before.signer?.actions).toEqual({ alice: { pending: 1 } });
      expect([before.mailer, before.webhooks, before.ticks]).toEqual([null, null, null]);
      expect(before.bots).toEqual([expect.objectContaining({ name: 'digest', checkpoint: 2_000_001_000_000 })]);
      // npm run status, with the same settings, prints the same object.
      const printed = JSON.parse(
        execFileSync(process.execPath, [join(projectRoot, 'scripts/status.js'), '--json'], {
          env: { ...process.env, ...env, PM2_HOME: pm2Home, LOG_LEVEL: 'silent' },
          encoding: 'utf8',
        }),
      ) as Record<string, unknown>;
      expect([printed.signer, printed.bots]).toEqual(JSON.parse(JSON.stringify([before.signer, before.bots])));
      // Once the bots' tables exist, the bots are read from PostgreSQL only.
      await fillBot(config, 'tipper', 2_000_002_000_000, {
        position: 7,
        name: 'comment',
        payload: {},
        tid: 'tid-pg-0002',
        error: 'E',
        attempts: 2,
      });
      const after = await collectStatus({ config, bus: noBroadcaster, apps: [] });
      expect(after.bots).toEqual([
        expect.objectContaining({ name: 'tipper', checkpoint: 2_000_002_000_000, dead_letters: 1, dead_letters_total: 1 }),
      ]);
    } finally {
      try {
        execFileSync(process.execPath, [join(projectRoot, 'node_modules/pm2/bin/pm2'), 'kill'], {
          env: { ...process.env, PM2_HOME: pm2Home },
          stdio: 'ignore',
        });
      } finally {
        await dropSchema(config);
        cleanup();
      }
    }
  },
);

test('the console on STORE=postgres without DATABASE_URL refuses to start (exit 78), and says why', async () => {
  const { env, cleanup } = testSetup();
  try {
    const proc = await spawnProcess(join(projectRoot, 'packages/console/dist/main.js'), {
      env: { ...env, CONSOLE_PORT: '0', STORE: 'postgres', DATABASE_URL: '' },
      ready: false,
      stderr: 'pipe',
    });
    let stderr = '';
    proc.child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
    expect(await proc.exited).toBe(78);
    expect(stderr).toMatch(/STORE=postgres needs DATABASE_URL/);
  } finally {
    cleanup();
  }
});
