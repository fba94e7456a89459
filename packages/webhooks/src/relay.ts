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

/** Relay what waits in the outbox to the app's stream; a failure is logged, and the next relay retries it. */
export function relay(store: WebhookStore, bus: Bus<Catalogue>, logger: Logger): void {
  store.relayOwn(streamOf(bus)).catch((err: unknown) => logger.warn({ err }, 'could not relay the own events to the stream; will retry'));
}
