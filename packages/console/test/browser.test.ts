import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { BotStore } from '@steem-bot/bot';
import { projectRoot } from '@steem-bot/config';
import { MailStore } from '@steem-bot/mailer';
import { SqliteSignerStore } from '@steem-bot/signer';
import { openDatabase } from '@steem-bot/store';
import { addClient, SqliteWebhookStore, storeFile } from '@steem-bot/webhooks';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { type Browser, chromium, type Page } from 'playwright-core';

import { METRIC_NAMES } from '../src/metrics';

// The real page in headless Chromium against real processes under a private PM2: a devnode, its
// SMTP sink, the broadcaster, the mailer, the watcher bot, the webhooks app and the console itself.
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && process.env.CI) throw new Error(`CI: no chromium at ${CHROMIUM} (.ci/run installs it with apt-get)`);
if (!haveChromium) process.stdout.write(`console/browser: no chromium at ${CHROMIUM}; browser tests skipped\n`);
const maybe = haveChromium ? describe : describe.skip;

const PM2 = join(projectRoot, 'node_modules', 'pm2', 'bin', 'pm2');
const TOKEN = 'test-console-token-0123456789';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { ecosystem } = require(join(projectRoot, 'scripts', 'system.js')) as {
  ecosystem(o: Record<string, unknown>): { apps: Array<{ name: string; env: Record<string, string> }> };
};

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 45_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await Promise.resolve()
      .then(probe)
      .catch(() => undefined);
    if (value !== undefined && value !== false) return value as T;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

