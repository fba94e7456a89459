import type { Bus } from '@steem-bot/bus';
import type { Catalogue, Logger } from '@steem-bot/config';

import type { WebhookStore } from './store';

/**
 * Relays what waits in the store's outbox to the app's stream; a failed run is logged and tried
 * again after `retryMs` (and by the next call). `stop` waits for a run in progress.
 */
export function relayer(
  store: WebhookStore,
  bus: Bus<Catalogue>,
  logger: Logger,
  retryMs = 1_000,
): { relay(): void; stop(): Promise<void> } {
  let stopped = false;
  let running: Promise<void> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;
  const relay = (): void => {
    if (stopped) return;
    running = store.relayOwn(bus.stream).catch((err: unknown) => {
      logger.warn({ err }, 'could not relay the own events to the stream; will retry');
      if (!stopped && timer === undefined) timer = setTimeout(() => ((timer = undefined), relay()), retryMs);
    });
  };
  return {
    relay,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
