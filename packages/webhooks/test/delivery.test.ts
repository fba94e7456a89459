import { Webhook } from 'standardwebhooks';

import { call, client, fakeBroadcaster, Receiver, startApp, waitFor, webhooksEnv } from './helpers';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const BLOCK = 1_000_000 * 1_000_000;

async function setup(vars: Record<string, string> = {}) {
  const w = webhooksEnv(vars);
  cleanups.push(() => w.cleanup());
  const chain = await fakeBroadcaster(w);
  cleanups.push(() => chain.bus.close());
  const app = await startApp(w);
  cleanups.push(() => app.stop());
  const token = await client(w, 'shop');
  return { w, chain, app, token };
}

async function receiver(script?: Parameters<typeof Receiver.start>[0]): Promise<Receiver> {
  const r = await Receiver.start(script);
  cleanups.push(() => r.close());
  return r;
}

/** Register an endpoint for transfers to alice, from the chain's first position on; the receiver learns its secret. */
async function register(app: { url: string }, token: string, id: string, r: Receiver, extra: Record<string, unknown> = {}): Promise<void> {
  const res = await call(app.url, token, 'PUT', `/v1/endpoints/${id}`, {
    url: r.url,
    events: ['transfer'],
    filter: { to: 'alice' },
    ...extra,
  });
  expect(res.status).toBe(201);
  r.secrets.push(String(res.body.secret));
  expect((await call(app.url, token, 'POST', `/v1/endpoints/${id}/replay`, { from_position: BLOCK })).status).toBe(202);
}

