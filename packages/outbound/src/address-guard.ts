import type { LookupAddress, LookupOptions } from 'node:dns';
import { BlockList, isIP } from 'node:net';

// The SSRF guard of outbound HTTP to user-given URLs (the mailer's check_url, webhook deliveries).
// Ported from the mailer's hardened check_url guard; keep the two in step until the mailer uses this. Two lists, one per family: an IPv6 rule like ::ffff:0:0/96 in a
// shared list would match every IPv4 address (Node checks IPv4 against IPv6 rules in mapped
// form). IPv6 addresses that embed an IPv4 address are unpacked and the IPv4 address is checked.
const blockedV4 = new BlockList();
const blockedV6 = new BlockList();

// IANA special-purpose registries: every range that is not globally reachable, plus multicast.
for (const [net, bits] of [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8], // private
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local (cloud metadata)
  ['172.16.0.0', 12], // private
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // documentation
  ['192.88.99.0', 24], // 6to4 relay anycast (deprecated)
  ['192.168.0.0', 16], // private
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // documentation
  ['203.0.113.0', 24], // documentation
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, and 255.255.255.255
] as const) {
  blockedV4.addSubnet(net, bits, 'ipv4');
}
for (const [net, bits] of [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['64:ff9b:1::', 48], // local-use NAT64: its embedding is site-specific, and it is not globally reachable
  ['100::', 64], // discard-only
  ['2001::', 23], // IETF protocol assignments (Teredo, benchmarking, ORCHID)
  ['2001:db8::', 32], // documentation
  ['3fff::', 20], // documentation
  ['5f00::', 16], // SRv6 SIDs
  ['fc00::', 7], // unique-local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated)
  ['ff00::', 8], // multicast
] as const) {
  blockedV6.addSubnet(net, bits, 'ipv6');
}

/** The eight 16-bit words of a valid IPv6 address (a trailing dotted quad and a zone allowed). */
function ipv6Words(ip: string): number[] {
  let text = (ip.split('%')[0] as string).toLowerCase();
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const first = head === '' ? [] : head.split(':');
  const last = tail === undefined || tail === '' ? [] : tail.split(':');
  const words = tail === undefined ? first : [...first, ...Array<string>(8 - first.length - last.length).fill('0'), ...last];
  return words.map((w) => parseInt(w, 16));
}

const dottedQuad = (high: number, low: number): string => `${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`;

/** The IPv4 address an IPv6 address carries (mapped, compatible, SIIT, NAT64 /96, 6to4), if any. */
export function embeddedIpv4(ip: string): string | undefined {
  const w = ipv6Words(ip) as [number, number, number, number, number, number, number, number];
  const zeros = (from: number, to: number): boolean => w.slice(from, to).every((x) => x === 0);
  if (zeros(0, 5) && (w[5] === 0xffff || w[5] === 0)) return dottedQuad(w[6], w[7]); // ::ffff:a.b.c.d, ::a.b.c.d
  if (zeros(0, 4) && w[4] === 0xffff && w[5] === 0) return dottedQuad(w[6], w[7]); // ::ffff:0:a.b.c.d (SIIT)
  if (w[0] === 0x64 && w[1] === 0xff9b && zeros(2, 6)) return dottedQuad(w[6], w[7]); // 64:ff9b::a.b.c.d
  if (w[0] === 0x2002) return dottedQuad(w[1], w[2]); // 6to4: 2002:aabb:ccdd::/48
  return undefined;
}

/** Whether an IP address is special-purpose (loopback, private, link-local, ...) in any spelling. */
export function addressBlocked(ip: string): boolean {
  const family = isIP(ip);
  if (family === 4) return blockedV4.check(ip, 'ipv4');
  if (family !== 6) return true; // not an address at all
  if (blockedV6.check(ip.split('%')[0] as string, 'ipv6')) return true;
  const v4 = embeddedIpv4(ip);
  // :: and ::1 are caught above; ::0.0.0.2 and the like are "this network" addresses.
  return v4 !== undefined && blockedV4.check(v4, 'ipv4');
}

/** One spelling of an address or host name, to compare against an allow list. */
function canonical(hostOrIp: string): string {
  const bare = hostOrIp.replace(/^\[|\]$/g, '').toLowerCase();
  if (isIP(bare) === 6) return ipv6Words(bare).join(':');
  return bare.replace(/\.$/, '');
}

/** Whether `address` (an IP) may be reached for `host`: public, or allow-listed by host name or IP. */
export function addressAllowed(address: string, host: string, allow: readonly string[]): boolean {
  const listed = new Set(allow.map(canonical));
  if (listed.has(canonical(host)) || listed.has(canonical(address))) return true;
  return !addressBlocked(address);
}

/** The host of a URL without IPv6 brackets; the WHATWG parser already turned `2130706433` or `0x7f.1` into dotted IPv4. */
export const urlHost = (url: URL): string => url.hostname.replace(/^\[|\]$/g, '');

/** Whether a URL may never be called: not http(s), or a literal IP that may not be reached. Throws on an unparsable URL. */
export function literalHostRefused(url: string, allow: readonly string[]): boolean {
  const parsed = new URL(url);
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return true;
  const host = urlHost(parsed);
  return isIP(host) !== 0 && !addressAllowed(host, host, allow);
}

/**
 * Why a user-given URL is refused at registration, or undefined if it may be stored: not a URL,
 * not http(s), user name or password in it, or a literal special-purpose IP not in `allow`.
 * Host names are checked again at every request, on the addresses they resolve to.
 */
export function urlProblem(url: string, allow: readonly string[]): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'not a valid URL';
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return 'only http and https URLs are allowed';
  if (parsed.username !== '' || parsed.password !== '') return 'URLs with a user name or password are refused';
  if (parsed.hostname === '') return 'the URL has no host';
  if (literalHostRefused(url, allow)) return 'private, loopback, link-local and other special-purpose addresses are refused';
  return undefined;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;
/** Node's `dns.lookup` shape, as `http.request` calls it (always with options). */
export type LookupFunction = (hostname: string, options: LookupOptions, callback: LookupCallback) => void;

/** Why a guarded lookup refused a host (for the operator's log; clients get a short reason). */
export class RefusedAddressError extends Error {
  readonly code = 'EREFUSEDADDRESS';
}

/**
 * A `lookup` for `http.request` that resolves every address of the host with `resolve` and
 * refuses the host if any of them may not be reached. The connection then goes only to an
 * address that passed, so DNS cannot swap it after the check.
 */
export function guardedLookup(
  host: string,
  allow: readonly string[],
  resolve: LookupFunction,
  allowName = 'the allow list',
): LookupFunction {
  return (hostname, options, callback) => {
    resolve(hostname, { ...options, all: true }, (err, found) => {
      const fail = (e: NodeJS.ErrnoException): void => (options.all ? callback(e, []) : callback(e, '', 0));
      if (err) return fail(err);
      const addresses = (Array.isArray(found) ? found : [{ address: found, family: isIP(found) }]) as LookupAddress[];
      const bad = addresses.find((a) => !addressAllowed(a.address, host, allow));
      if (bad || addresses.length === 0) {
        return fail(
          new RefusedAddressError(
            bad
              ? `${hostname} resolves to ${bad.address}, a special-purpose address ${allowName} does not list`
              : `${hostname} resolves to nothing`,
          ),
        );
      }
      // Node asks for every address (happy eyeballs) or for one, depending on its version and options.
      if (options.all) callback(null, addresses);
      else callback(null, (addresses[0] as LookupAddress).address, (addresses[0] as LookupAddress).family);
    });
  };
}
