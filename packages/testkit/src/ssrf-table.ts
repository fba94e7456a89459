import type { LookupAddress } from 'node:dns';
import { isIP } from 'node:net';

/** One row of the SSRF address table: a URL, whether the guard refuses it, and what its host name resolves to. */
export type SsrfRow = [url: string, refused: boolean, resolvesTo?: string[]];

/**
 * The SSRF guard's address table, shared by the tests of @steem-bot/outbound and of every app
 * that takes user-given URLs (the mailer's check_url, webhooks): [url, refused?, what a host name
 * resolves to (at request time only; a host name's addresses cannot be known at registration)].
 */
export const ssrfTable: readonly SsrfRow[] = [
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

/** Whether the URL names its host by name (not an IP literal). */
export const isHostName = (url: string): boolean => isIP(new URL(url).hostname.replace(/^\[|\]$/g, '')) === 0;

/** A resolver that answers from a table (no DNS in tests), with `dns.lookup`'s `{all: true}` callback. */
export function tableResolver(
  answers: Record<string, string[]>,
): (hostname: string, options: unknown, callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void) => void {
  return (hostname, _options, callback) => {
    const found = answers[hostname];
    if (!found) return callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), []);
    callback(
      null,
      found.map((address): LookupAddress => ({ address, family: isIP(address) })),
    );
  };
}
