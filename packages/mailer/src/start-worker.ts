import type { AppContext, RunningApp } from '@steem-bot/bus';

import { createDelivery } from './delivery';
import { openMailerStore } from './open-store';
import { Worker } from './worker';

/** The mailer-worker process (bus app `mailer-worker`): delivery. */
export async function startWorker(
  { config, logger, bus }: AppContext<'mailer' | 'store'>,
  now?: () => number,
): Promise<RunningApp & { worker: Worker }> {
  const delivery = createDelivery(config); // first: an unsafe MAILER_OUTBOX stops the start here
  const store = await openMailerStore(config, 'worker', logger);
  if (config.SMTP_URL === '') {
    logger.warn(`NO SMTP_URL: messages are NOT sent, only written as .eml files to ${config.MAILER_OUTBOX}. Set SMTP_URL to deliver them.`);
  } else {
    logger.info(`delivering through ${delivery.description}`);
  }
  const worker = new Worker({ store, delivery, bus, config, logger, ...(now ? { now } : {}) });
  await worker.start();
  return {
    worker,
    async stop() {
      await worker.stop();
      delivery.close();
      await store.close();
    },
  };
}
