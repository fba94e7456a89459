import { spawnSync } from 'node:child_process';

import { projectRootFile } from '@steem-bot/testkit';

import { call, client, type MailerEnv, mailerEnv, startApi } from './helpers';

const valid = { to: 'bob@example.com', subject: 'Hello', text: 'Hi Bob' };

describe('mailer REST API', () => {
  let m: MailerEnv;
  let api: Awaited<ReturnType<typeof startApi>>;
  let token: string;
  beforeEach(async () => {
    m = mailerEnv({ MAILER_RATE_LIMIT: '1000', MAILER_BODY_LIMIT_BYTES: '65536' });
    token = client(m, 'shop').token;
    api = await startApi(m);
  });
  afterEach(async () => {
    await api.stop();
    m.cleanup();
  });

  test('queues a message (202), shows it, lists it with a cursor, and cancels it once', async () => {
    const created = await call(api.url, token, 'POST', '/v1/messages', {
      ...valid,
      send_at: '2030-01-01T00:00:00Z',
      metadata: { order: 7 },
    });
    expect(created.status).toBe(202);
    expect(created.body).toEqual({ id: expect.any(String), status: 'scheduled' });
    const id = created.body.id as string;
    const shown = await call(api.url, token, 'GET', `/v1/messages/${id}`);
    expect(shown.body).toMatchObject({
      id,
      status: 'scheduled',
      to: ['bob@example.com'],
      send_at: '2030-01-01T00:00:00.000Z',
      metadata: { order: 7 },
      history: [],
    });
    for (let i = 0; i < 3; i++) await call(api.url, token, 'POST', '/v1/messages', valid);
    const page1 = await call(api.url, token, 'GET', '/v1/messages?limit=3');
    expect((page1.body.messages as unknown[]).length).toBe(3);
    const page2 = await call(api.url, token, 'GET', `/v1/messages?limit=3&cursor=${String(page1.body.next_cursor)}`);
    expect((page2.body.messages as unknown[]).length).toBe(1);
    expect(page2.body.next_cursor).toBeNull();
    expect((await call(api.url, token, 'DELETE', `/v1/messages/${id}`)).body).toEqual({ id, status: 'cancelled' });
    expect((await call(api.url, token, 'DELETE', `/v1/messages/${id}`)).status).toBe(409);
    expect((await call(api.url, token, 'GET', '/v1/messages?status=cancelled')).body.messages).toHaveLength(1);
  });

  test('Idempotency-Key: same body -> the same message, another body -> 409', async () => {
    const headers = { 'idempotency-key': 'order-7-shipped' };
    const first = await call(api.url, token, 'POST', '/v1/messages', valid, headers);
    const again = await call(api.url, token, 'POST', '/v1/messages', valid, headers);
    expect(first.status).toBe(202);
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(first.body.id);
    const other = await call(api.url, token, 'POST', '/v1/messages', { ...valid, subject: 'Other' }, headers);
    expect(other.status).toBe(409);
    expect(other.body).toEqual({ error: { code: 'ERR_MAILER_CONFLICT', message: 'this Idempotency-Key was used with another body' } });
  });

  test('tokens: missing, wrong, revoked -> 401; a client sees only its own messages', async () => {
    expect((await call(api.url, undefined, 'GET', '/v1/messages')).status).toBe(401);
    expect((await call(api.url, `${token}x`, 'GET', '/v1/messages')).status).toBe(401);
    expect((await call(api.url, 'nobody.abc', 'GET', '/v1/messages')).status).toBe(401);
    const other = client(m, 'blog').token;
    const id = (await call(api.url, token, 'POST', '/v1/messages', valid)).body.id as string;
    expect((await call(api.url, other, 'GET', `/v1/messages/${id}`)).status).toBe(404);
    expect((await call(api.url, other, 'DELETE', `/v1/messages/${id}`)).status).toBe(404);
    m.store.revokeClient('blog', Date.now());
    expect((await call(api.url, other, 'GET', '/v1/messages')).status).toBe(401);
    expect((await call(api.url, undefined, 'GET', '/v1/openapi.json')).body.openapi).toBe('3.1.0');
    expect((await call(api.url, undefined, 'GET', '/healthz')).body.ok).toBe(true);
  });

  test('field-level 400s, header injection, senders, SSRF, 413 and 415', async () => {
    const bad = async (body: unknown): Promise<Array<{ path: string }>> => {
      const res = await call(api.url, token, 'POST', '/v1/messages', body);
      expect(res.status).toBe(400);
      return (res.body.error as { fields: Array<{ path: string }> }).fields;
    };
    expect((await bad({ subject: 'x' })).map((f) => f.path)).toEqual(expect.arrayContaining(['to']));
    expect((await bad({ ...valid, subject: 'Hi\r\nBcc: victim@example.com' }))[0]?.path).toBe('subject');
    expect((await bad({ ...valid, to: 'a@example.com\r\nBcc: v@example.com' }))[0]?.path).toBe('to');
    expect((await bad({ ...valid, headers: { 'X-Tag': 'a\nBcc: v@example.com' } }))[0]?.path).toBe('headers.X-Tag');
    expect((await bad({ ...valid, headers: { Bcc: 'v@example.com' } }))[0]?.path).toBe('headers.Bcc');
    expect((await bad({ ...valid, to: Array.from({ length: 51 }, (_, i) => `u${i}@example.com`) }))[0]?.path).toBe('to');
    expect((await bad({ ...valid, send_at: 'tomorrow' }))[0]?.path).toBe('send_at');
    expect((await bad({ ...valid, send_at: '2040-01-01T00:00:00Z' }))[0]?.path).toBe('send_at');
    expect((await bad({ ...valid, surprise: 1 }))[0]?.path).toBe('(body)');
    expect((await bad({ to: valid.to, subject: 's' }))[0]?.path).toBe('text');
    expect((await bad({ ...valid, from: 'ceo@example.com' }))[0]?.path).toBe('from');
    expect((await bad({ ...valid, check_url: 'http://127.0.0.1:9/check' }))[0]?.path).toBe('check_url');
    expect((await bad({ ...valid, check_url: 'http://169.254.169.254/latest' }))[0]?.path).toBe('check_url');
    expect((await bad({ ...valid, metadata: { big: 'x'.repeat(5000) } }))[0]?.path).toBe('metadata');
    const sendAt2y = new Date(Date.now() + 2 * 365 * 86_400_000).toISOString();
    expect((await call(api.url, token, 'POST', '/v1/messages', { ...valid, send_at: sendAt2y })).status).toBe(202);

    const big = await call(api.url, token, 'POST', '/v1/messages', { ...valid, text: 'x'.repeat(70_000) });
    expect(big.status).toBe(413);
    const form = await fetch(`${api.url}/v1/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'text/plain' },
      body: 'hi',
    });
    expect(form.status).toBe(415);
    expect((await call(api.url, token, 'POST', '/v1/messages', valid, { 'idempotency-key': 'k'.repeat(201) })).status).toBe(400);
    expect((await call(api.url, token, 'GET', '/v1/messages?limit=0')).status).toBe(400);
    expect((await call(api.url, token, 'GET', '/v1/messages/nope')).status).toBe(404);
  });

  test('hundreds of malformed bodies: every one a 4xx with a JSON error, never a 500', async () => {
    const samples: string[] = [
      '',
      'null',
      '[]',
      '"x"',
      '1',
      'true',
      '{',
      '{"to":',
      '{"to":null}',
      '{"__proto__":{"x":1}}',
      '{"constructor":{"prototype":{}}}',
      '\u0000',
      '{"to":["a@b.c"],"subject":{},"text":[]}',
    ];
    const fields = ['to', 'cc', 'bcc', 'from', 'subject', 'text', 'html', 'headers', 'send_at', 'check_url', 'metadata'];
    const values = [
      null,
      0,
      -1,
      Number.MAX_VALUE,
      '',
      ' ',
      'x'.repeat(300),
      [],
      [null],
      {},
      { a: [] },
      true,
      '\r\n',
      '@',
      'a@b',
      '2027-13-45T99:99:99Z',
      'javascript:alert(1)',
      'http://[::1]/',
    ];
    let seed = 1;
    const rand = (n: number): number => (((seed = (seed * 48271) % 2147483647) % n) + n) % n;
    for (let i = 0; i < 300; i++) {
      const body: Record<string, unknown> = { ...valid };
      for (let j = 0; j < 1 + rand(3); j++) body[fields[rand(fields.length)] as string] = values[rand(values.length)];
      samples.push(JSON.stringify(body));
    }
    const statuses = new Map<number, number>();
    for (const body of samples) {
      const res = await fetch(`${api.url}/v1/messages`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body,
      });
      const json = (await res.json()) as { error?: unknown; id?: string };
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      expect(res.status).toBeLessThan(500);
      if (res.status >= 400) expect(json.error).toBeDefined();
    }
    expect(statuses.get(400)).toBeGreaterThan(250);
  });

  test('npm run mailer -- clients add/list/revoke: the token printed once works, then is refused', async () => {
    const cli = (...args: string[]) =>
      spawnSync(process.execPath, [projectRootFile('packages/mailer/dist/cli.js'), ...args], {
        env: { ...process.env, ...m.env },
        encoding: 'utf8',
      });
    const added = cli('clients', 'add', 'newsletter', '--from', 'news@example.com');
    expect(added.status).toBe(0);
    const issued = /^ {2}(newsletter\.[\w-]+)$/m.exec(added.stdout)?.[1] as string;
    expect(added.stdout).toMatch(/whsec_/);
    expect((await call(api.url, issued, 'POST', '/v1/messages', { ...valid, from: 'news@example.com' })).status).toBe(202);
    expect(cli('clients', 'list').stdout).toMatch(/newsletter +active +from: \["news@example.com"\]/);
    expect(cli('clients', 'add', 'newsletter').stderr).toMatch(/client newsletter exists/);
    expect(cli('clients', 'revoke', 'newsletter').status).toBe(0);
    expect((await call(api.url, issued, 'GET', '/v1/messages')).status).toBe(401);
    expect(m.store.client('newsletter')?.token_hash).not.toContain(issued.split('.')[1]);
    expect(cli('clients', 'add', 'bus').stderr).toMatch(/reserved for internal apps/);
    expect(cli('bogus').status).toBe(64);
  });

  test('rate limit per client: 429 with Retry-After', async () => {
    await api.stop();
    m.cleanup();
    m = mailerEnv({ MAILER_RATE_LIMIT: '5' });
    token = client(m, 'noisy').token;
    const quiet = client(m, 'quiet').token;
    api = await startApi(m);
    const codes: number[] = [];
    for (let i = 0; i < 7; i++) codes.push((await call(api.url, token, 'GET', '/v1/messages')).status);
    expect(codes).toEqual([200, 200, 200, 200, 200, 429, 429]);
    const limited = await call(api.url, token, 'GET', '/v1/messages');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(limited.body).toEqual({
      error: { code: 'ERR_MAILER_RATE_LIMITED', message: expect.stringMatching(/^at most 5 requests per minute; retry in/) },
    });
    expect((await call(api.url, quiet, 'GET', '/v1/messages')).status).toBe(200);
  });
});