maybe('console in a browser, with the apps under PM2', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let url: string;
  let dataDir: string;
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];
  const pm2 = (...args: string[]): string => execFileSync(process.execPath, [PM2, ...args], { env, encoding: 'utf8', cwd: projectRoot });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sbc-'));
    env = { ...process.env, PM2_HOME: join(dir, 'pm2') };
    const [devnodePort, smtpPort, mailerPort, consolePort] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    const schedules = join(dir, 'clock.schedules.json');
    writeFileSync(
      schedules,
      JSON.stringify({ schedules: [{ id: 'test-digest', cron: '0 0 * * * *', task: 'digest.report.send', payload: {} }] }),
    );
    const system = ecosystem({
      dir,
      devnodePort,
      smtpPort,
      mailerPort,
      webhooksPort: 0,
      schedules,
      withDevnode: true,
      devnodeArgs: ['--initial-blocks', '1000', '--interval-ms', '500', '--synthetic', '100000', '--ops-per-block', '2-5'],
      env: {
        LOG_FORMAT: 'json',
        CONSOLE_PORT: String(consolePort),
        CONSOLE_TOKEN: TOKEN,
        CONSOLE_REFRESH_MS: '500',
        PM2_HOME: join(dir, 'pm2'),
      },
    });
    const wanted = ['devnode', 'smtp-sink', 'broadcaster', 'mailer-api', 'mailer-worker', 'watcher', 'webhooks', 'console'];
    system.apps = system.apps.filter((a) => wanted.includes(a.name));
    expect(system.apps.map((a) => a.name).sort()).toEqual([...wanted].sort());
    dataDir = join(dir, 'data');
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    writeFileSync(join(dir, 'ecosystem.json'), JSON.stringify(system));
    pm2('start', join(dir, 'ecosystem.json'));
    url = `http://127.0.0.1:${consolePort}`;
    await until('the console', async () => (await fetch(`${url}/api/status`)).ok);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu'] });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`);
    });
    page.on('pageerror', (err) => problems.push(`page: ${err.message}`));
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    try {
      pm2('kill');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  test('the overview shows every app with its PM2 state, live', async () => {
    await page.goto(`${url}/#overview`);
    for (const name of ['broadcaster', 'watcher', 'mailer-api', 'console'])
      await page.locator(`tr[data-app="${name}"] .state`, { hasText: 'online' }).waitFor({ timeout: 30_000 });
    // The broadcaster answers its status call: blocks appear and move on (pushed, not polled).
    const block = page.locator('.card', { hasText: 'Current block' }).locator('.n');
    await until('a published block', async () => /\d/.test((await block.textContent()) ?? ''));
    const first = await block.textContent();
    await until('the next block pushed to the page', async () => (await block.textContent()) !== first);
    if (process.env.CONSOLE_SCREENSHOTS)
      await page.screenshot({ path: join(process.env.CONSOLE_SCREENSHOTS, 'console-overview.png'), fullPage: true });
  });

  test('a dead letter is replayed with the button and leaves the list', async () => {
    // A transfer to an unwatched account: the watcher's handler has nothing to send, so a replay succeeds.
    const store = new BotStore(join(dataDir, 'bot-watcher.sqlite'));
    const payload = { from: 'alice', to: 'nobody-here', amount: '1.000 STEEM', memo: '', block_num: 1_000_001 };
    const id = store.addDeadLetter({
      position: 1_000_001_000_003,
      name: 'transfer',
      payload,
      tid: 'tid-console-test-1',
      error: 'ERR_TEST: failed in the test',
      attempts: 3,
    });
    try {
      await page.goto(`${url}/#bots`);
      const row = page.locator(`tr[data-dead="watcher:${id}"]`);
      await row.waitFor({ timeout: 15_000 });
      await page.fill('#token', TOKEN);
      await row.getByRole('button', { name: 'Replay' }).click();
      await page.locator('#notice.ok').waitFor({ timeout: 15_000 });
      await row.waitFor({ state: 'detached', timeout: 15_000 });
      expect(store.deadLetter(id)?.state).toBe('replayed');
    } finally {
      store.close();
    }
  });

  test('an action without the token, with a wrong one or from another origin is refused; the letter stays', async () => {
    const store = new BotStore(join(dataDir, 'bot-watcher.sqlite'));
    const id = store.addDeadLetter({
      position: 1_000_002_000_001,
      name: 'transfer',
      payload: { from: 'bob', to: 'nobody-here', amount: '2.000 STEEM', memo: '', block_num: 1_000_002 },
      tid: 'tid-console-test-2',
      error: 'ERR_TEST: failed in the test',
      attempts: 3,
    });
    try {
      await page.goto(`${url}/#bots`);
      const row = page.locator(`tr[data-dead="watcher:${id}"]`);
      await row.waitFor({ timeout: 15_000 });
      if (process.env.CONSOLE_SCREENSHOTS) {
        await page.screenshot({ path: join(process.env.CONSOLE_SCREENSHOTS, 'console-bots.png'), fullPage: true });
        await page.setViewportSize({ width: 390, height: 844 });
        await page.screenshot({ path: join(process.env.CONSOLE_SCREENSHOTS, 'console-bots-390.png'), fullPage: true });
        await page.setViewportSize({ width: 1280, height: 900 });
      }
      await page.fill('#token', 'not-the-token-at-all');
      await row.getByRole('button', { name: 'Discard' }).click();
      await page.locator('#notice', { hasText: 'ERR_CONSOLE_UNAUTHORIZED' }).waitFor({ timeout: 10_000 });
      // Chromium logs every 4xx answer as a console error: this one is the refusal the test asked for.
      const refusal = problems.findIndex((p) => /status of 401/.test(p));
      expect(refusal).toBeGreaterThanOrEqual(0);
      problems.splice(refusal, 1);

      const post = (headers: Record<string, string>): Promise<Response> =>
        fetch(`${url}/api/actions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers },
          body: JSON.stringify({ action: 'discard', bot: 'watcher', id }),
        });
      expect((await post({})).status).toBe(401);
      expect((await post({ 'x-console-token': TOKEN, origin: 'https://evil.example' })).status).toBe(403);
      const bad = await fetch(`${url}/api/actions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-console-token': TOKEN },
        body: '{"action":"discard","bot":"watcher","id":"x"}',
      });
      expect(bad.status).toBe(400);
      expect(((await bad.json()) as { error: { message: string } }).error.message).toMatch(/id/);
      expect(store.deadLetter(id)?.state).toBe('dead');

      // With the token the Discard goes through the bot's task and the letter is gone.
      await page.fill('#token', TOKEN);
      await row.getByRole('button', { name: 'Discard' }).click();
      await row.waitFor({ state: 'detached', timeout: 15_000 });
      expect(store.deadLetter(id)).toBeUndefined();
    } finally {
      store.close();
    }
  });

  test('a dead email is retried with the button and reaches the SMTP sink; its TID trace shows it', async () => {
    // A message the mailer gave up on: queued, claimed, failed for good (as the worker records it).
    const store = new MailStore(join(dataDir, 'mailer.sqlite'));
    const subject = `console retry ${Date.now()}`;
    const tid = 'tid-console-mail-1';
    let id: string;
    try {
      const now = Date.now();
      const later = now + 3_600_000;
      // Due in an hour, so the running worker leaves it to the test.
      const request = { to: ['ops@example.com'], subject, text: 'retried from the console', send_at: new Date(later).toISOString() };
      const { message } = store.enqueue({
        client: 'bus',
        key: `console-test-${now}`,
        request: request as never,
        tid,
        now,
        domain: 'example.com',
      });
      id = (message as { id: string }).id;
      const [claimed] = store.claimDue('console-test', later, 60_000, 1);
      expect(claimed?.id).toBe(id);
      store.finish(claimed!.seq, 'console-test', 'permanent', {
        status: 'dead',
        error: '550 rejected in the test',
        now: now + 1,
        durationMs: 1,
        countsAsAttempt: true,
      });
      expect(store.get(id)?.status).toBe('dead');
    } finally {
      store.close();
    }
    await page.goto(`${url}/#mailer`);
    const row = page.locator(`tr[data-message="dead:${id}"]`);
    await row.waitFor({ timeout: 15_000 });
    await page.fill('#token', TOKEN);
    await row.getByRole('button', { name: 'Retry' }).click();
    await row.waitFor({ state: 'detached', timeout: 15_000 });
    const sink = join(dir, 'smtp-sink');
    await until('the retried email in the SMTP sink', () =>
      existsSync(sink)
        ? readdirSync(sink).some((f) => f.endsWith('.eml') && readFileSync(join(sink, f), 'utf8').includes(subject))
        : undefined,
    );

    await page.goto(`${url}/#trace`);
    await page.fill('#tid', tid);
    await page.keyboard.press('Enter');
    await page.locator('tr[data-kind="email-attempt"]', { hasText: 'sent' }).waitFor({ timeout: 10_000 });
    const kinds = await page.locator('#trace-out tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-kind')));
    expect(kinds[0]).toBe('email');
    expect(kinds).toEqual(expect.arrayContaining(['email', 'email-attempt', 'event']));
  });

  test('the TID trace of one watcher email shows op -> bot -> email, in time order', async () => {
    // The watcher emails about alice and bob, whom the devnode's synthetic blocks (from 1,001,000,
    // right after the 1,000 real ones the devnode starts with) pay, reply to and mention.
    const mail = join(dataDir, 'mailer.sqlite');
    const found = await until(
      'a watcher email sent',
      () => {
        if (!existsSync(mail)) return undefined;
        const db = openDatabase(mail, { readonly: true, busyTimeoutMs: 2_000 });
        try {
          return db
            .prepare("SELECT tid, idem_key FROM messages WHERE idem_key LIKE 'watcher:%' AND status = 'sent' ORDER BY seq LIMIT 1")
            .get() as { tid: string; idem_key: string } | undefined;
        } finally {
          db.close();
        }
      },
      60_000,
    );
    const position = found.idem_key.split(':')[1] as string;
    await page.goto(`${url}/#trace`);
    await page.fill('#tid', found.tid);
    await page.keyboard.press('Enter');
    await page.locator('tr[data-kind="email-attempt"]', { hasText: 'sent' }).waitFor({ timeout: 10_000 });
    const rows = await page
      .locator('#trace-out tbody tr')
      .evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')));
    const index = (app: string, kind: string, text: string): number =>
      rows.findIndex(([, a, k, what]) => a === app && k === kind && (what ?? '').includes(text));
    const op = index('broadcaster', 'event', ` at ${position}`);
    const bot = index('watcher', 'bot', `handled the op at ${position}`);
    const email = index('mailer', 'email', found.idem_key);
    expect([op, bot, email].every((i) => i >= 0)).toBe(true);
    expect(op).toBeLessThan(bot);
    expect(bot).toBeLessThan(email);
    const times = rows.map(([at]) => at as string);
    expect(times).toEqual([...times].sort());
  }, 90_000);

  test('a disabled webhook endpoint is enabled with the button through the webhooks app', async () => {
    const store = new SqliteWebhookStore(storeFile(dataDir));
    try {
      await addClient(store, 'shop');
      const spec = {
        url: 'https://example.com/hook',
        events: ['transfer'],
        filter: { to: 'nobody-here' },
        description: '',
        disabled: false,
      };
      const { row } = await store.upsertEndpoint('shop', 'orders', spec, 'whsec_test', Date.now());
      const at = Date.now();
      const tried = { type: 'transfer', position: 1_000_007_000_002, webhook_id: 'msg_broadcaster_1000007000002', response: null };
      await store.logDelivery(row.seq, { ...tried, at: at - 60_000, status: null, error: 'connect ECONNREFUSED', duration_ms: 3 });
      await store.logDelivery(row.seq, { ...tried, at, status: 410, error: 'HTTP 410', duration_ms: 41 });
      await store.disable(row.seq, 'the receiver answered 410 Gone', at);
      await page.goto(`${url}/#webhooks`);
      const tr = page.locator('tr[data-endpoint="shop/orders"]');
      await tr.locator('.state', { hasText: 'disabled' }).waitFor({ timeout: 15_000 });
      if (process.env.CONSOLE_SCREENSHOTS)
        await page.screenshot({ path: join(process.env.CONSOLE_SCREENSHOTS, 'console-webhooks.png'), fullPage: true });
      await page.fill('#token', TOKEN);
      await tr.getByRole('button', { name: 'Enable' }).click();
      await page.locator('#notice.ok', { hasText: 'enable shop/orders: done' }).waitFor({ timeout: 15_000 });
      await tr.locator('.state', { hasText: 'enabled' }).waitFor({ timeout: 15_000 });
      expect(await tr.getByRole('button', { name: 'Enable' }).count()).toBe(0);
      expect(await store.endpoint('shop', 'orders')).toMatchObject({ disabled: 0, disabled_reason: null });
    } finally {
      await store.close();
    }
  });

  test('failed chain actions are listed, Retry only where retryable; with no signer running, the page says the task got no answer', async () => {
    const store = new SqliteSignerStore(join(dataDir, 'signer.sqlite'));
    const op = (memo: string) => ['transfer', { from: 'alice', to: 'bob', amount: '1.000 STEEM', memo }] as never;
    const record = (key: string, memo: string) =>
      store.record({ key, kind: 'transfer', account: 'alice', role: 'active', op: op(memo), tid: `tid-${memo}` }, Date.now());
    const a = await record('tipper:1000004000001:0', 'browser-a');
    const b = await record('tipper:1000004000002:0', 'browser-b');
    await store.finish(a.id, { state: 'failed', reason: 'RC too low', retryable: true }, Date.now());
    await store.finish(b.id, { state: 'failed', reason: 'missing active authority', retryable: false }, Date.now());
    await store.close();
    await page.goto(`${url}/#signer`);
    const retryable = page.locator(`tr[data-failed="${a.id}"]`);
    const final = page.locator(`tr[data-failed="${b.id}"]`);
    await retryable.waitFor({ timeout: 15_000 });
    expect(await retryable.textContent()).toContain('RC too low');
    expect(await final.textContent()).toContain('not retryable');
    expect(await final.getByRole('button').count()).toBe(0);
    await page.fill('#token', TOKEN);
    await retryable.getByRole('button', { name: 'Retry' }).click();
    await page
      .locator('#notice:not(.ok)', { hasText: /retry-action refused: .*signer.* \(ERR_BUS_[A-Z_]+\)/ })
      .waitFor({ timeout: 15_000 });
    // Chromium logs the refusal's 5xx as a console error: this one is the answer the test asked for.
    const refusal = problems.findIndex((p) => /status of 50\d/.test(p));
    expect(refusal).toBeGreaterThanOrEqual(0);
    problems.splice(refusal, 1);
  }, 30_000);

  test('the page fits 390 px without sideways scrolling and is keyboard reachable', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${url}/#overview`);
    await page.reload();
    await page.locator('tr[data-app="console"]').waitFor();
    expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
    // The first Tab reaches the skip link, then the navigation.
    await page.keyboard.press('Tab');
    expect(await page.evaluate<string>('document.activeElement.textContent')).toBe('Skip to content');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Enter');
    expect(await page.evaluate<string>('location.hash')).toBe('#streams');
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  test('/metrics parses as Prometheus text and has the documented series', async () => {
    const res = await fetch(`${url}/metrics`);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0.0.4/);
    const families = parsePrometheusTextFormat(await res.text()) as Array<{
      name: string;
      metrics: Array<{ labels?: Record<string, string>; value: string }>;
    }>;
    expect(families.map((f) => f.name).sort()).toEqual([...METRIC_NAMES].sort());
    const up = families.find((f) => f.name === 'steembot_app_up')?.metrics ?? [];
    expect(up.find((m) => m.labels?.app === 'broadcaster')?.value).toBe('1');
    expect(Number(families.find((f) => f.name === 'steembot_broadcaster_head_block')?.metrics[0]?.value)).toBeGreaterThan(1_000_000);
  });

  test('the page logged no console errors', () => {
    expect(problems).toEqual([]);
  });
});
