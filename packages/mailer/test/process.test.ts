import { SmtpSink } from '@steem-bot/devnode';
import { type Proc, projectRootFile, spawnProcess, testSetup, waitFor } from '@steem-bot/testkit';

import { MailStore, newClient, storeFile } from '../src';

const API = projectRootFile('packages/mailer/dist/main-api.js');
const WORKER = projectRootFile('packages/mailer/dist/main-worker.js');

const cleanups: Array<() => unknown> = [];
afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

test('mailer processes: SIGKILL of the worker mid-send loses nothing (repeats at most the in-flight ones); SIGINT drains and repeats none', async () => {
  const sink = await SmtpSink.start({ dir: `/tmp/sink-proc-${process.pid}`, fault: 'slow', slowMs: 150 });
  cleanups.push(() => sink.stop());
  const t = testSetup({ SMTP_URL: `smtp://127.0.0.1:${sink.port}`, MAILER_PORT: '0', MAILER_LEASE_MS: '1500', LOG_LEVEL: 'warn' });
  cleanups.push(t.cleanup);
  const store = new MailStore(storeFile(t.config.DATA_DIR));
  cleanups.push(() => store.close());
  const { row, token } = newClient('test', undefined);
  store.addClient(row);
  const start = async (file: string): Promise<Proc> => {
    const proc = await spawnProcess(file, { env: { ...t.env, ...(file === API ? { LOG_LEVEL: 'info' } : {}) } });
    cleanups.push(() => proc.stop());
    return proc;
  };
  const api = await start(API);
  const url = String(
    api.lines
      .map((l) => String(l.msg))
      .find((m) => m.startsWith('REST API on'))
      ?.split(' ')[3],
  );
  const post = async (n: number): Promise<void> => {
    const res = await fetch(`${url}/v1/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'idempotency-key': `m${n}` },
      body: JSON.stringify({ to: 'bob@example.com', subject: `message ${n}`, text: 'hi' }),
    });
    expect(res.status).toBe(202);
  };
  const received = (): string[] => sink.messages.map((m) => m.headers['x-steem-bot-message'] as string);
  const repeats = (ids: string[]): number => ids.length - new Set(ids).size;

  let worker = await start(WORKER);
  for (let n = 0; n < 40; n++) await post(n);
  await waitFor(() => received().length >= 10, 30_000, '10 sent');
  await worker.stop('SIGKILL');
  worker = await start(WORKER);
  await waitFor(() => new Set(received()).size === 40, 60_000, 'all 40 sent');
  const killRepeats = repeats(received());
  expect(killRepeats).toBeLessThanOrEqual(5); // the worker's batch in flight at the kill

  const before = received().length;
  for (let n = 40; n < 60; n++) await post(n);
  await waitFor(() => received().length >= before + 5, 30_000, '5 more sent');
  expect(await worker.stop('SIGINT')).toBe(0);
  expect(store.counts().sending ?? 0).toBe(0); // leases given back
  await start(WORKER);
  await waitFor(() => new Set(received()).size === 60, 60_000, 'all 60 sent');
  expect(repeats(received())).toBe(killRepeats); // the clean stop repeated none
  // The sink has the last message a moment before the worker records it as sent.
  await waitFor(() => store.counts().sent === 60, 5_000, 'the last send recorded');
  expect(store.counts()).toEqual({ sent: 60 });
});
