import type { AppContext, RunningApp } from '@steem-bot/bus';
import { AppError, emailRequest, withTid } from '@steem-bot/config';

import { accept, createApi } from './api';
import { openMailerStore } from './open-store';
import { relay, stopRelays } from './relay';

/** The mailer-api process (bus app `mailer`): REST intake and the `mailer.email.send` task. */
export async function startIntake(
  { config, logger, bus }: AppContext<'mailer' | 'store'>,
  now?: () => number,
): Promise<RunningApp & { url: string }> {
  // SQLite: on disk (fsynced) before the ack; WAL checkpoints left to the worker while it runs.
  const store = await openMailerStore(config, 'intake', logger);
  const options = { store, config, logger, bus, ...(now ? { now } : {}) };
  // Internal apps are trusted: no token; the bus idempotency key dedupes (on disk, not only in memory).
  bus.handle('mailer.email.send', async (payload, ctx) => {
    const request = emailRequest.parse(payload);
    const { id, status } = await accept(options, { client: 'bus', key: ctx.key, request, tid: ctx.tid });
    return { id, status };
  });
  // The operator's Retry (dead messages) and Cancel (pending ones), from the console.
  bus.handle('mailer.email.retry', async ({ id }) => {
    const message = await store.get(id);
    if (!message) throw new AppError('ERR_MAILER_NOT_FOUND', `no message ${id}`);
    if (!(await store.retry(id, Date.now()))) {
      throw new AppError('ERR_MAILER_CONFLICT', `message is ${message.status}; only dead messages can be retried`);
    }
    withTid(message.tid, () => logger.info({ id }, `dead message ${id} queued again by the operator`));
    relay(store, 'mailer', bus, logger);
    return { id, status: 'scheduled' as const };
  });
  bus.handle('mailer.email.cancel', async ({ id }) => {
    const message = await store.get(id);
    if (!message) throw new AppError('ERR_MAILER_NOT_FOUND', `no message ${id}`);
    const cancelled = await store.cancel(id, message.client, Date.now());
    withTid(message.tid, () => logger.info({ id }, `message ${id} cancelled by the operator`));
    relay(store, 'mailer', bus, logger);
    return { id, status: cancelled.status };
  });
  await bus.serve();
  // What a crash left between a state change and its event goes out first.
  relay(store, 'mailer', bus, logger);
  const api = await createApi(options);
  const url = await api.listen({ host: config.MAILER_HOST, port: config.MAILER_PORT });
  logger.info(`REST API on ${url} (OpenAPI at ${url}/v1/openapi.json)`);
  return {
    url,
    async stop() {
      await api.close();
      await stopRelays(store);
      await store.close();
    },
  };
}
