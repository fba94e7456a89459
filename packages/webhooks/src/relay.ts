import type { BatchEvent, Bus } from '@steem-bot/bus';
import type { Catalogue, Logger } from '@steem-bot/config';
import type { OutboxTarget } from '@steem-bot/store';

import type { WebhookStore } from './store';

/** The app's stream as the outbox's target: events keep the positions the outbox gave them. */
export function streamOf(bus: Bus<Catalogue>): OutboxTarget {
  return {
    get head() {
      return bus.head;
    },
    append: (events) =>
      bus.publishBatch(
        events.map((e) => ({ name: e.name, payload: e.payload, position: e.pos, tid: e.tid })) as Array<BatchEvent<Catalogue>>,
      ),
  };
}

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
    running = store.relayOwn(streamOf(bus)).catch((err: unknown) => {
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
