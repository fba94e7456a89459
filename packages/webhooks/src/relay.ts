import type { Bus } from '@steem-bot/bus';
import type { Catalogue, Logger } from '@steem-bot/config';
import { type Relayer, relayer } from '@steem-bot/store';

import type { WebhookStore } from './store';

/**
 * Relays what waits in the store's outbox to the app's stream; a failed run is logged and tried
 * again after `retryMs` (and by the next call). `stop` waits for a run in progress.
 */
export function ownRelayer(store: WebhookStore, bus: Bus<Catalogue>, logger: Logger, retryMs = 1_000): Relayer {
  return relayer(
    () => store.relayOwn(bus.stream),
    (err) => logger.warn({ err }, 'could not relay the own events to the stream; will retry'),
    retryMs,
  );
}
