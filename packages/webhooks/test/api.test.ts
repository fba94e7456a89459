import { openApiDocument } from '../src';
import { call, client, Receiver, startApp, webhooksEnv } from './helpers';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(vars: Record<string, string> = {}) {
  const w = webhooksEnv(vars);
  cleanups.push(() => w.cleanup());
  const app = await startApp(w);
  cleanups.push(() => app.stop());
  return { w, app };
}

const body = (url: string, extra: Record<string, unknown> = {}) => ({ url, events: ['transfer'], filter: { to: 'alice' }, ...extra });

describe('the webhooks REST API', () => {
  test('PUT creates (201, with the secret), the same body again changes nothing (200), another body updates; GET, list, DELETE', async () => {
    const { w, app } = await setup();
    const token = await client(w, 'shop');
    const url = 'http://127.0.0.1:9/hook';
    const created = await call(app.url, token, 'PUT', '/v1/endpoints/main', body(url));
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ id: 'main', url, events: ['transfer'], filter: { to: 'alice' }, disabled: false });
    expect(created.body.secret).toMatch(/^whsec_[A-Za-z0-9+/=]{40,}$/);
    const again = await call(app.url, token, 'PUT', '/v1/endpoints/main', body(url));
    expect(again.status).toBe(200);
    expect(again.body.secret).toBeUndefined();
    expect(again.body.updated_at).toBe(created.body.updated_at);
    expect(await w.store.endpoints()).toHaveLength(1);
    const secret = await call(app.url, token, 'GET', '/v1/endpoints/main/secret');
    expect(secret.body).toEqual({ secret: created.body.secret, previous_valid_until: null });

    await new Promise((r) => setTimeout(r, 5));
    const changed = await call(app.url, token, 'PUT', '/v1/endpoints/main', body(url, { description: 'orders' }));
    expect(changed.status).toBe(200);
    expect(changed.body.description).toBe('orders');
    expect(changed.body.updated_at).not.toBe(created.body.updated_at);
    expect((await call(app.url, token, 'GET', '/v1/endpoints/main/secret')).body.secret).toBe(created.body.secret);

    await call(app.url, token, 'PUT', '/v1/endpoints/second', { url, events: ['email.sent', 'block.applied'] });
    const list = await call(app.url, token, 'GET', '/v1/endpoints');
    expect((list.body.endpoints as Array<{ id: string }>).map((e) => e.id)).toEqual(['main', 'second']);
    expect(JSON.stringify(list.body)).not.toContain('whsec_');
    expect((await call(app.url, token, 'GET', '/v1/endpoints/second')).body).toMatchObject({
      events: ['email.sent', 'block.applied'],
      filter: {},
    });
    expect((await call(app.url, token, 'DELETE', '/v1/endpoints/second')).status).toBe(204);
    expect((await call(app.url, token, 'GET', '/v1/endpoints/second')).status).toBe(404);
    expect((await call(app.url, token, 'DELETE', '/v1/endpoints/second')).status).toBe(404);
  });

  test('a client sees and changes only its own endpoints; a wrong or revoked token is 401', async () => {
    const { w, app } = await setup();
    const shop = await client(w, 'shop');
    const other = await client(w, 'other');
    await call(app.url, shop, 'PUT', '/v1/endpoints/main', body('http://127.0.0.1:9/x'));
    for (const [method, path, b] of [
      ['GET', '/v1/endpoints/main', undefined],
      ['DELETE', '/v1/endpoints/main', undefined],
      ['GET', '/v1/endpoints/main/secret', undefined],
      ['POST', '/v1/endpoints/main/secret/rotate', undefined],
      ['GET', '/v1/endpoints/main/deliveries', undefined],
      ['POST', '/v1/endpoints/main/replay', { from_position: 1 }],
    ] as const) {
      expect((await call(app.url, other, method, path, b)).status).toBe(404);
    }
    expect((await call(app.url, other, 'GET', '/v1/endpoints')).body).toEqual({ endpoints: [] });
    // The same id under another client is another endpoint.
    expect((await call(app.url, other, 'PUT', '/v1/endpoints/main', body('http://127.0.0.1:9/y'))).status).toBe(201);
    expect((await call(app.url, shop, 'GET', '/v1/endpoints/main')).body.url).toBe('http://127.0.0.1:9/x');
    for (const token of [undefined, 'nonsense', `${shop}x`, `other.${shop.split('.')[1]}`]) {
      const res = await call(app.url, token, 'GET', '/v1/endpoints');
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
    }
    await w.store.revokeClient('shop', Date.now());
    expect((await call(app.url, shop, 'GET', '/v1/endpoints')).status).toBe(401);
  });

  test('URLs with credentials, odd schemes or special-purpose addresses are refused, unless WEBHOOKS_ALLOW lists them', async () => {
    const { w, app } = await setup({ WEBHOOKS_ALLOW: '10.1.2.3' });
    const token = await client(w, 'shop');
    for (const url of [
      'https://user:pw@hooks.example.com/x',
      'https://user@hooks.example.com/x',
      'ftp://hooks.example.com/x',
      'file:///etc/passwd',
      'javascript:alert(1)',
      'not a url',
      'http://127.0.0.1:8080/x',
      'http://2130706433/x',
      'http://[::1]/x',
      'http://169.254.169.254/latest/meta-data',
      'http://10.0.0.1/x',
      'http://[::ffff:192.168.0.1]/x',
    ]) {
      const res = await call(app.url, token, 'PUT', '/v1/endpoints/e', body(url));
      expect([url, res.status, (res.body.error as { fields: Array<{ path: string }> }).fields[0]?.path]).toEqual([url, 400, 'url']);
    }
    expect((await call(app.url, token, 'PUT', '/v1/endpoints/e', body('http://10.1.2.3:8443/x'))).status).toBe(201);
    expect((await call(app.url, token, 'PUT', '/v1/endpoints/f', body('https://hooks.example.com:8443/x'))).status).toBe(201);
  });

  test('unknown event types, filters on fields no registered type has, bad ids and limits are 400s; the endpoint limit is a 429', async () => {
    const { w, app } = await setup({ WEBHOOKS_MAX_ENDPOINTS: '2' });
    const token = await client(w, 'shop', ['shop.order_paid']);
    const url = 'http://127.0.0.1:9/x';
    const fields = async (b: unknown, id = 'e') => {
      const res = await call(app.url, token, 'PUT', `/v1/endpoints/${id}`, b);
      return [
        res.status,
        (res.body.error as { fields?: Array<{ path: string }> } | undefined)?.fields?.map((f) => f.path) ?? res.body.error,
      ];
    };
    expect(await fields({ url, events: ['transfer', 'no.such_type'] })).toEqual([400, ['events.1']]);
    expect(await fields({ url, events: ['email.*'] })).toEqual([400, ['events.0']]);
    expect(await fields({ url, events: ['transfer'], filter: { recipient: 'alice' } })).toEqual([400, ['filter.recipient']]);
    expect(await fields({ url, events: ['transfer'], filter: { to: { $ne: 'x' } } })).toEqual([400, ['filter.to']]);
    expect(await fields({ url, events: ['transfer'], extra: 1 })).toEqual([400, ['(body)']]);
    expect(await fields({ url, events: [] })).toEqual([400, ['events']]);
    expect(await fields({ url, events: ['transfer', 'transfer'] })).toEqual([400, ['events']]);
    expect((await call(app.url, token, 'PUT', `/v1/endpoints/${'x'.repeat(65)}`, { url, events: ['transfer'] })).status).toBe(400);
    // posted types and open op types take any filter field
    expect(await fields({ url, events: ['shop.order_paid'], filter: { sku: 'a1' } }, 'posted')).toEqual([201, undefined]);
    expect(await fields({ url, events: ['transfer', 'vote'], filter: { voter: 'bob' } }, 'ops')).toEqual([201, undefined]);
    const limit = await call(app.url, token, 'PUT', '/v1/endpoints/third', { url, events: ['vote'] });
    expect(limit.status).toBe(429);
    expect(limit.body.error).toMatchObject({ code: 'too_many_endpoints' });
    expect((await call(app.url, token, 'PUT', '/v1/endpoints/ops', { url, events: ['vote'] })).status).toBe(200);
  });

  test('300+ malformed bodies and queries on every route: 4xx, never 5xx', async () => {
    const { w, app } = await setup();
    const token = await client(w, 'shop', ['shop.thing'], ['mailer.email.send']);
    await call(app.url, token, 'PUT', '/v1/endpoints/e', body('http://127.0.0.1:9/x'));
    const values: unknown[] = [
      null,
      0,
      -1,
      1e308,
      'x',
      '',
      true,
      [],
      [1],
      {},
      { url: null },
      { url: 1, events: 'transfer' },
      { url: 'http://127.0.0.1:9/', events: [null] },
      { url: 'http://127.0.0.1:9/', events: [{}] },
      { url: 'x'.repeat(3000), events: ['transfer'] },
      { from_position: -5 },
      { from_position: 1.5 },
      { from_position: '12' },
      { from_position: 2 ** 60 },
      { filter: [] },
      { url: 'http://127.0.0.1:9/', events: ['transfer'], filter: 'to=alice' },
      { url: 'http://127.0.0.1:9/', events: ['transfer'], disabled: 'yes' },
      { url: 'http://127.0.0.1:9/', events: ['transfer'], description: 5 },
      { period: 7 },
      { period: 'x'.repeat(10) },
      { a: { b: { c: [] } } },
      { url: 'http://127.0.0.1:9/', events: Array(200).fill('transfer') },
    ];
    const raw = ['{', '{"url":', 'null', '[', '"str"', '{"__proto__":{"x":1}}', '{"constructor":{"prototype":{}}}', '\u0000', '{}}', 'NaN'];
    const routes: Array<[string, string]> = [
      ['PUT', '/v1/endpoints/e'],
      ['PUT', '/v1/endpoints/new'],
      ['POST', '/v1/endpoints/e/replay'],
      ['POST', '/v1/endpoints/e/secret/rotate'],
      ['POST', '/v1/events/shop.thing'],
      ['POST', '/v1/tasks/digest.report.send'],
      ['POST', '/v1/tasks/mailer.email.send'],
      ['GET', '/v1/endpoints/e/deliveries?limit=0'],
      ['GET', '/v1/endpoints/e/deliveries?cursor=-1'],
      ['DELETE', '/v1/endpoints/%00'],
    ];
    let count = 0;
    const statuses = new Set<number>();
    for (const [method, path] of routes) {
      for (const v of [...values, ...raw]) {
        const isGet = method === 'GET' || method === 'DELETE';
        const res = await call(
          app.url,
          token,
          method,
          path,
          isGet ? undefined : typeof v === 'string' && raw.includes(v) ? v : JSON.stringify(v),
          {
            'idempotency-key': `k${count}`,
          },
        );
        count++;
        statuses.add(res.status);
        if (res.status >= 500) throw new Error(`${method} ${path} ${String(v)} -> ${res.status} ${JSON.stringify(res.body)}`);
      }
    }
    // and with the wrong content type
    for (const [method, path] of routes.filter(([m]) => m !== 'GET' && m !== 'DELETE')) {
      const res = await fetch(app.url + path, {
        method,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'text/plain' },
        body: 'x',
      });
      expect(res.status).toBe(415);
      count++;
    }
    expect(count).toBeGreaterThanOrEqual(300);
    expect([...statuses].every((s) => s < 500)).toBe(true);
    expect(app.lines.filter((l) => l.level === 50)).toEqual([]);
  });

  test('the OpenAPI document carries the request schemas generated from the zod schemas', async () => {
    const { app } = await setup();
    const res = await call(app.url, undefined, 'GET', '/v1/openapi.json');
    expect(res.status).toBe(200);
    expect(res.body).toEqual(JSON.parse(JSON.stringify(openApiDocument)));
    const endpoint = (res.body.components as { schemas: { Endpoint: { properties: Record<string, unknown>; required: string[] } } }).schemas
      .Endpoint;
    expect(Object.keys(endpoint.properties).sort()).toEqual(['description', 'disabled', 'events', 'filter', 'url']);
    expect(endpoint.required.sort()).toEqual(['events', 'url']);
  });

  test('secret rotation: the new secret is returned and the previous one stays valid for 24 h', async () => {
    const { w, app } = await setup();
    const token = await client(w, 'shop');
    const receiver = await Receiver.start();
    cleanups.push(() => receiver.close());
    const created = await call(app.url, token, 'PUT', '/v1/endpoints/e', body(receiver.url));
    const rotated = await call(app.url, token, 'POST', '/v1/endpoints/e/secret/rotate');
    expect(rotated.status).toBe(200);
    expect(rotated.body.secret).not.toBe(created.body.secret);
    const until = Date.parse(String(rotated.body.previous_valid_until));
    expect(until - Date.now()).toBeGreaterThan(24 * 3_600_000 - 60_000);
    expect((await call(app.url, token, 'GET', '/v1/endpoints/e/secret')).body).toEqual(rotated.body);
  });
});
