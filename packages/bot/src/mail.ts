import type { Bus } from '@steem-bot/bus';
import type { Catalogue, EmailRequest, TaskPayload } from '@steem-bot/config';

/** Queue an email through the mailer; a replayed op never sends a second one. */
export interface Mail {
  send(request: EmailRequest): Promise<{ id: string; status: string }>;
}

/** The mail of one handler try (or task run): the n-th email gets the idempotency key `<keyPrefix>:<n>`. */
export function mailFor(bus: Bus<Catalogue>, keyPrefix: string): Mail {
  let n = 0;
  return {
    send: (request) =>
      bus.send('mailer.email.send', request as TaskPayload<Catalogue, 'mailer.email.send'>, { idempotencyKey: `${keyPrefix}:${n++}` }),
  };
}
