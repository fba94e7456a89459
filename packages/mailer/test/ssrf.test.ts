import type { LookupAddress } from 'node:dns';
import { createServer, type Server } from 'node:http';
import { type AddressInfo, isIP } from 'node:net';

import { checkStillWanted, guardedLookup, literalHostRefused, type LookupFunction } from '../src';
import { call, client, mailerEnv, startApi } from './helpers';

// [url, refused?, what a host name resolves to (send time only; REST accepts every host name)]
type Row = [url: string, refused: boolean, resolvesTo?: string[]];
const table: Row[] = [
  // IPv4 special-purpose ranges, in every spelling the WHATWG URL parser accepts
  ['http://127.0.0.1/', true],
  ['http://127.255.255.254:8080/x', true],
  ['http://2130706433/', true],
  ['http://0x7f.1/', true],
  ['http://0177.0.0.1/', true],
  ['http://127.1/', true],
  ['http://0/', true],
  ['http://0.0.0.0/', true],
  ['http://10.1.2.3/', true],
  ['https://0x0a000001/', true],
  ['http://172.16.0.1/', true],
  ['http://172.31.255.255/', true],
  ['http://192.168.1.1/', true],
  ['http://169.254.169.254/latest/meta-data', true],
  ['http://100.64.0.1/', true],
  ['http://100.127.255.255/', true],
  ['http://198.18.0.1/', true],
  ['http://198.19.255.255/', true],
  ['http://192.0.0.8/', true],
  ['http://192.0.2.1/', true],
  ['http://198.51.100.7/', true],
  ['http://203.0.113.9/', true],
  ['http://224.0.0.1/', true],
  ['http://239.255.255.250/', true],
  ['http://240.0.0.1/', true],
  ['http://255.255.255.255/', true],
  // IPv6 special-purpose ranges and embeddings of blocked IPv4 addresses
  ['http://[::1]/', true],
  ['http://[::]/', true],
  ['http://[fc00::1]/', true],
  ['http://[fd12:3456::1]/', true],
  ['http://[fe80::1]/', true],
  ['http://[fec0::1]/', true],
  ['http://[ff02::1]/', true],
  ['http://[100::1]/', true],
  ['http://[2001:db8::1]/', true],
  ['http://[2001::1]/', true],
  ['http://[::ffff:127.0.0.1]/', true],
  ['http://[::ffff:10.0.0.1]/', true],
  ['http://[::ffff:a9fe:a9fe]/', true],
  ['http://[::127.0.0.1]/', true],
  ['http://[::10.0.0.1]/', true],
  ['http://[::ffff:0:a00:1]/', true],
  ['http://[64:ff9b::127.0.0.1]/', true],
  ['http://[64:ff9b::a9fe:a9fe]/', true],
  ['http://[64:ff9b:1::808:808]/', true],
  ['http://[2002:7f00:1::]/', true],
  ['http://[2002:c0a8:101::1]/', true],
  // public addresses pass, also in odd spellings and as embeddings of public IPv4
  ['http://8.8.8.8/', false],
  ['https://1.1.1.1/check', false],
  ['http://93.184.215.14:8080/x', false],
  ['http://134744072/', false],
  ['http://0x08.0x08.0x08.0x08/', false],
  ['http://100.63.255.255/', false],
  ['http://100.128.0.1/', false],
  ['http://172.32.0.1/', false],
  ['http://198.20.0.1/', false],
  ['http://223.255.255.255/', false],
  ['http://11.0.0.1/', false],
  ['http://[2606:4700:4700::1111]/', false],
  ['http://[2001:4860:4860::8888]/', false],
  ['http://[2a00:1450:4001::200e]/', false],
  ['http://[::ffff:8.8.8.8]/', false],
  ['http://[64:ff9b::8.8.8.8]/', false],
  ['http://[2002:808:808::1]/', false],
  // host names: the REST API cannot know; at send time every address they resolve to counts
  ['https://public.example/check', false, ['93.184.215.14']],
  ['https://v6.example/check', false, ['2606:4700::1']],
  ['https://dual.example/check', false, ['93.184.215.14', '2606:4700::1']],
  ['https://mapped-public.example/', false, ['::ffff:8.8.8.8']],
  ['https://internal.example/', true, ['10.0.0.5']],
  ['https://metadata.example/', true, ['169.254.169.254']],
  ['https://loop6.example/', true, ['::1']],
  ['https://mapped.example/', true, ['::ffff:127.0.0.1']],
  ['https://nat64.example/', true, ['64:ff9b::c0a8:1']],
  ['https://sixtofour.example/', true, ['2002:a00:1::']],
  ['https://mixed.example/', true, ['8.8.8.8', '10.0.0.1']],
  ['https://nothing.example/', true, []],
];

