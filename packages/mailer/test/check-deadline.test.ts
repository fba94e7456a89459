import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import { SmtpSink } from '@steem-bot/devnode';
import { projectRootFile, spawnProcess, testSetup, waitFor } from '@steem-bot/testkit';

import { checkStillWanted, MailStore, storeFile } from '../src';
import { call, client, mailerEnv, startApi, startMailWorker } from './helpers';

const DEADLINE_MS = 1_000;
const MARGIN_MS = 500;

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A check endpoint on loopback that misbehaves: `answer` gets each request's response. */
async function checkServer(answer: (res: ServerResponse) => void): Promise<{ url: string; open: () => number }> {
  let open = 0;
  const server: Server = createServer((req, res) => {
    open++;
    res.on('close', () => open--);
    req.resume();
    req.on('end', () => answer(res));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(
    () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(r);
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/check`, open: () => open };
}

test('25 truncating and 25 dripping check servers: a plain message of another client is sent within seconds, every check ends within its deadline, a stop drains at once', async () => {
  const sink = await SmtpSink.start({ dir: `/tmp/sink-deadline-${process.pid}` });
  cleanups.push(() => sink.stop());
  const m = mailerEnv({
    SMTP_URL: `smtp://127.0.0.1:${sink.port}`,
    MAILER_CHECK_ALLOW: '127.0.0.1',
    MAILER_CHECK_TIMEOUT_MS: String(DEADLINE_MS),
    MAILER_MAX_ATTEMPTS: '1',
    MAILER_RATE_LIMIT: '10000',
  });
  cleanups.push(() => m.cleanup());
  // Headers and part of the body, then the connection is cut.
  const truncating = await checkServer((res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
    res.write('{"send": ');
    setTimeout(() => res.socket?.destroy(), 20);
  });
  // A byte every 100 ms, forever: an idle timeout never fires.
  const dripping = await checkServer((res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    const timer = setInterval(() => res.write(' '), 100);
    res.on('close', () => clearInterval(timer));
  });
  const api = await startApi(m);
  cleanups.push(() => api.stop());
  const worker = await startMailWorker(m);
  let workerStopped = false;
  cleanups.push(() => (workerStopped ? undefined : worker.stop()));

  const post = async (token: string, extra: Record<string, unknown>): Promise<string> => {
    const res = await call(api.url, token, 'POST', '/v1/messages', { to: 'bob@example.com', subject: 'Hi', text: 'Hi', ...extra });
    expect(res.status).toBe(202);
    return res.body.id as string;
  };
  const checker = client(m, 'checker').token;
  const checked: string[] = [];
  for (let i = 0; i < 25; i++) checked.push(await post(checker, { check_url: truncating.url }));
  for (let i = 0; i < 25; i++) checked.push(await post(checker, { check_url: dripping.url }));
  const postedAt = Date.now();
  const plain = await post(client(m, 'plain').token, {});

  await waitFor(() => m.store.get(plain)?.status === 'sent', 5_000, 'the plain message sent');
  expect(Date.now() - postedAt).toBeLessThan(3_000);

  // 50 checks, 10 at a time, each at most the deadline: all decided within 5 deadlines plus margins.
  await waitFor(
    () => checked.every((id) => m.store.get(id)?.status === 'dead'),
    5 * (DEADLINE_MS + MARGIN_MS) + 3_000,
    'every check failed',
  );
  for (const [i, id] of checked.entries()) {
    const message = m.store.get(id);
    expect(message?.last_error).toBe(i < 25 ? 'check_url: answer cut short' : `check_url: no answer within ${DEADLINE_MS} ms`);
    const [attempt] = m.store.attempts(message?.seq as number);
    expect(attempt).toMatchObject({ outcome: 'temporary' });
    expect(attempt?.duration_ms).toBeLessThanOrEqual(DEADLINE_MS + MARGIN_MS);
  }
  expect(sink.messages).toHaveLength(1);

  // Stop while checks hang: they are abandoned at once, their leases given back, no attempt counted.
  const pending: string[] = [];
  for (let i = 0; i < 5; i++) pending.push(await post(checker, { check_url: dripping.url }));
  await waitFor(() => dripping.open() === 5, 5_000, 'five checks in flight');
  const stopAt = Date.now();
  workerStopped = true;
  await worker.stop();
  expect(Date.now() - stopAt).toBeLessThan(DEADLINE_MS);
  expect(pending.map((id) => [m.store.get(id)?.status, m.store.get(id)?.attempts])).toEqual(pending.map(() => ['scheduled', 0]));
});

test('SIGINT of the mailer-worker process while checks hang: it exits 0 at once, well within its drain bound, and gives the messages back', async () => {
  const dripping = await checkServer((res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    const timer = setInterval(() => res.write(' '), 100);
    res.on('close', () => clearInterval(timer));
  });
  // A deadline far beyond the drain bound (12 s): only abandoning the checks can stop in time.
  const t = testSetup({ MAILER_CHECK_ALLOW: '127.0.0.1', MAILER_CHECK_TIMEOUT_MS: '60000', LOG_LEVEL: 'warn' });
  cleanups.push(t.cleanup);
  const store = new MailStore(storeFile(t.config.DATA_DIR));
  cleanups.push(() => store.close());
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) {
    const request = { to: ['bob@example.com'], subject: `m${i}`, text: 'x', check_url: dripping.url };
    ids.push(store.enqueue({ client: 'app', key: undefined, request, tid: '0000000000000000', now: Date.now(), domain: 'x.org' }).id);
  }
  const worker = await spawnProcess(projectRootFile('packages/mailer/dist/main-worker.js'), { env: t.env });
  cleanups.push(() => worker.stop());
  await waitFor(() => dripping.open() === 5, 10_000, 'five checks in flight');
  const stopAt = Date.now();
  expect(await worker.stop('SIGINT')).toBe(0);
  expect(Date.now() - stopAt).toBeLessThan(3_000);
  expect(ids.map((id) => store.get(id)?.status)).toEqual(ids.map(() => 'scheduled'));
});

test('an answer over MAILER_CHECK_MAX_BYTES is a failed check, announced by Content-Length or not; a small one is read', async () => {
  const big = await checkServer((res) =>
    res.writeHead(200, { 'content-type': 'application/json' }).end(`{"send": true, "pad": "${'x'.repeat(5000)}"}`),
  );
  const chunked = await checkServer((res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    for (let i = 0; i < 10; i++) res.write(' '.repeat(500));
    res.end('{"send": true}');
  });
  const small = await checkServer((res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"send": false}'));
  const check = (url: string) =>
    checkStillWanted({ url, id: 'm1', metadata: null, secret: 'whsec_AAAA', timeoutMs: 2_000, maxBytes: 1024, allow: ['127.0.0.1'] });
  expect(await check(big.url)).toMatchObject({ reason: 'answer larger than 1024 bytes' });
  expect(await check(chunked.url)).toMatchObject({ reason: 'answer larger than 1024 bytes' });
  expect(await check(small.url)).toEqual({ send: false });
});
