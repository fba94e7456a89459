import { createHmac } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

import { SmtpSink } from '@steem-bot/devnode';
import { waitFor } from '@steem-bot/testkit';

import { call, client, mailerEnv, startApi, startMailWorker } from './helpers';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function system(vars: Record<string, string> = {}, now?: () => number) {
  const dir = `/tmp/sink-${process.pid}-${Date.now()}`;
  const sink = await SmtpSink.start({ dir, slowMs: 300 });
  cleanups.push(() => sink.stop());
  const m = mailerEnv({ SMTP_URL: `smtp://127.0.0.1:${sink.port}`, MAILER_CHECK_ALLOW: '127.0.0.1', ...vars });
  cleanups.push(() => m.cleanup());
  const events: Array<{ name: string; id: string; tid: string }> = [];
  const observer = m.busFor('observer');
  const record = (name: string) => (p: { id: string }, ctx: { tid: string }) => void events.push({ name, id: p.id, tid: ctx.tid });
  observer.subscribe('mailer-worker', {
    'email.sent': record('email.sent'),
    'email.failed': record('email.failed'),
    'email.skipped': record('email.skipped'),
  });
  observer.subscribe('mailer', { 'email.queued': record('email.queued') });
  cleanups.push(() => observer.close());
  const api = await startApi(m, now);
  cleanups.push(() => api.stop());
  const worker = await startMailWorker(m, now);
  cleanups.push(() => worker.stop());
  const { token, secret } = client(m, 'app');
  const post = async (body: Record<string, unknown>): Promise<string> => {
    const res = await call(api.url, token, 'POST', '/v1/messages', { to: 'bob@example.com', subject: 'Hello', text: 'Hi', ...body });
    expect(res.status).toBe(202);
    return res.body.id as string;
  };
  const status = (id: string): string | undefined => m.store.get(id)?.status;
  return { m, sink, api, worker, post, status, events, secret };
}

