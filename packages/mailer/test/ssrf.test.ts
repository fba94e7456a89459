import type { LookupAddress } from 'node:dns';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { isHostName, ssrfTable, tableResolver } from '@steem-bot/testkit';

import { checkStillWanted, guardedLookup, literalHostRefused, type LookupFunction } from '../src';
import { call, client, mailerEnv, startApi } from './helpers';

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
