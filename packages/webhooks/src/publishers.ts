import { catalogue, chainOpNames } from '@steem-bot/config';

/** The app of the webhooks service on the bus: its stream carries posted events and endpoint.disabled. */
export const WEBHOOKS_APP = 'webhooks';

// Who publishes which catalogue event (see the catalogue's docs and the README's mailer section):
// the broadcaster every chain op and block.*, mailer-api (bus app `mailer`) email.queued and
// email.cancelled, mailer-worker the outcomes of a delivery, the signer transaction.*.
const MAILER_API = new Set(['email.queued', 'email.cancelled']);
const MAILER_WORKER = new Set(['email.sent', 'email.failed', 'email.skipped']);
const OWN = new Set(['endpoint.disabled']);
const CHAIN = new Set<string>(chainOpNames);

/** The app whose stream carries catalogue event `type`; undefined for a type an endpoint may not register. */
export function publisherOf(type: string): string | undefined {
  if (!(type in catalogue.events)) return undefined;
  if (CHAIN.has(type) || type.startsWith('block.')) return 'broadcaster';
  if (MAILER_API.has(type)) return 'mailer';
  if (MAILER_WORKER.has(type)) return 'mailer-worker';
  if (type.startsWith('transaction.')) return 'signer';
  if (OWN.has(type)) return WEBHOOKS_APP;
  return undefined;
}

/** A type a client may own and post: `<name>.<name>`, not a catalogue name. */
export const POSTED_TYPE = /^[a-z][a-z0-9_-]{0,39}\.[a-z][a-z0-9_]{0,39}$/;

export function postableType(type: string): boolean {
  return POSTED_TYPE.test(type) && !(type in catalogue.events) && !type.startsWith('bus.');
}