describe('mailer delivery to a real SMTP server', () => {
  test('content, headers and the stable Message-ID arrive intact; sent is recorded and announced with the TID', async () => {
    const s = await system();
    const id = await s.post({
      cc: ['carol@example.com'],
      html: '<p>Hi</p>',
      headers: { 'X-Order': '7', 'Reply-To': 'shop@example.com' },
      subject: 'Grüße ✓',
    });
    await waitFor(() => s.status(id) === 'sent', 10_000, 'sent');
    const got = s.sink.messages[0];
    const stored = s.m.store.get(id);
    expect(got).toMatchObject({ subject: 'Grüße ✓', from: s.m.config.MAILER_FROM, to: ['bob@example.com'], messageId: stored?.message_id });
    expect(got?.text?.trim()).toBe('Hi');
    expect(got?.headers['x-order']).toBe('7');
    expect(got?.headers['reply-to']).toBe('shop@example.com');
    expect(got?.headers['x-steem-bot-message']).toBe(id);
    await waitFor(() => s.events.some((e) => e.name === 'email.sent'), 5_000, 'email.sent');
    const queued = s.events.find((e) => e.name === 'email.queued');
    expect(s.events.find((e) => e.name === 'email.sent')).toEqual({ name: 'email.sent', id, tid: queued?.tid });
    expect(s.m.store.attempts(stored?.seq as number)).toEqual([expect.objectContaining({ outcome: 'sent', error: null })]);
  });

  test('temporary failures are retried with backoff, then sent; permanent ones are dead at once; the retry hook requeues', async () => {
    const s = await system({ MAILER_MAX_ATTEMPTS: '10' });
    s.sink.fault = 'tempfail';
    const id = await s.post({});
    await waitFor(() => (s.m.store.get(id)?.attempts ?? 0) >= 2, 10_000, 'two failed attempts');
    expect(s.status(id)).toMatch(/retrying|sending/);
    s.sink.fault = 'none';
    await waitFor(() => s.status(id) === 'sent', 10_000, 'sent after the fault');
    const history = s.m.store.attempts(s.m.store.get(id)?.seq as number);
    expect(history.filter((a) => a.outcome === 'temporary').length).toBeGreaterThanOrEqual(2);
    expect(history.at(-1)?.outcome).toBe('sent');
    expect(history[0]?.error).toMatch(/^421 /);

    s.sink.fault = 'reject';
    const dead = await s.post({ subject: 'Rejected' });
    await waitFor(() => s.status(dead) === 'dead', 10_000, 'dead');
    expect(s.m.store.get(dead)).toMatchObject({ attempts: 1, last_error: expect.stringMatching(/^550 /) });
    await waitFor(() => s.events.some((e) => e.name === 'email.failed' && e.id === dead), 5_000, 'email.failed');
    s.sink.fault = 'none';
    expect(s.m.store.retry(dead, Date.now())).toBe(true);
    s.worker.worker.wake();
    await waitFor(() => s.status(dead) === 'sent', 10_000, 'sent after retry');
  });

  test('gives up after MAILER_MAX_ATTEMPTS temporary failures', async () => {
    const s = await system({ MAILER_MAX_ATTEMPTS: '3' });
    s.sink.fault = 'tempfail';
    const id = await s.post({});
    await waitFor(() => s.status(id) === 'dead', 10_000, 'dead');
    expect(s.m.store.get(id)?.attempts).toBe(3);
  });

  test('an unreachable SMTP server opens the circuit breaker: deliveries pause instead of hammering it', async () => {
    const m = mailerEnv({
      SMTP_URL: 'smtp://127.0.0.1:9',
      MAILER_MAX_ATTEMPTS: '50',
      MAILER_RETRY_BASE_MS: '20',
      MAILER_RETRY_MAX_MS: '40',
    });
    cleanups.push(() => m.cleanup());
    const api = await startApi(m);
    cleanups.push(() => api.stop());
    const worker = await startMailWorker(m);
    cleanups.push(() => worker.stop());
    const { token } = client(m, 'app');
    for (let i = 0; i < 3; i++) await call(api.url, token, 'POST', '/v1/messages', { to: 'x@example.com', subject: `m${i}`, text: 'Hi' });
    await waitFor(
      () => worker.lines.some((l) => /unreachable 3 times in a row: pausing deliveries for 5 s/.test(String(l.msg))),
      10_000,
      'the breaker',
    );
    const attempts = (): number => m.store.db.prepare('SELECT COUNT(*) FROM attempts').pluck().get() as number;
    // A send already in flight when the breaker opens still ends (and counts); none starts after.
    await waitFor(() => (m.store.counts().sending ?? 0) === 0, 5_000, 'the sends in flight to end');
    const atOpen = attempts();
    await new Promise((r) => setTimeout(r, 1_500));
    expect(attempts()).toBe(atOpen); // paused: no attempt while the breaker is open
    expect(m.store.get((m.store.list('app', { limit: 1 })[0] as { id: string }).id)?.last_error).toMatch(/^mail server unreachable \(/);
    expect(worker.lines.some((l) => /ECONNREFUSED/.test(String(l.msg)))).toBe(true); // the detail, for the operator
  });

  test('a message scheduled ahead is sent at its time, not before (injectable clock)', async () => {
    let now = Date.parse('2026-11-23T12:00:00Z');
    const s = await system({}, () => now);
    const id = await s.post({ send_at: '2027-06-01T08:00:00Z' });
    await new Promise((r) => setTimeout(r, 300));
    expect(s.status(id)).toBe('scheduled');
    now = Date.parse('2027-06-01T07:59:59Z');
    s.worker.worker.wake();
    await new Promise((r) => setTimeout(r, 300));
    expect(s.status(id)).toBe('scheduled');
    now = Date.parse('2027-06-01T08:00:00Z');
    s.worker.worker.wake();
    await waitFor(() => s.status(id) === 'sent', 5_000, 'sent at its time');
  });

  describe('conditional send', () => {
    let server: Server;
    let answer: (headers: IncomingHttpHeaders, body: string) => { status: number; body: string; delayMs?: number };
    const seen: Array<{ headers: IncomingHttpHeaders; body: string }> = [];
    beforeEach(async () => {
      seen.length = 0;
      server = createServer((req, res) => {
        let body = '';
        req.on('data', (c: Buffer) => (body += c.toString()));
        req.on('end', () => {
          seen.push({ headers: req.headers, body });
          const a = answer(req.headers, body);
          setTimeout(() => res.writeHead(a.status, { 'content-type': 'application/json' }).end(a.body), a.delayMs ?? 0);
        });
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    });
    afterEach(() => new Promise((r) => server.close(r)));
    const url = (): string => `http://127.0.0.1:${(server.address() as AddressInfo).port}/still-needed`;

    test('yes -> sent, with a valid Standard Webhooks signature; no -> skipped', async () => {
      const s = await system();
      answer = (_h, body) => ({
        status: 200,
        body: JSON.stringify({ send: (JSON.parse(body) as { metadata: { ok: boolean } }).metadata.ok }),
      });
      const yes = await s.post({ check_url: url(), metadata: { ok: true } });
      const no = await s.post({ check_url: url(), metadata: { ok: false } });
      await waitFor(() => s.status(yes) === 'sent' && s.status(no) === 'skipped', 10_000, 'both decided');
      expect(s.sink.messages).toHaveLength(1);
      const request = seen.find((r) => r.body.includes(yes));
      const h = request?.headers as IncomingHttpHeaders;
      const key = Buffer.from(s.secret.replace(/^whsec_/, ''), 'base64');
      const expected = createHmac('sha256', key)
        .update(`${String(h['webhook-id'])}.${String(h['webhook-timestamp'])}.${request?.body}`)
        .digest('base64');
      expect(h['webhook-signature']).toBe(`v1,${expected}`);
      expect(JSON.parse(request?.body as string)).toEqual({ id: yes, metadata: { ok: true } });
      await waitFor(() => s.events.some((e) => e.name === 'email.skipped' && e.id === no), 5_000, 'email.skipped');
    });

    test('a timeout or a bad answer follows the retry policy', async () => {
      const s = await system({ MAILER_CHECK_TIMEOUT_MS: '200', MAILER_MAX_ATTEMPTS: '2' });
      answer = () => ({ status: 200, body: '{"send":true}', delayMs: 1_000 });
      const slow = await s.post({ check_url: url() });
      await waitFor(() => s.status(slow) === 'dead', 10_000, 'dead after timeouts');
      expect(s.m.store.get(slow)?.last_error).toBe('check_url: no answer within 200 ms');
      answer = () => ({ status: 500, body: 'oops' });
      const broken = await s.post({ check_url: url() });
      await waitFor(() => s.status(broken) === 'dead', 10_000, 'dead after 500s');
      expect(s.m.store.get(broken)?.last_error).toMatch(/HTTP 500/);
      expect(s.sink.messages).toHaveLength(0);
    });

    test('a check_url by host name that MAILER_CHECK_ALLOW lists is called', async () => {
      const s = await system({ MAILER_CHECK_ALLOW: 'localhost' });
      answer = () => ({ status: 200, body: '{"send":true}' });
      const id = await s.post({ check_url: url().replace('127.0.0.1', 'localhost') });
      await waitFor(() => s.status(id) === 'sent', 10_000, 'sent');
      expect(seen).toHaveLength(1);
    });

    test('SSRF guard: a loopback check_url not allow-listed is refused at send time (host name resolved)', async () => {
      const s = await system({ MAILER_CHECK_ALLOW: '' });
      answer = () => ({ status: 200, body: '{"send":true}' });
      const id = await s.post({ check_url: url().replace('127.0.0.1', 'localhost') });
      await waitFor(() => s.status(id) === 'dead', 10_000, 'refused');
      // The client sees a short reason; the address is only in the operator's log.
      expect(s.m.store.get(id)?.last_error).toBe('check_url: address not allowed');
      expect(s.worker.lines.some((l) => /resolves to (127\.0\.0\.1|::1), a special-purpose address/.test(String(l.msg)))).toBe(true);
      expect(seen).toHaveLength(0);
    });
  });

  test('without SMTP_URL, messages are written as .eml files to the outbox, and the start-up says so', async () => {
    const m = mailerEnv();
    cleanups.push(() => m.cleanup());
    const api = await startApi(m);
    cleanups.push(() => api.stop());
    const worker = await startMailWorker(m);
    cleanups.push(() => worker.stop());
    expect(worker.lines.some((l) => String(l.msg).startsWith('NO SMTP_URL'))).toBe(true);
    const { token } = client(m, 'app');
    const res = await call(api.url, token, 'POST', '/v1/messages', { to: 'x@example.com', subject: 'Outbox', text: 'Hi' });
    await waitFor(() => m.store.get(res.body.id as string)?.status === 'sent', 5_000, 'written');
    const files = readdirSync(m.config.MAILER_OUTBOX);
    expect(files).toEqual([`${String(res.body.id)}.eml`]);
    expect(readFileSync(join(m.config.MAILER_OUTBOX, files[0] as string), 'utf8')).toMatch(/Subject: Outbox/);
  });

  test('bus intake: acknowledged once on disk, deduplicated by idempotency key across restarts', async () => {
    const s = await system();
    const app = s.m.busFor('watcher');
    cleanups.push(() => app.close());
    const request = { to: 'ops@example.com', subject: 'From a bot', text: 'op 42' };
    const first = await app.send('mailer.email.send', request as never, { idempotencyKey: 'watcher:42:0' });
    expect(s.m.store.get(first.id)).toMatchObject({ client: 'bus', status: expect.any(String) });
    // A second intake process (as after a restart) has no in-memory dedupe: the store's key does it.
    await s.api.stop();
    const api2 = await startApi(s.m);
    cleanups.push(() => api2.stop());
    await expect(
      app.send('mailer.email.send', { ...request, subject: 'Other' } as never, { idempotencyKey: 'watcher:42:0', attempts: 1 }),
    ).rejects.toMatchObject({ code: 'ERR_MAILER_CONFLICT' });
    const again = await app.send('mailer.email.send', request as never, { idempotencyKey: 'watcher:42:0' });
    expect(again.id).toBe(first.id);
    await expect(app.send('mailer.email.send', { to: 'nope' } as never, { attempts: 1 })).rejects.toMatchObject({
      code: 'ERR_BUS_INVALID_PAYLOAD',
    });
    await waitFor(() => s.sink.messages.length === 1, 10_000, 'one email');
  });
});
