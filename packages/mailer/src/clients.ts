import { randomBytes, timingSafeEqual } from 'node:crypto';

import { AppError } from '@steem-bot/config';

import type { MailerStore } from './mailer-store';
import { type ClientRow, sha256 } from './store';

/**
 * A new client's credentials and the row to store: the token is shown once; only its hash is
 * stored. Refuses a malformed or reserved name.
 */
export function newClient(
  name: string,
  allowedFrom: string[] | undefined,
  now = Date.now(),
): { row: Omit<ClientRow, 'revoked_at'>; token: string; secret: string } {
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
  const row = { name, token_hash: sha256(token), secret, allowed_from: allowedFrom ? JSON.stringify(allowedFrom) : null, created_at: now };
  return { row, token, secret };
}

/** Create a client in the store (a name is never given out twice); returns its token and secret. */
export async function addClient(
  store: MailerStore,
  name: string,
  allowedFrom: string[] | undefined,
  now = Date.now(),
): Promise<{ token: string; secret: string }> {
  const { row, token, secret } = newClient(name, allowedFrom, now);
  await store.addClient(row);
  return { token, secret };
}

/** The client a bearer token belongs to, compared in constant time; undefined if none or revoked. */
export async function authenticate(store: MailerStore, header: string | undefined): Promise<ClientRow | undefined> {
  const match = /^Bearer ([^\s]+)$/.exec(header ?? '');
  if (!match) return undefined;
  const token = match[1] as string;
  const name = token.slice(0, Math.max(0, token.lastIndexOf('.')));
  const client = name ? await store.client(name) : undefined;
  // Hash either way, so an unknown name costs the same as a wrong secret.
  const given = Buffer.from(sha256(token), 'hex');
  const expected = Buffer.from(client?.token_hash ?? sha256(`${token}x`), 'hex');
  const equal = timingSafeEqual(given, expected);
  return client && equal && client.revoked_at === null ? client : undefined;
}
