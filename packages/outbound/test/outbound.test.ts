import type { LookupAddress } from 'node:dns';
import { Agent, createServer, type Server } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { AddressInfo } from 'node:net';

import { isHostName, ssrfTable, tableResolver } from '@steem-bot/testkit';

import { guardedLookup, literalHostRefused, type LookupFunction, outboundRequest, standardSignature, urlProblem } from '../src';

// The address table is shared with the other packages' SSRF tests (testkit).
const table = ssrfTable;
const fakeResolver = (answers: Record<string, string[]>): LookupFunction => tableResolver(answers) as LookupFunction;

/** The send-time decision for a host name: what the guarded lookup does with its addresses. */
function sendTimeRefused(url: string, resolvesTo: string[], allow: string[] = []): Promise<boolean> {
  const host = new URL(url).hostname;
  const lookup = guardedLookup(host, allow, fakeResolver({ [host]: resolvesTo }));
  return new Promise((resolve) => {
    lookup(host, { all: true }, (err, addresses) => {
      if (!err) expect((addresses as LookupAddress[]).map((a) => a.address)).toEqual(resolvesTo);
      resolve(err !== null);
    });
  });
}

describe('the address guard', () => {
  test(`a table of ${table.length} URLs: literals refused at registration and at request time alike; host names on what they resolve to`, async () => {
    expect(table.length).toBeGreaterThanOrEqual(70);
    const got: Array<[string, string, string]> = [];
    for (const [url, , resolvesTo] of table) {
      const registration = urlProblem(url, []) === undefined ? 'accepted' : 'refused';
      const requestTime = isHostName(url) ? await sendTimeRefused(url, resolvesTo ?? []) : literalHostRefused(url, []);
      got.push([url, registration, requestTime ? 'refused' : 'allowed']);
    }
    const expected = table.map(([url, refused]): [string, string, string] => [
      url,
      refused && !isHostName(url) ? 'refused' : 'accepted',
      refused ? 'refused' : 'allowed',
    ]);
    expect(got).toEqual(expected);
  });

  test('an allow list lets listed hosts and IPs through, in any spelling; nothing else', async () => {
    const allow = ['127.0.0.1', '::1', 'intranet.example'];
    expect(literalHostRefused('http://127.0.0.1:8080/', allow)).toBe(false);
    expect(literalHostRefused('http://2130706433/', allow)).toBe(false);
    expect(literalHostRefused('http://[0:0::1]/', allow)).toBe(false);
    expect(literalHostRefused('http://127.0.0.2/', allow)).toBe(true);
    expect(literalHostRefused('http://10.0.0.1/', allow)).toBe(true);
    expect(literalHostRefused('ftp://8.8.8.8/', allow)).toBe(true);
    expect(await sendTimeRefused('http://intranet.example/', ['10.1.1.1'], allow)).toBe(false);
    expect(await sendTimeRefused('http://other.example/', ['10.1.1.1'], allow)).toBe(true);
  });

  test('urlProblem refuses credentials, odd schemes and non-URLs', () => {
    expect(urlProblem('https://user:pw@8.8.8.8/', [])).toMatch(/user name or password/);
    expect(urlProblem('https://user@example.com/', [])).toMatch(/user name or password/);
    for (const url of ['ftp://example.com/', 'file:///etc/passwd', 'javascript:alert(1)', 'gopher://example.com/', 'data:text/plain,x'])
      expect(urlProblem(url, [])).toMatch(/only http and https/);
    for (const url of ['', 'example.com', 'http//x', '://x']) expect(urlProblem(url, [])).toBe('not a valid URL');
    expect(urlProblem('https://hooks.example.com:8443/x?y=1', [])).toBeUndefined();
    expect(urlProblem('http://127.0.0.1:9/', ['127.0.0.1'])).toBeUndefined();
  });
});

