import type http from 'node:http';
import type https from 'node:https';

import { outboundRequest, standardSignature } from '@steem-bot/outbound';

import type { EndpointRow } from './store';

/** One event as an endpoint gets it. */
export interface OutgoingEvent {
  /** The app whose stream carries it. */
  app: string;
  /** The type the endpoint registered (a posted event's own type, not `event.posted`). */
  type: string;
  pos: number;
  tid: string;
  /** When it was published (ms). */
  ts: number;
  data: Record<string, unknown>;
}

/** The receiver's dedupe key: the same for every try and replay of one event. */
export const webhookId = (event: Pick<OutgoingEvent, 'app' | 'pos'>): string => `msg_${event.app}_${event.pos}`;

/** The body of a delivery. */
export const deliveryBody = (event: OutgoingEvent): string =>
  JSON.stringify({ type: event.type, position: event.pos, tid: event.tid, timestamp: new Date(event.ts).toISOString(), data: event.data });

/** What one try came to. */
export type Outcome =
  | { kind: 'delivered' }
  /** Retry; `retryAfterMs` when the receiver asked (429/503 with Retry-After). */
  | { kind: 'failed'; retryAfterMs?: number }
  /** 410 Gone: stop delivering to this endpoint. */
  | { kind: 'gone' }
  /** The app is stopping or the endpoint changed: nothing happened. */
  | { kind: 'stopped' };

export interface Attempt {
  outcome: Outcome;
  status: number | null;
  error: string | null;
  response: string | null;
  durationMs: number;
}

// The answer body kept in the attempt log.
const RESPONSE_CAP = 1024;

/** `Retry-After` in ms: seconds or an HTTP date; undefined if absent or unreadable. */
export function retryAfterMs(header: string | string[] | undefined, now: number): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined || value.trim() === '') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * POST one event to an endpoint, signed the Standard Webhooks way with the current secret and,
 * during a rotation's overlap, the previous one too. The SSRF guard applies to the connected address.
 */
export async function deliverOnce(
  endpoint: EndpointRow,
  event: OutgoingEvent,
  options: {
    timeoutMs: number;
    allow: readonly string[];
    now: number;
    signal?: AbortSignal;
    /** Keep-alive agents (connections opened through the SSRF guard, reused per host and port). */
    agents?: { http: http.Agent; https: https.Agent };
  },
): Promise<Attempt> {
  const id = webhookId(event);
  const body = deliveryBody(event);
  const timestamp = Math.floor(options.now / 1000).toString();
  const signatures = [standardSignature(endpoint.secret, id, timestamp, body)];
  if (endpoint.old_secret && (endpoint.old_secret_until ?? 0) > options.now)
    signatures.push(standardSignature(endpoint.old_secret, id, timestamp, body));
  const started = Date.now();
  const result = await outboundRequest({
    url: endpoint.url,
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'user-agent': 'steem-bot-webhooks/1',
      'webhook-id': id,
      'webhook-timestamp': timestamp,
      'webhook-signature': signatures.join(' '),
    },
    body,
    timeoutMs: options.timeoutMs,
    maxBytes: RESPONSE_CAP,
    tooLarge: 'truncate',
    allow: options.allow,
    allowName: 'WEBHOOKS_ALLOW',
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.agents ? { agents: options.agents } : {}),
  });
  const durationMs = Date.now() - started;
  if (!result.ok) {
    return {
      outcome: result.stopped ? { kind: 'stopped' } : { kind: 'failed' },
      status: null,
      error: result.reason,
      response: null,
      durationMs,
    };
  }
  const response = result.body.toString('utf8') + (result.truncated ? '…' : '');
  const base = { status: result.status, response, durationMs };
  if (result.status >= 200 && result.status < 300) return { outcome: { kind: 'delivered' }, error: null, ...base };
  if (result.status === 410) return { outcome: { kind: 'gone' }, error: 'HTTP 410 Gone', ...base };
  const error = `HTTP ${result.status}${result.status >= 300 && result.status < 400 ? ' (redirects are not followed)' : ''}`;
  const after = result.status === 429 || result.status === 503 ? retryAfterMs(result.headers['retry-after'], options.now) : undefined;
  return { outcome: after === undefined ? { kind: 'failed' } : { kind: 'failed', retryAfterMs: after }, error, ...base };
}
