import { call, client, type MailerEnv, mailerEnv, startApi } from './helpers';

const valid = { to: 'bob@example.com', subject: 'Hello', text: 'Hi Bob' };
const stored = (m: MailerEnv): number => m.store.db.prepare('SELECT COUNT(*) FROM messages').pluck().get() as number;

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function api(vars: Record<string, string>) {
  const m = mailerEnv(vars);
  cleanups.push(() => m.cleanup());
  const running = await startApi(m);
  cleanups.push(() => running.stop());
  return { m, url: running.url };
}

describe('per-client limits of the mailer intake', () => {
  test('the rate limit runs before the body is read: over it, a broken or oversized body gets 429, not 400 or 413', async () => {
    const { m, url } = await api({ MAILER_RATE_LIMIT: '3', MAILER_BODY_LIMIT_BYTES: '65536' });
    const token = client(m, 'noisy').token;
    for (let i = 0; i < 3; i++) expect((await call(url, token, 'GET', '/v1/messages')).status).toBe(200);
    const broken = await call(url, token, 'POST', '/v1/messages', '{"to":');
    const huge = await call(url, token, 'POST', '/v1/messages', { ...valid, text: 'x'.repeat(70_000) });
    expect([broken.status, broken.body.error]).toEqual([429, { code: 'ERR_MAILER_RATE_LIMITED', message: expect.any(String) }]);
    expect([huge.status, (huge.body.error as { code: string }).code]).toEqual([429, 'ERR_MAILER_RATE_LIMITED']);
    expect(stored(m)).toBe(0);
  });

  test('pending messages per client: 429 ERR_MAILER_TOO_MANY_PENDING and nothing stored; other clients and replays of a stored key still work', async () => {
    const { m, url } = await api({ MAILER_MAX_PENDING: '3', MAILER_RATE_LIMIT: '1000' });
    const token = client(m, 'flood').token;
    const other = client(m, 'quiet').token;
    const later = { ...valid, send_at: '2030-01-01T00:00:00Z' };
    const first = await call(url, token, 'POST', '/v1/messages', later, { 'idempotency-key': 'a' });
    for (let i = 0; i < 2; i++) expect((await call(url, token, 'POST', '/v1/messages', later)).status).toBe(202);
    const over = await call(url, token, 'POST', '/v1/messages', later);
    expect([over.status, over.body]).toEqual([
      429,
      {
        error: {
          code: 'ERR_MAILER_TOO_MANY_PENDING',
          message: '3 messages of this client are not yet sent (at most 3); retry once some are',
        },
      },
    ]);
    expect(stored(m)).toBe(3);
    const replay = await call(url, token, 'POST', '/v1/messages', later, { 'idempotency-key': 'a' });
    expect([replay.status, replay.body.id]).toEqual([200, first.body.id]);
    expect((await call(url, other, 'POST', '/v1/messages', later)).status).toBe(202);
    // A cancelled message is no longer pending: room for one more.
    expect((await call(url, token, 'DELETE', `/v1/messages/${String(first.body.id)}`)).status).toBe(200);
    expect((await call(url, token, 'POST', '/v1/messages', later)).status).toBe(202);
    expect((await call(url, token, 'POST', '/v1/messages', later)).status).toBe(429);
  });

  test('bytes and recipients per message: 413 ERR_MAILER_TOO_LARGE with a clear body, nothing stored, over REST and over the bus', async () => {
    const { m, url } = await api({ MAILER_MAX_MESSAGE_BYTES: '2000', MAILER_MAX_RECIPIENTS: '5', MAILER_RATE_LIMIT: '1000' });
    const token = client(m, 'shop').token;
    const addresses = (n: number, p: string): string[] => Array.from({ length: n }, (_, i) => `${p}${i}@example.com`);
    const many = await call(url, token, 'POST', '/v1/messages', {
      ...valid,
      to: addresses(2, 't'),
      cc: addresses(2, 'c'),
      bcc: addresses(2, 'b'),
    });
    expect([many.status, many.body]).toEqual([
      413,
      {
        error: {
          code: 'ERR_MAILER_TOO_LARGE',
          message: 'at most 5 recipients (to, cc and bcc together)',
          fields: [{ path: 'to', message: '6 recipients; at most 5' }],
        },
      },
    ]);
    const big = await call(url, token, 'POST', '/v1/messages', { ...valid, html: 'é'.repeat(1000) });
    expect([big.status, big.body.error]).toEqual([
      413,
      { code: 'ERR_MAILER_TOO_LARGE', message: expect.stringMatching(/^the message is \d+ bytes; at most 2000$/) },
    ]);
    expect((await call(url, token, 'POST', '/v1/messages', { ...valid, to: addresses(5, 't') })).status).toBe(202);
    const bot = m.busFor('watcher');
    cleanups.push(() => bot.close());
    await expect(
      bot.send('mailer.email.send', { ...valid, to: addresses(6, 'x') } as never, { idempotencyKey: 'w:1', attempts: 1 }),
    ).rejects.toMatchObject({ code: 'ERR_MAILER_TOO_LARGE' });
    expect(stored(m)).toBe(1);
  });
});
