import { createHmac } from 'node:crypto';
import { lookup as dnsLookup } from 'node:dns';
import http, { type ClientRequest } from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';

import { addressAllowed, guardedLookup, type LookupFunction, RefusedAddressError, urlHost } from '@steem-bot/outbound';

/**
 * The answer of a check_url: send or not, or why there is no answer. `reason` is short and safe
 * to show the client; `detail` (addresses, errors) is for the operator's log only.
 */
export type CheckResult = { send: boolean } | { reason: string; detail: string; refused?: boolean; stopped?: boolean };

export interface CheckOptions {
  url: string;
  id: string;
  metadata: unknown;
  secret: string;
  /** One deadline for everything: DNS, connect, headers and the whole body. */
  timeoutMs: number;
  /** Largest answer read; a longer one is a failed check. */
  maxBytes: number;
  allow: readonly string[];
  now?: number;
  /** Resolves host names (tests inject one; default `dns.lookup`). */
  lookup?: LookupFunction;
  /** Aborts the check (the worker is stopping): settles at once with `stopped`. */
  signal?: AbortSignal;
}

/**
 * Ask the requesting app whether a message is still wanted: POST {id, metadata}, signed the
 * Standard Webhooks way (webhook-id, webhook-timestamp, webhook-signature: v1,base64 HMAC-SHA256
 * of `id.timestamp.body`). The connection goes only to an address that passed the SSRF guard;
 * redirects are not followed. Always settles, at the latest when `timeoutMs` has passed.
 */
export function checkStillWanted(options: CheckOptions): Promise<CheckResult> {
  const body = JSON.stringify({ id: options.id, metadata: options.metadata ?? null });
  const timestamp = Math.floor((options.now ?? Date.now()) / 1000).toString();
  const key = Buffer.from(options.secret.replace(/^whsec_/, ''), 'base64');
  const signature = createHmac('sha256', key).update(`${options.id}.${timestamp}.${body}`).digest('base64');
  let url: URL;
  try {
    url = new URL(options.url);
  } catch {
    return Promise.resolve({ reason: 'invalid URL', detail: `invalid URL ${options.url}`, refused: true });
  }
  return new Promise((resolve) => {
    // Set once the request exists; `settle` may run before (a refused address, a stop).
    const pending: { req?: ClientRequest } = {};
    let settled = false;
    const settle = (result: CheckResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      options.signal?.removeEventListener('abort', onAbort);
      pending.req?.destroy();
      resolve(result);
    };
    const fail = (reason: string, detail = reason, extra: { refused?: boolean; stopped?: boolean } = {}): void =>
      settle({ reason, detail, ...extra });
    // A hard deadline, not an idle timeout: a server dripping a byte a second cannot hold a check.
    const deadline = setTimeout(() => fail(`no answer within ${options.timeoutMs} ms`), options.timeoutMs);
    const onAbort = (): void => fail('the worker stopped', 'the worker stopped', { stopped: true });
    if (options.signal?.aborted) return onAbort();
    options.signal?.addEventListener('abort', onAbort, { once: true });

    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      return fail('only http and https are allowed', url.protocol, { refused: true });
    const host = urlHost(url);
    // IP literals skip `lookup`: check them here.
    if (isIP(host) !== 0 && !addressAllowed(host, host, options.allow)) {
      return fail('address not allowed', `${host} is a special-purpose address MAILER_CHECK_ALLOW does not list`, { refused: true });
    }
    const req = (url.protocol === 'https:' ? https : http).request(url, {
      method: 'POST',
      agent: false, // a fresh connection, so the guard sees every request's address
      headers: {
        'content-type': 'application/json',
        'webhook-id': options.id,
        'webhook-timestamp': timestamp,
        'webhook-signature': `v1,${signature}`,
      },
      lookup: guardedLookup(
        host,
        options.allow,
        options.lookup ?? (dnsLookup as unknown as LookupFunction),
        'MAILER_CHECK_ALLOW',
      ) as unknown as typeof dnsLookup,
    });
    pending.req = req;
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      if (status < 200 || status >= 300)
        return fail(`HTTP ${status}${status >= 300 && status < 400 ? ' (redirects are not followed)' : ''}`);
      const chunks: Buffer[] = [];
      let size = 0;
      const tooLarge = (): void => fail(`answer larger than ${options.maxBytes} bytes`);
      if (Number(res.headers['content-length'] ?? 0) > options.maxBytes) return tooLarge();
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > options.maxBytes) tooLarge();
        else chunks.push(c);
      });
      res.on('end', () => {
        try {
          const answer = JSON.parse(Buffer.concat(chunks).toString()) as { send?: unknown } | null;
          if (typeof answer?.send === 'boolean') return settle({ send: answer.send });
        } catch {
          // not JSON: the same answer as JSON without `send`
        }
        fail('answer without {"send": true|false}');
      });
      // The server closed before the end of the body (a truncated answer).
      res.on('aborted', () => fail('answer cut short'));
      res.on('error', (err) => fail('answer cut short', err.message));
      res.on('close', () => {
        if (!res.complete) fail('answer cut short');
      });
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err instanceof RefusedAddressError) return fail('address not allowed', err.message, { refused: true });
      if (err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN') return fail('host not found', err.message);
      fail(`could not connect (${err.code ?? 'error'})`, err.message);
    });
    req.on('close', () => setImmediate(() => fail('connection closed without an answer')));
    req.end(body);
  });
}
