import { type LookupFunction, outboundRequest, standardSignature } from '@steem-bot/outbound';

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
 * of `id.timestamp.body`). The request goes through `outboundRequest`, the project's one
 * SSRF-guarded HTTP client: only to an address that passed the guard, redirects not followed,
 * settled at the latest when `timeoutMs` has passed.
 */
export async function checkStillWanted(options: CheckOptions): Promise<CheckResult> {
  const body = JSON.stringify({ id: options.id, metadata: options.metadata ?? null });
  const timestamp = Math.floor((options.now ?? Date.now()) / 1000).toString();
  const answer = await outboundRequest({
    url: options.url,
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'webhook-id': options.id,
      'webhook-timestamp': timestamp,
      'webhook-signature': standardSignature(options.secret, options.id, timestamp, body),
    },
    body,
    timeoutMs: options.timeoutMs,
    maxBytes: options.maxBytes,
    // An error status is reported as such, whatever its body's size.
    tooLarge: 'truncate',
    allow: options.allow,
    allowName: 'MAILER_CHECK_ALLOW',
    ...(options.lookup ? { lookup: options.lookup } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  if (!answer.ok) {
    if (answer.stopped) return { reason: 'the worker stopped', detail: 'the worker stopped', stopped: true };
    return { reason: answer.reason, detail: answer.detail, ...(answer.refused ? { refused: true } : {}) };
  }
  const { status } = answer;
  if (status < 200 || status >= 300) {
    const reason = `HTTP ${status}${status >= 300 && status < 400 ? ' (redirects are not followed)' : ''}`;
    return { reason, detail: reason };
  }
  if (answer.truncated) {
    const reason = `answer larger than ${options.maxBytes} bytes`;
    return { reason, detail: reason };
  }
  try {
    const parsed = JSON.parse(answer.body.toString()) as { send?: unknown } | null;
    if (typeof parsed?.send === 'boolean') return { send: parsed.send };
  } catch {
    // not JSON: the same answer as JSON without `send`
  }
  const reason = 'answer without {"send": true|false}';
  return { reason, detail: reason };
}