describe('outboundRequest', () => {
  let server: Server;
  let hits = 0;
  const port = (): number => (server.address() as AddressInfo).port;
  beforeAll(async () => {
    server = createServer((req, res) => {
      hits++;
      if (req.url === '/redirect') return void res.writeHead(302, { location: '/ok' }).end();
      if (req.url === '/big') return void res.writeHead(200).end('x'.repeat(100_000));
      if (req.url === '/drip') {
        res.writeHead(200);
        const timer = setInterval(() => res.write('x'), 50);
        res.on('close', () => clearInterval(timer));
        return;
      }
      if (req.url === '/never') return;
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => res.writeHead(201, { 'content-type': 'text/plain' }).end(`got ${body}`));
      return undefined;
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  });
  afterAll(() => new Promise((r) => server.close(r)));
  const lookup = fakeResolver({
    'loop.example': ['127.0.0.1'],
    'mapped.example': ['::ffff:127.0.0.1'],
    'two.example': ['93.184.215.14', '127.0.0.1'],
  });
  const send = (path: string, extra: Partial<Parameters<typeof outboundRequest>[0]> = {}) =>
    outboundRequest({
      url: `http://127.0.0.1:${port()}${path}`,
      body: 'hi',
      timeoutMs: 1_000,
      maxBytes: 1024,
      allow: ['127.0.0.1'],
      lookup,
      ...extra,
    });

  test('loopback in every spelling, by literal or by name, is refused before any connection', async () => {
    const before = hits;
    for (const host of [
      '127.0.0.1',
      '2130706433',
      '0x7f.1',
      '127.1',
      '[::ffff:127.0.0.1]',
      'loop.example',
      'mapped.example',
      'two.example',
    ]) {
      const result = await outboundRequest({ url: `http://${host}:${port()}/`, timeoutMs: 1_000, maxBytes: 1024, allow: [], lookup });
      expect(result).toMatchObject({ ok: false, reason: 'address not allowed', refused: true });
    }
    expect(
      await outboundRequest({ url: `http://u:p@127.0.0.1:${port()}/`, timeoutMs: 1_000, maxBytes: 10, allow: ['127.0.0.1'] }),
    ).toMatchObject({
      ok: false,
      refused: true,
    });
    expect(
      await outboundRequest({ url: `http://unknown.example:${port()}/`, timeoutMs: 1_000, maxBytes: 10, allow: [], lookup }),
    ).toMatchObject({
      ok: false,
      reason: 'host not found',
    });
    expect(hits).toBe(before);
  });

  test('an allow-listed target answers; redirects are returned, not followed', async () => {
    expect(await send('/echo')).toMatchObject({ ok: true, status: 201, truncated: false });
    expect(((await send('/echo')) as { body: Buffer }).body.toString()).toBe('got hi');
    const before = hits;
    expect(await send('/redirect')).toMatchObject({ ok: true, status: 302 });
    expect(hits).toBe(before + 1);
    expect(await send('/echo', { url: `http://loop.example:${port()}/echo`, allow: ['loop.example'] })).toMatchObject({ status: 201 });
  });

  test('a large answer fails, or is truncated when asked; one total deadline holds against a drip and a silence', async () => {
    expect(await send('/big')).toMatchObject({ ok: false, reason: 'answer larger than 1024 bytes' });
    const cut = await send('/big', { tooLarge: 'truncate' });
    expect(cut).toMatchObject({ ok: true, status: 200, truncated: true });
    expect((cut as { body: Buffer }).body.length).toBe(1024);
    for (const path of ['/drip', '/never']) {
      const started = Date.now();
      expect(await send(path, { maxBytes: 1_000_000, timeoutMs: 300 })).toMatchObject({ ok: false, reason: 'no answer within 300 ms' });
      expect(Date.now() - started).toBeLessThan(1_000);
    }
    const controller = new AbortController();
    const pending = send('/never', { signal: controller.signal });
    controller.abort();
    expect(await pending).toMatchObject({ ok: false, stopped: true });
  });

  test("keep-alive agents: one connection reused; a reused one the server drops as a request goes out is retried once on a fresh one; a fresh one's reset is not retried; the guard still refuses", async () => {
    const sockets = new Set<unknown>();
    const perSocket = new Map<unknown, number>();
    let drop: 'second-on-socket' | 'first-on-socket' | 'none' = 'none';
    let requests = 0;
    const keep = createServer((req, res) => {
      requests++;
      sockets.add(req.socket);
      const n = (perSocket.get(req.socket) ?? 0) + 1;
      perSocket.set(req.socket, n);
      // As a server closing an idle connection at the moment the next request arrives on it.
      if ((drop === 'second-on-socket' && n === 2) || (drop === 'first-on-socket' && n === 1)) return void req.socket.destroy();
      req.resume();
      req.on('end', () => res.writeHead(200).end('ok'));
    });
    await new Promise<void>((r) => keep.listen(0, '127.0.0.1', r));
    const agents = { http: new Agent({ keepAlive: true }), https: new HttpsAgent({ keepAlive: true }) };
    try {
      const url = `http://127.0.0.1:${(keep.address() as AddressInfo).port}/hook`;
      const post = () => outboundRequest({ url, body: 'x', timeoutMs: 2_000, maxBytes: 64, allow: ['127.0.0.1'], agents });
      for (let i = 0; i < 3; i++) expect(await post()).toMatchObject({ ok: true, status: 200 });
      expect([sockets.size, requests]).toEqual([1, 3]);

      drop = 'second-on-socket';
      agents.http.destroy(); // start from no connection
      await post(); // a new connection (its 1st request)
      expect(await post()).toMatchObject({ ok: true, status: 200 }); // its 2nd: dropped, sent again on a fresh one
      expect([sockets.size, requests]).toEqual([3, 6]);

      drop = 'first-on-socket';
      agents.http.destroy();
      expect(await post()).toMatchObject({ ok: false, reason: expect.stringContaining('ECONNRESET') });
      expect(requests).toBe(7); // not retried: the server may have acted on it

      const refused = await outboundRequest({ url: 'http://127.0.0.2:9/hook', body: 'x', timeoutMs: 500, maxBytes: 64, allow: [], agents });
      expect(refused).toMatchObject({ ok: false, refused: true });
    } finally {
      agents.http.destroy();
      keep.closeAllConnections();
      await new Promise((r) => keep.close(r));
    }
  });

  test('standardSignature signs id.timestamp.body with the whsec_ key bytes', () => {
    // The example of the Standard Webhooks specification.
    const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    const body = '{"test": 2432232314}';
    expect(standardSignature(secret, 'msg_p5jXN8AQM9LWM0D4loKWxJek', '1614265330', body)).toBe(
      'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
    );
  });
});
