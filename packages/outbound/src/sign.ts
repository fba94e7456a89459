import { createHmac } from 'node:crypto';

/**
 * The Standard Webhooks signature of one message: `v1,` + base64 HMAC-SHA256 of
 * `id.timestamp.body`, keyed with the bytes of a `whsec_<base64>` secret.
 */
export function standardSignature(secret: string, id: string, timestamp: string, body: string): string {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}
