import { serializeError } from '@steem-bot/config';

/** `CODE: message`, for a dead letter's error column. */
export function describe(err: unknown): string {
  const e = serializeError(err);
  return `${e.code}: ${e.message}`;
}