const isHostName = (url: string): boolean => isIP(new URL(url).hostname.replace(/^\[|\]$/g, '')) === 0;

/** A resolver that answers from the table (no DNS here). */
function fakeResolver(answers: Record<string, string[]>): LookupFunction {
  return (hostname, _options, callback) => {
    const found = answers[hostname];
    if (!found) return callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), []);
    callback(
      null,
      found.map((address): LookupAddress => ({ address, family: isIP(address) })),
    );
  };
}

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

describe('SSRF guard of check_url', () => {
  test(`a table of ${table.length} addresses and URLs: REST refuses blocked literals (400) and accepts public ones; the send-time check agrees`, async () => {
    expect(table.length).toBeGreaterThanOrEqual(40);
    const m = mailerEnv({ MAILER_RATE_LIMIT: '10000', MAILER_CHECK_ALLOW: '' });
    const api = await startApi(m);
    try {
      const { token } = client(m, 'shop');
      const got: Array<[string, string, string]> = [];
      for (const [url, , resolvesTo] of table) {
        const res = await call(api.url, token, 'POST', '/v1/messages', { to: 'bob@example.com', subject: 's', text: 't', check_url: url });
        const rest =
          res.status === 202
            ? 'accepted'
            : res.status === 400
              ? `400 ${String((res.body.error as { fields?: Array<{ path: string }> }).fields?.[0]?.path)}`
              : String(res.status);
        const sendTime = isHostName(url) ? await sendTimeRefused(url, resolvesTo ?? []) : literalHostRefused(url, []);
        got.push([url, rest, sendTime ? 'refused' : 'allowed']);
      }
      const expected = table.map(([url, refused]): [string, string, string] => [
        url,
        refused && !isHostName(url) ? '400 check_url' : 'accepted',
        refused ? 'refused' : 'allowed',
      ]);
      expect(got).toEqual(expected);
    } finally {
      await api.stop();
      m.cleanup();
    }
  });

  test('MAILER_CHECK_ALLOW lets listed hosts and IPs through, in any spelling; nothing else', async () => {
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

  describe('checkStillWanted never connects to a refused address', () => {
    let server: Server;
    let hits = 0;
    beforeAll(async () => {
      server = createServer((_req, res) => {
        hits++;
        res.writeHead(302, { location: '/elsewhere' }).end();
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    });
    afterAll(() => new Promise((r) => server.close(r)));

    test('loopback in every spelling, by literal or by name, is refused before any connection; redirects are not followed', async () => {
      const port = (server.address() as AddressInfo).port;
      const lookup = fakeResolver({
        'loop.example': ['127.0.0.1'],
        'mapped.example': ['::ffff:127.0.0.1'],
        'two.example': ['93.184.215.14', '127.0.0.1'],
      });
      const check = (url: string, allow: string[] = []) =>
        checkStillWanted({ url, id: 'm1', metadata: null, secret: 'whsec_AAAA', timeoutMs: 2_000, maxBytes: 1024, allow, lookup });
      for (const host of [
        '127.0.0.1',
        '2130706433',
        '0x7f.1',
        '127.1',
        '[::ffff:127.0.0.1]',
        '[::ffff:7f00:1]',
        'loop.example',
        'mapped.example',
        'two.example',
      ]) {
        expect(await check(`http://${host}:${port}/check`)).toMatchObject({ reason: 'address not allowed', refused: true });
      }
      expect(await check(`http://unknown.example:${port}/check`)).toMatchObject({ reason: 'host not found' });
      expect(hits).toBe(0);
      // allow-listed: reached, but a redirect is an answer, not followed
      expect(await check(`http://loop.example:${port}/check`, ['loop.example'])).toMatchObject({
        reason: 'HTTP 302 (redirects are not followed)',
      });
      expect(hits).toBe(1);
    });
  });
});
