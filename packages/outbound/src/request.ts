import { lookup as dnsLookup } from 'node:dns';
import http, { type ClientRequest, type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';

import { addressAllowed, guardedLookup, type LookupFunction, RefusedAddressError, urlHost } from './address-guard';

export interface OutboundOptions {
  url: string;
  /** Default POST. */
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** One deadline for everything: DNS, connect, headers and the whole body. */
  timeoutMs: number;
  /** Largest answer body read. */
  maxBytes: number;
  /** `fail` (default): a longer answer is a failure; `truncate`: keep the first `maxBytes` and stop reading. */
  tooLarge?: 'fail' | 'truncate';
  /** Hosts or IPs that may be reached although special-purpose (e.g. `127.0.0.1`). */
  allow: readonly string[];
  /** The allow list's variable name, for the operator's log (e.g. `WEBHOOKS_ALLOW`). */
  allowName?: string;
  /** Resolves host names (tests inject one; default `dns.lookup`). */
  lookup?: LookupFunction;
  /** Aborts the request: settles at once with `stopped`. */
  signal?: AbortSignal;
  /**
   * Keep-alive agents owned by the caller (default: a fresh connection per request). A connection
   * is only ever opened through the guard, so a reused one goes to an address that passed; a
   * request on a reused connection that the server had just closed is sent once more on a fresh one.
   */
  agents?: { http: http.Agent; https: https.Agent };
}

/** An answer of any status (redirects are answers too: they are never followed). */
export interface OutboundResponse {
  ok: true;
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** The body was longer than `maxBytes` (only with `tooLarge: 'truncate'`). */
  truncated: boolean;
}

/**
 * No answer. `reason` is short and safe to show a client; `detail` (addresses, errors) is for the
 * operator's log only. `refused`: the SSRF guard refused the target; `stopped`: the signal aborted.
 */
export interface OutboundFailure {
  ok: false;
  reason: string;
  detail: string;
  refused?: boolean;
  stopped?: boolean;
}

export type OutboundResult = OutboundResponse | OutboundFailure;

/**
 * One HTTP request to a user-given URL. The connection goes only to an address that passed the
 * SSRF guard (IP literals checked here, host names on every address they resolve to), on a fresh
 * connection or one of the caller's keep-alive agents; redirects are returned, not followed. Always settles, at the latest when
 * `timeoutMs` has passed; never rejects.
 */
export function outboundRequest(options: OutboundOptions): Promise<OutboundResult> {
  let url: URL;
  try {
    url = new URL(options.url);
  } catch {
    return Promise.resolve({ ok: false, reason: 'invalid URL', detail: 'invalid URL', refused: true });
  }
  const allowName = options.allowName ?? 'the allow list';
  return new Promise((resolve) => {
    let req: ClientRequest | undefined;
    let settled = false;
    /** `keep`: the answer was read to its end; its connection may go back to a keep-alive agent. */
    const settle = (result: OutboundResult, keep = false): void => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      options.signal?.removeEventListener('abort', onAbort);
      if (!keep || !options.agents) req?.destroy();
      resolve(result);
    };
    const fail = (reason: string, detail = reason, extra: { refused?: boolean; stopped?: boolean } = {}): void =>
      settle({ ok: false, reason, detail, ...extra });
    // A hard deadline, not an idle timeout: a server dripping a byte a second cannot hold a request.
    const deadline = setTimeout(() => fail(`no answer within ${options.timeoutMs} ms`), options.timeoutMs);
    const onAbort = (): void => fail('stopped', 'stopped', { stopped: true });
    if (options.signal?.aborted) return onAbort();
    options.signal?.addEventListener('abort', onAbort, { once: true });

    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      return fail('only http and https are allowed', url.protocol, { refused: true });
    if (url.username !== '' || url.password !== '')
      return fail('URLs with credentials are refused', 'credentials in URL', { refused: true });
    const host = urlHost(url);
    // IP literals skip `lookup`: check them here.
    if (isIP(host) !== 0 && !addressAllowed(host, host, options.allow)) {
      return fail('address not allowed', `${host} is a special-purpose address ${allowName} does not list`, { refused: true });
    }
    send(options.agents !== undefined);

    function send(reuse: boolean): void {
      let current: ClientRequest;
      try {
        current = req = (url.protocol === 'https:' ? https : http).request(url, {
          method: options.method ?? 'POST',
          // a fresh connection unless the caller keeps some alive: the guard sees every new one's address
          agent: reuse ? (url.protocol === 'https:' ? options.agents?.https : options.agents?.http) : false,
          headers: options.headers ?? {},
          lookup: guardedLookup(
            host,
            options.allow,
            options.lookup ?? (dnsLookup as unknown as LookupFunction),
            allowName,
          ) as unknown as typeof dnsLookup,
        });
      } catch (err) {
        return fail('invalid request', err instanceof Error ? err.message : String(err));
      }
      current.on('response', (res) => {
        const status = res.statusCode ?? 0;
        const chunks: Buffer[] = [];
        let size = 0;
        const done = (truncated: boolean): void =>
          settle(
            { ok: true, status, headers: res.headers, body: Buffer.concat(chunks).subarray(0, options.maxBytes), truncated },
            !truncated,
          );
        const tooLarge = (): void => {
          if (options.tooLarge === 'truncate') done(true);
          else fail(`answer larger than ${options.maxBytes} bytes`);
        };
        if (options.tooLarge !== 'truncate' && Number(res.headers['content-length'] ?? 0) > options.maxBytes) return tooLarge();
        res.on('data', (c: Buffer) => {
          size += c.length;
          chunks.push(c);
          if (size > options.maxBytes) tooLarge();
        });
        res.on('end', () => done(false));
        // The server closed before the end of the body (a truncated answer).
        res.on('aborted', () => fail('answer cut short'));
        res.on('error', (err) => fail('answer cut short', err.message));
        res.on('close', () => {
          if (!res.complete) fail('answer cut short');
        });
      });
      current.on('error', (err: NodeJS.ErrnoException) => {
        if (current !== req) return;
        // The server closed an idle kept-alive connection as this request went out on it: nothing
        // was answered, so it is sent again, once, on a fresh connection.
        if (current.reusedSocket && !settled && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) return send(false);
        if (err instanceof RefusedAddressError) return fail('address not allowed', err.message, { refused: true });
        if (err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN') return fail('host not found', err.message);
        fail(`could not connect (${err.code ?? 'error'})`, err.message);
      });
      current.on('close', () => setImmediate(() => current === req && fail('connection closed without an answer')));
      current.end(options.body);
    }
  });
}