describe('deliveries', () => {
  test('every matching event, in position order, signed (standardwebhooks verifies), body {type, position, tid, timestamp, data}', async () => {
    const { chain, app, token } = await setup();
    const r = await receiver();
    await register(app, token, 'main', r);
    const positions: number[] = [];
    for (let i = 0; i < 60; i++) {
      const pos = BLOCK + i;
      const to = i % 3 === 0 ? 'alice' : 'bob';
      if (to === 'alice') positions.push(pos);
      await chain.transfer(pos, 'carol', to);
    }
    await waitFor(() => r.got.length >= positions.length, 10_000, 'deliveries');
    expect(r.got.map((g) => g.body.position)).toEqual(positions);
    expect(r.got.every((g) => g.verified)).toBe(true);
    const first = r.got[0] as (typeof r.got)[number];
    expect(first.id).toBe(`msg_broadcaster_${BLOCK}`);
    expect(first.body).toMatchObject({ type: 'transfer', position: BLOCK, data: { from: 'carol', to: 'alice', amount: '1.000 STEEM' } });
    expect(first.body.tid).toMatch(/^[0-9a-f]{16}$/);
    expect(new Date(first.body.timestamp).toISOString()).toBe(first.body.timestamp);
    const log = await call(app.url, token, 'GET', '/v1/endpoints/main/deliveries?limit=200');
    expect((log.body.deliveries as Array<{ status: number }>).map((d) => d.status)).toEqual(positions.map(() => 200));
    expect((await call(app.url, token, 'GET', '/v1/endpoints/main')).body.cursors).toEqual({ broadcaster: BLOCK + 59 });
  });

  test('a store call failing under a delivery (PostgreSQL restarting): the endpoint starts again from its stored cursor, no event skipped', async () => {
    const { chain, app, token } = await setup({ WEBHOOKS_RETRY_SCHEDULE_MS: '100,100,100' });
    const r = await receiver((n) => (n === 0 ? 500 : 200));
    await register(app, token, 'main', r);
    // The first failed try's retry state cannot be written, once.
    const store = app.dispatcher.store;
    const setRetry = store.setRetry.bind(store);
    let failures = 0;
    store.setRetry = (...a) => (failures++ === 0 ? Promise.reject(new Error('Connection terminated unexpectedly')) : setRetry(...a));
    for (let i = 0; i < 5; i++) await chain.transfer(BLOCK + i, 'carol', 'alice');
    await waitFor(() => r.got.length >= 5, 10_000, 'deliveries');
    expect(r.got.map((g) => g.body.position)).toEqual([0, 1, 2, 3, 4].map((i) => BLOCK + i));
    expect(app.lines.some((l) => String(l.msg).includes('starting the endpoint again from its stored cursors'))).toBe(true);
  });

  test('500 five times then 200: delivered on the 6th try, in order, while a healthy endpoint keeps flowing', async () => {
    const { chain, app, token } = await setup({ WEBHOOKS_RETRY_SCHEDULE_MS: '100,100,100,100,100,100,100' });
    const flaky = await receiver((n) => (n < 5 ? 500 : 200));
    const healthy = await receiver();
    await register(app, token, 'flaky', flaky);
    await register(app, token, 'healthy', healthy);
    for (let i = 0; i < 20; i++) await chain.transfer(BLOCK + i, 'carol', 'alice');
    // The healthy one gets everything while the flaky one is still on its schedule.
    await waitFor(() => healthy.got.length === 20, 5_000, 'healthy deliveries');
    expect(flaky.got.length).toBe(0);
    await waitFor(() => flaky.got.length === 20, 10_000, 'flaky deliveries');
    expect(flaky.got.map((g) => g.body.position)).toEqual(healthy.got.map((g) => g.body.position));
    expect(flaky.requests).toBe(25);
    const log = (await call(app.url, token, 'GET', '/v1/endpoints/flaky/deliveries?limit=10')).body.deliveries as Array<
      Record<string, unknown>
    >;
    expect(log.slice(0, 6).map((d) => [d.position, d.status, d.error])).toEqual([
      ...Array.from({ length: 5 }, () => [BLOCK, 500, 'HTTP 500']),
      [BLOCK, 200, null],
    ]);
    expect(log[0]).toMatchObject({ webhook_id: `msg_broadcaster_${BLOCK}`, response: 'no', type: 'transfer' });
    expect((await call(app.url, token, 'GET', '/v1/endpoints/flaky')).body).toMatchObject({ disabled: false, failing: null });
  });

  test('410 disables the endpoint at once and publishes endpoint.disabled; the others keep flowing', async () => {
    const { w, chain, app, token } = await setup();
    const gone = await receiver(() => 410);
    const healthy = await receiver();
    const observer = w.busFor('observer');
    cleanups.push(() => observer.close());
    const disabled: unknown[] = [];
    observer.subscribe('webhooks', { 'endpoint.disabled': (p) => void disabled.push(p) }, { from: 0 });
    await register(app, token, 'gone', gone);
    await register(app, token, 'healthy', healthy);
    for (let i = 0; i < 5; i++) await chain.transfer(BLOCK + i, 'carol', 'alice');
    await waitFor(() => healthy.got.length === 5 && disabled.length === 1, 5_000, 'deliveries and endpoint.disabled');
    expect(gone.requests).toBe(1);
    expect(disabled).toEqual([{ client: 'shop', endpoint: 'gone', url: gone.url, reason: 'the receiver answered 410 Gone' }]);
    expect((await call(app.url, token, 'GET', '/v1/endpoints/gone')).body).toMatchObject({
      disabled: true,
      disabled_reason: 'the receiver answered 410 Gone',
    });
    await chain.transfer(BLOCK + 10, 'carol', 'alice');
    await waitFor(() => healthy.got.length === 6, 5_000, 'one more');
    expect(gone.requests).toBe(1);
  });

  test('a receiver that never answers: each try ends at WEBHOOKS_TIMEOUT_MS; after the schedule the endpoint is disabled', async () => {
    const { w, chain, app, token } = await setup({ WEBHOOKS_TIMEOUT_MS: '200', WEBHOOKS_RETRY_SCHEDULE_MS: '20,20' });
    const silent = await receiver(() => 'hang');
    const healthy = await receiver();
    await register(app, token, 'silent', silent);
    await register(app, token, 'healthy', healthy);
    for (let i = 0; i < 5; i++) await chain.transfer(BLOCK + i, 'carol', 'alice');
    await waitFor(() => healthy.got.length === 5, 2_000, 'healthy deliveries');
    await waitFor(async () => (await w.store.endpoint('shop', 'silent'))?.disabled === 1, 5_000, 'silent disabled');
    const log = (await call(app.url, token, 'GET', '/v1/endpoints/silent/deliveries')).body.deliveries as Array<Record<string, unknown>>;
    expect(log.map((d) => [d.position, d.status, d.error])).toEqual(
      Array.from({ length: 3 }, () => [BLOCK, null, 'no answer within 200 ms']),
    );
    for (const d of log) expect(d.duration_ms).toBeLessThan(1_000);
    expect((await w.store.endpoint('shop', 'silent'))?.disabled_reason).toBe('3 tries failed (last: no answer within 200 ms)');
    // Its cursor did not move past the undelivered event: re-enabling delivers it.
    expect(await w.store.cursors(((await w.store.endpoint('shop', 'silent')) as { seq: number }).seq)).toEqual({ broadcaster: BLOCK - 1 });
  });

  test('a redirect is a failure (not followed); 429 with Retry-After waits as asked, bounded by WEBHOOKS_RETRY_AFTER_MAX_MS', async () => {
    const { chain, app, token } = await setup({ WEBHOOKS_RETRY_SCHEDULE_MS: '20,20,20', WEBHOOKS_RETRY_AFTER_MAX_MS: '400' });
    const target = await receiver();
    const redirecting = await receiver((_n, _req, res) => void res.writeHead(307, { location: target.url }).end());
    const busy = await receiver((n, _req, res) => {
      if (n === 0) return void res.writeHead(429, { 'retry-after': '3600' }).end();
      return 200;
    });
    await register(app, token, 'redirecting', redirecting);
    await register(app, token, 'busy', busy);
    await chain.transfer(BLOCK, 'carol', 'alice');
    await waitFor(() => busy.got.length === 1, 3_000, 'busy delivered');
    const log = (await call(app.url, token, 'GET', '/v1/endpoints/busy/deliveries')).body.deliveries as Array<{
      at: string;
      status: number;
    }>;
    expect(log.map((d) => d.status)).toEqual([429, 200]);
    const waited = Date.parse((log[1] as { at: string }).at) - Date.parse((log[0] as { at: string }).at);
    expect(waited).toBeGreaterThanOrEqual(390); // timers may fire a millisecond or so early against Date
    expect(waited).toBeLessThan(2_000);
    await waitFor(
      async () => (await call(app.url, token, 'GET', '/v1/endpoints/redirecting')).body.disabled === true,
      3_000,
      'redirecting disabled',
    );
    const redirects = (await call(app.url, token, 'GET', '/v1/endpoints/redirecting/deliveries')).body.deliveries as Array<
      Record<string, unknown>
    >;
    expect(redirects.map((d) => [d.status, d.error])).toEqual(
      Array.from({ length: 4 }, () => [307, 'HTTP 307 (redirects are not followed)']),
    );
    expect(target.requests).toBe(0);
  });

  test('after a rotation both signatures are sent: a receiver knowing only the old or only the new secret verifies', async () => {
    const { chain, app, token } = await setup();
    const r = await receiver();
    await register(app, token, 'main', r);
    const old = r.secrets[0] as string;
    await chain.transfer(BLOCK, 'carol', 'alice');
    await waitFor(() => r.got.length === 1, 3_000, 'first');
    expect((r.got[0] as { signature: string }).signature.split(' ')).toHaveLength(1);
    const rotated = String((await call(app.url, token, 'POST', '/v1/endpoints/main/secret/rotate')).body.secret);
    r.secrets.splice(0, 1, rotated);
    await chain.transfer(BLOCK + 1, 'carol', 'alice');
    await waitFor(() => r.got.length === 2, 3_000, 'second');
    const second = r.got[1] as (typeof r.got)[number];
    expect(second.verified).toBe(true);
    expect(second.signature.split(' ')).toHaveLength(2);
    // the same message verifies with the old secret alone and with the new one alone
    const headers = { 'webhook-id': second.id, 'webhook-timestamp': second.timestamp, 'webhook-signature': second.signature };
    expect(new Webhook(old).verify(second.raw, headers)).toMatchObject({ position: BLOCK + 1 });
    expect(new Webhook(rotated).verify(second.raw, headers)).toMatchObject({ position: BLOCK + 1 });
    expect(() => new Webhook(`whsec_${Buffer.alloc(32, 1).toString('base64')}`).verify(second.raw, headers)).toThrow();
  });

  test('replay from a position re-delivers from there with the same webhook-ids; a restart resumes from the stored cursor', async () => {
    const w = webhooksEnv();
    cleanups.push(() => w.cleanup());
    const chain = await fakeBroadcaster(w);
    cleanups.push(() => chain.bus.close());
    let app = await startApp(w);
    const token = await client(w, 'shop');
    const r = await receiver();
    await register(app, token, 'main', r);
    for (let i = 0; i < 10; i++) await chain.transfer(BLOCK + i, 'carol', 'alice');
    await waitFor(() => r.got.length === 10, 3_000, 'ten');
    expect((await call(app.url, token, 'POST', '/v1/endpoints/main/replay', { from_position: BLOCK + 7 })).status).toBe(202);
    await waitFor(() => r.got.length === 13, 3_000, 'replayed');
    expect(r.got.slice(10).map((g) => g.body.position)).toEqual([BLOCK + 7, BLOCK + 8, BLOCK + 9]);
    expect(r.got.slice(10).map((g) => g.id)).toEqual(r.got.slice(7, 10).map((g) => g.id));
    expect(r.unique).toHaveLength(10);
    // the last answer is in (a delivery cut short by the stop would rightly come again)
    await waitFor(async () => (await w.store.cursor(1, 'broadcaster')) === BLOCK + 9, 3_000, 'the cursor past the last replayed event');
    // down while the chain moves on: nothing missed, nothing delivered twice
    await app.stop();
    for (let i = 10; i < 20; i++) await chain.transfer(BLOCK + i, 'carol', 'alice');
    app = await startApp(w);
    cleanups.push(() => app.stop());
    await waitFor(() => r.unique.length === 20, 3_000, 'twenty');
    expect(r.got.slice(13).map((g) => g.body.position)).toEqual(Array.from({ length: 10 }, (_, i) => BLOCK + 10 + i));
  });

  test('the SSRF guard applies to the connected address at every delivery: a host name resolving to loopback is never reached', async () => {
    const { w, chain, app, token } = await setup({ WEBHOOKS_ALLOW: '', WEBHOOKS_RETRY_SCHEDULE_MS: '20' });
    const r = await receiver();
    // `localhost` passes registration (a host name), and resolves to a loopback address at delivery.
    const url = r.url.replace('127.0.0.1', 'localhost');
    expect((await call(app.url, token, 'PUT', '/v1/endpoints/local', { url, events: ['transfer'] })).status).toBe(201);
    await call(app.url, token, 'POST', '/v1/endpoints/local/replay', { from_position: BLOCK });
    await chain.transfer(BLOCK, 'carol', 'alice');
    await waitFor(async () => (await w.store.endpoint('shop', 'local'))?.disabled === 1, 3_000, 'disabled');
    const log = (await call(app.url, token, 'GET', '/v1/endpoints/local/deliveries')).body.deliveries as Array<Record<string, unknown>>;
    expect(log.map((d) => [d.status, d.error])).toEqual([
      [null, 'address not allowed'],
      [null, 'address not allowed'],
    ]);
    expect(r.requests).toBe(0);
  });

  test('an endpoint failing continuously for WEBHOOKS_DISABLE_AFTER_HOURS is disabled (injectable clock)', async () => {
    let clock = 1_800_000_000_000;
    const w = webhooksEnv({ WEBHOOKS_DISABLE_AFTER_HOURS: '2', WEBHOOKS_RETRY_SCHEDULE_MS: '10,10,10,10,10,10,10' });
    cleanups.push(() => w.cleanup());
    const chain = await fakeBroadcaster(w);
    cleanups.push(() => chain.bus.close());
    const app = await startApp(w, { now: () => clock });
    cleanups.push(() => app.stop());
    const token = await client(w, 'shop');
    const r = await receiver((n) => {
      clock += 50 * 60_000; // each failed try "takes" 50 minutes
      return n < 100 ? 500 : 200;
    });
    await register(app, token, 'slow', r);
    await chain.transfer(BLOCK, 'carol', 'alice');
    await waitFor(async () => (await w.store.endpoint('shop', 'slow'))?.disabled === 1, 3_000, 'disabled');
    // tries at 0, 50, 100, 150 min after the first failure: the one at >= 120 min disables
    expect(r.requests).toBe(4);
    expect((await w.store.endpoint('shop', 'slow'))?.disabled_reason).toBe('failing for 2 h (last: HTTP 500)');
  });

  test('re-enabling a disabled endpoint with PUT delivers the event it stopped at', async () => {
    const { chain, app, token } = await setup({ WEBHOOKS_RETRY_SCHEDULE_MS: '10' });
    let up = false;
    const r = await receiver(() => (up ? 200 : 503));
    await register(app, token, 'main', r);
    await chain.transfer(BLOCK, 'carol', 'alice');
    await waitFor(async () => (await call(app.url, token, 'GET', '/v1/endpoints/main')).body.disabled === true, 3_000, 'disabled');
    up = true;
    const put = await call(app.url, token, 'PUT', '/v1/endpoints/main', { url: r.url, events: ['transfer'], filter: { to: 'alice' } });
    expect(put.body).toMatchObject({ disabled: false, disabled_reason: null });
    await waitFor(() => r.got.length === 1, 3_000, 'delivered after re-enabling');
    expect(r.got[0]?.body.position).toBe(BLOCK);
  });

  test("the operator's Enable (webhooks.endpoint.enable on the bus) delivers from the stored cursor: the held event first, then the rest, in order", async () => {
    const { w, chain, app, token } = await setup({ WEBHOOKS_RETRY_SCHEDULE_MS: '10' });
    let up = false;
    const r = await receiver(() => (up ? 200 : 503));
    await register(app, token, 'main', r);
    await chain.transfer(BLOCK, 'carol', 'alice');
    await waitFor(async () => (await w.store.endpoint('shop', 'main'))?.disabled === 1, 3_000, 'disabled');
    await chain.transfer(BLOCK + 1, 'carol', 'alice');
    const operator = w.busFor('console');
    cleanups.push(() => operator.close());
    await operator.serve();
    const send = (endpoint: string) => operator.send('webhooks.endpoint.enable', { client: 'shop', endpoint }, { attempts: 1 });
    await expect(send('nope')).rejects.toMatchObject({
      code: 'ERR_BUS_INVALID_PAYLOAD',
      message: expect.stringMatching(/no endpoint shop\/nope/),
    });
    up = true;
    expect(await send('main')).toEqual({ client: 'shop', endpoint: 'main', disabled: false });
    await waitFor(() => r.got.length === 2, 3_000, 'both delivered after the Enable');
    expect(r.got.map((g) => g.body.position)).toEqual([BLOCK, BLOCK + 1]);
    expect(await w.store.endpoint('shop', 'main')).toMatchObject({ disabled: 0, disabled_reason: null, attempts: 0 });
    expect(app.lines.some((l) => /endpoint shop\/main enabled by the operator/.test(String(l.msg)))).toBe(true);
    // Enabling it again changes nothing (the runner is not restarted: no second delivery).
    expect(await send('main')).toEqual({ client: 'shop', endpoint: 'main', disabled: false });
    await chain.transfer(BLOCK + 2, 'carol', 'alice');
    await waitFor(() => r.got.length === 3, 3_000, 'the next one');
    expect(r.unique.map((g) => g.body.position)).toEqual([BLOCK, BLOCK + 1, BLOCK + 2]);
  });

  test('a new endpoint starts after the newest block seen: a restart before its first matching op misses nothing', async () => {
    const w = webhooksEnv();
    cleanups.push(() => w.cleanup());
    const chain = await fakeBroadcaster(w);
    cleanups.push(() => chain.bus.close());
    let app = await startApp(w);
    const token = await client(w, 'shop');
    const applied = (block: number) =>
      chain.bus.publish(
        'block.applied',
        { block_num: block, block_id: 'x', timestamp: 't', op_count: 1 },
        { position: block * 1e6 + 999_999 },
      );
    await chain.transfer(BLOCK, 'carol', 'alice');
    await applied(1_000_000);
    const r = await receiver();
    // the app has seen block.applied once a new endpoint gets a chain cursor
    await waitFor(
      async () => {
        const probe = await call(app.url, token, 'PUT', '/v1/endpoints/probe', { url: r.url, events: ['vote'] });
        await call(app.url, token, 'DELETE', '/v1/endpoints/probe');
        return (probe.body.cursors as Record<string, number>).broadcaster !== undefined;
      },
      3_000,
      'the app to see block.applied',
    );
    const put = await call(app.url, token, 'PUT', '/v1/endpoints/main', { url: r.url, events: ['transfer'], filter: { to: 'alice' } });
    expect(put.body.cursors).toEqual({ broadcaster: BLOCK + 999_999 });
    await app.stop();
    await chain.transfer(BLOCK + 1_000_000, 'carol', 'alice'); // block 1,000,001, while the app is down
    app = await startApp(w);
    cleanups.push(() => app.stop());
    await waitFor(() => r.got.length === 1, 3_000, 'the transfer made while the app was down');
    expect(r.got.map((g) => g.body.position)).toEqual([BLOCK + 1_000_000]);
  });

  test('a huge answer is success, read up to a cap and kept truncated; a TLS error is a clear failure; no secret or token is ever logged', async () => {
    const { w, chain, app, token } = await setup({ WEBHOOKS_RETRY_SCHEDULE_MS: '20' });
    const huge = await receiver((_n, _req, res) => void res.writeHead(200).end('x'.repeat(1_000_000)));
    const plain = await receiver();
    await register(app, token, 'huge', huge);
    // TLS to a server that speaks plain HTTP
    const put = await call(app.url, token, 'PUT', '/v1/endpoints/tls', { url: plain.url.replace('http:', 'https:'), events: ['transfer'] });
    expect(put.status).toBe(201);
    await call(app.url, token, 'POST', '/v1/endpoints/tls/replay', { from_position: BLOCK });
    await chain.transfer(BLOCK, 'carol', 'alice');
    await waitFor(async () => (await w.store.endpoint('shop', 'tls'))?.disabled === 1, 3_000, 'tls disabled');
    const hugeLog = (await call(app.url, token, 'GET', '/v1/endpoints/huge/deliveries')).body.deliveries as Array<Record<string, unknown>>;
    expect(hugeLog.map((d) => [d.status, d.error, String(d.response).length])).toEqual([[200, null, 1025]]);
    expect((await call(app.url, token, 'GET', '/v1/endpoints/huge')).body.cursors).toEqual({ broadcaster: BLOCK });
    const tlsLog = (await call(app.url, token, 'GET', '/v1/endpoints/tls/deliveries')).body.deliveries as Array<Record<string, unknown>>;
    expect(tlsLog).toHaveLength(2);
    for (const d of tlsLog) expect(d.error).toMatch(/^could not connect \(/);
    expect(plain.got).toHaveLength(0);
    const logged = JSON.stringify(app.lines);
    expect(logged).not.toContain('whsec_');
    expect(logged).not.toContain(token.split('.')[1]);
    expect(logged).toContain('delivery of transfer');
  });

  test('changing a failing endpoint (a new URL) ends its retry wait: the held event goes to the new URL at once', async () => {
    const { chain, app, token } = await setup({ WEBHOOKS_RETRY_SCHEDULE_MS: '60000' });
    const broken = await receiver(() => 500);
    const fixed = await receiver();
    await register(app, token, 'main', broken);
    await chain.transfer(BLOCK, 'carol', 'alice');
    await waitFor(async () => (await call(app.url, token, 'GET', '/v1/endpoints/main')).body.failing !== null, 3_000, 'failing');
    const started = Date.now();
    const put = await call(app.url, token, 'PUT', '/v1/endpoints/main', { url: fixed.url, events: ['transfer'], filter: { to: 'alice' } });
    expect(put.body).toMatchObject({ url: fixed.url, failing: null });
    fixed.secrets.push(...broken.secrets);
    await waitFor(() => fixed.got.length === 1, 3_000, 'delivered to the new URL');
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(fixed.got[0]).toMatchObject({ verified: true, body: { position: BLOCK } });
    expect(broken.requests).toBe(1);
  });
});
