import type { Bus } from '@steem-bot/bus';
import type { Catalogue, Logger } from '@steem-bot/config';
import { type Relayer, relayer } from '@steem-bot/store';

import type { MailerApp, MailerStore } from './mailer-store';

// One relayer per store and app: what a process relays, and retries after a failure.
const relayers = new WeakMap<MailerStore, Map<MailerApp, Relayer>>();

/**
 * Relay what waits in the outbox of `app` to the bus's stream. A failure is logged and the relay
 * tried again a second later by itself (and by the next call): an event never waits for the
 * app's next state change.
 */
export function relay(store: MailerStore, app: MailerApp, bus: Bus<Catalogue>, logger: Logger): void {
  let byApp = relayers.get(store);
  if (!byApp) relayers.set(store, (byApp = new Map()));
  let r = byApp.get(app);
  if (!r) {
    r = relayer(
      () => store.relay(app, bus.stream),
      (err) => logger.warn({ err }, `could not relay ${app}'s events; will retry`),
    );
    byApp.set(app, r);
  }
  r.relay();
}

/** Stop the relays of `store` (their retries too) and wait for one in progress; before it closes. */
export async function stopRelays(store: MailerStore): Promise<void> {
  const byApp = relayers.get(store);
  relayers.delete(store);
  await Promise.all([...(byApp?.values() ?? [])].map((r) => r.stop()));
}
