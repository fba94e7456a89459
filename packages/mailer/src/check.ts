import { createHmac } from 'node:crypto';
import { lookup, type LookupAddress, type LookupOptions } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import { BlockList, isIP } from 'node:net';

// Addresses a check_url may not reach unless allow-listed: loopback, private, link-local,
// carrier-grade NAT, unspecified, multicast, and IPv6 unique-local / mapped equivalents.
const blocked = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  blocked.addSubnet(net, bits, 'ipv4');
for (const [net, bits] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
  ['::ffff:0:0', 96],
] as const)
  blocked.addSubnet(net, bits, 'ipv6');

/** Whether `address` (an IP) may be reached: public, or allow-listed by host name or IP. */
export function addressAllowed(address: string, host: string, allow: readonly string[]): boolean {
  if (allow.includes(host) || allow.includes(address)) return true;
  const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
  return !blocked.check(address, family);
}

/** Refuse a check_url whose host is a literal IP that may not be reached (checked again at send time). */
export function literalHostRefused(url: string, allow: readonly string[]): boolean {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
  return isIP(host) !== 0 && !addressAllowed(host, host, allow);
}

export type CheckResult = { send: boolean } | { error: string; refused?: boolean };

/**
 * Ask the requesting app whether a message is still wanted: POST {id, metadata}, signed the
 * Standard Webhooks way (webhook-id, webhook-timestamp, webhook-signature: v1,base64 HMAC-SHA256
 * of `id.timestamp.body`). The connection goes only to an address that passed the SSRF guard.
 */
export function checkStillWanted(options: {
  url: string;
  id: string;
  metadata: unknown;
  secret: string;
  timeoutMs: number;
  allow: readonly string[];
  now?: number;
}): Promise<CheckResult> {
  const body = JSON.stringify({ id: options.id, metadata: options.metadata ?? null });
  const timestamp = Math.floor((options.now ?? Date.now()) / 1000).toString();
  const key = Buffer.from(options.secret.replace(/^whsec_/, ''), 'base64');
  const signature = createHmac('sha256', key).update(`${options.id}.${timestamp}.${body}`).digest('base64');
  const url = new URL(options.url);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  let refused = false;
  return new Promise((resolve) => {
    const req = (url.protocol === 'https:' ? https : http).request(
      url,
      {
        method: 'POST',
        timeout: options.timeoutMs,
        agent: false, // a fresh connection, so the guard below sees every request's address
        headers: {
          'content-type': 'application/json',
          'webhook-id': options.id,
          'webhook-timestamp': timestamp,
          'webhook-signature': `v1,${signature}`,
        },
        // The guard runs on the address actually connected to, so DNS cannot swap it afterwards.
        lookup: ((hostname: string, opts: LookupOptions, callback: (err: Error | null, address: unknown, family?: number) => void) => {
          lookup(hostname, { ...opts, all: true }, (err, addresses) => {
            if (err) return callback(err, opts.all ? [] : '', 0);
            const bad = addresses.find((a) => !addressAllowed(a.address, host, options.allow));
            if (bad || addresses.length === 0) {
              refused = true;
              const why = bad
                ? `resolves to ${bad.address}, a private, loopback or link-local address that MAILER_CHECK_ALLOW does not list`
                : 'resolves to nothing';
              return callback(new Error(`${hostname} ${why}`), opts.all ? [] : '', 0);
            }
            // Node asks for every address (happy eyeballs) or for one, depending on its version and options.
            if (opts.all) callback(null, addresses);
            else callback(null, (addresses[0] as LookupAddress).address, (addresses[0] as LookupAddress).family);
          });
        }) as unknown as typeof lookup,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > 64 * 1024) req.destroy(new Error('check_url answer larger than 64 KiB'));
          else chunks.push(c);
        });
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          if (status < 200 || status >= 300) return resolve({ error: `check_url answered HTTP ${status}` });
          try {
            const answer = JSON.parse(Buffer.concat(chunks).toString()) as { send?: unknown };
            if (typeof answer.send === 'boolean') return resolve({ send: answer.send });
          } catch {
            // fall through
          }
          resolve({ error: 'check_url answered without {"send": true|false}' });
        });
      },
    );
    // IP literals skip `lookup`: check them here.
    if (isIP(host) !== 0 && !addressAllowed(host, host, options.allow)) {
      req.destroy();
      return resolve({
        error: `${host} is a private, loopback or link-local address that MAILER_CHECK_ALLOW does not list`,
        refused: true,
      });
    }
    req.on('timeout', () => req.destroy(new Error(`check_url did not answer within ${options.timeoutMs} ms`)));
    req.on('error', (err) => resolve({ error: err.message, ...(refused ? { refused: true } : {}) }));
    req.end(body);
  });
}
