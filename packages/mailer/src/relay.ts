import type { Bus } from '@steem-bot/bus';
import type { Catalogue, Logger } from '@steem-bot/config';

import type { MailerApp, MailerStore } from './mailer-store';

/** Relay what waits in the outbox of `app` to the bus's stream; a failure is logged, and the next relay retries it. */
export function relay(store: MailerStore, app: MailerApp, bus: Bus<Catalogue>, logger: Logger): void {
  store.relay(app, bus.stream).catch((err: unknown) => logger.warn({ err }, `could not relay ${app}'s events; will retry`));
}
