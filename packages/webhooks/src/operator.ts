import type { Bus } from '@steem-bot/bus';
import { AppError, type Catalogue, type Logger } from '@steem-bot/config';

import type { Dispatcher } from './dispatcher';
import type { WebhookStore } from './store';

/**
 * The operator's task from the console: `webhooks.endpoint.enable` enables a disabled endpoint
 * and starts its delivery again from its stored cursor (the event it stopped at is tried at once).
 * Enabling an endpoint that is not disabled changes nothing.
 */
export function handleOperatorTasks(
  bus: Pick<Bus<Catalogue>, 'handle'>,
  o: { store: WebhookStore; dispatcher: Dispatcher; logger: Logger; now: () => number },
): void {
  bus.handle('webhooks.endpoint.enable', async ({ client, endpoint }) => {
    const row = await o.store.endpoint(client, endpoint);
    // No 404 code of its own on the bus: the message names what is missing.
    if (!row) throw new AppError('ERR_BUS_INVALID_PAYLOAD', `no endpoint ${client}/${endpoint}`);
    if (row.disabled === 0) return { client, endpoint, disabled: false };
    let enabled = false;
    // Its runner (none while disabled) is started after the change, from the stored cursors.
    await o.dispatcher.refresh(row.seq, async () => (enabled = await o.store.enable(row.seq, o.now())));
    if (enabled)
      o.logger.info(
        { endpoint: `${client}/${endpoint}`, was: row.disabled_reason },
        `endpoint ${client}/${endpoint} enabled by the operator; delivering from its stored cursor`,
      );
    return { client, endpoint, disabled: false };
  });
}
