import { randomBytes, timingSafeEqual } from 'node:crypto';

import { AppError } from '@steem-bot/config';

import { type ClientRow, type MailStore, sha256 } from './store';

/** A new client: the token is shown once; only its hash is stored. */
export function addClient(
  store: MailStore,
  name: string,
  allowedFrom: string[] | undefined,
  now = Date.now(),
): { token: string; secret: string } {
  if (!/^[a-z0-9][a-z0-9_-]{0,63}$/.test(name))
    throw new AppError(
      'ERR_MAILER_INVALID_REQUEST',
      'client names are 1-64 lower-case letters, digits, _ and -, starting with a letter or digit',
    );
  // `bus` owns the messages of internal apps (the mailer.email.send task).
  if (name === 'bus') throw new AppError('ERR_MAILER_CONFLICT', 'the client name "bus" is reserved for internal apps');
  const token = `${name}.${randomBytes(32).toString('base64url')}`;
  // Standard Webhooks secret format: whsec_ + base64 of the key bytes.
  const secret = `whsec_${randomBytes(32).toString('base64')}`;
  store.addClient({
    name,
    token_hash: sha256(token),
    secret,
    allowed_from: allowedFrom ? JSON.stringify(allowedFrom) : null,
    created_at: now,
  });
  return { token, secret };
}

/** The client a bearer token belongs to, compared in constant time; undefined if none or revoked. */
export function authenticate(store: MailStore, header: string | undefined): ClientRow | undefined {
  const match = /^Bearer ([^\s]+)$/.exec(header ?? '');
  if (!match) return undefined;
  const token = match[1] as string;
  const name = token.slice(0, Math.max(0, token.lastIndexOf('.')));
  const client = name ? store.client(name) : undefined;
  // Hash either way, so an unknown name costs the same as a wrong secret.
  const given = Buffer.from(sha256(token), 'hex');
  const expected = Buffer.from(client?.token_hash ?? sha256(`${token}x`), 'hex');
  const equal = timingSafeEqual(given, expected);
  return client && equal && client.revoked_at === null ? client : undefined;
}
