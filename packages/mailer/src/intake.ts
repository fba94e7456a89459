import { join } from 'node:path';

import type { AppContext, RunningApp } from '@steem-bot/bus';
import { AppError, emailRequest, withTid } from '@steem-bot/config';

import { accept, createApi } from './api';
import { relay } from './relay';
import { MailStore } from './store';

export const storeFile = (dataDir: string): string => join(dataDir, 'mailer.sqlite');

/** The intake's store: on disk (fsynced) before the ack; WAL checkpoints left to the worker while it runs. */
export const openIntakeStore = (dataDir: string): MailStore =>
  new MailStore(storeFile(dataDir), { checkpoints: false, fsyncCommits: true });

/** The mailer-api process (bus app `mailer`): REST intake and the `mailer.email.send` task. */
export async function startIntake(
  { config, logger, bus }: AppContext<'mailer'>,
  now?: () => number,
): Promise<RunningApp & { url: string }> {
  const store = openIntakeStore(config.DATA_DIR);
  const options = { store, config, logger, bus, ...(now ? { now } : {}) };
  // Internal apps are trusted: no token; the bus idempotency key dedupes (on disk, not only in memory).
  bus.handle('mailer.email.send', (payload, ctx) => {
    const request = emailRequest.parse(payload);
    const { id, status } = accept(options, { client: 'bus', key: ctx.key, request, tid: ctx.tid });
    return { id, status };
  });
  // The operator's Retry (dead messages) and Cancel (pending ones), from the console.
  bus.handle('mailer.email.retry', ({ id }) => {
    const message = store.get(id);
    if (!message) throw new AppError('ERR_MAILER_NOT_FOUND', `no message ${id}`);
    const now = Date.now();
    // email.queued with the state change (outbox) wakes the worker now instead of at its next safety-net look.
    const queued = store.db
      .transaction(() => {
        if (!store.retry(id, now)) return false;
        store.outbox('mailer').add('email.queued', { id, client: message.client, send_at: new Date(now).toISOString() }, message.tid, now);
        return true;
      })
      .immediate();
    if (!queued) throw new AppError('ERR_MAILER_CONFLICT', `message is ${message.status}; only dead messages can be retried`);
    withTid(message.tid, () => logger.info({ id }, `dead message ${id} queued again by the operator`));
    relay(store.outbox('mailer'), bus, logger);
    return { id, status: 'scheduled' as const };
  });
  bus.handle('mailer.email.cancel', ({ id }) => {
    const message = store.get(id);
    if (!message) throw new AppError('ERR_MAILER_NOT_FOUND', `no message ${id}`);
    const cancelled = store.cancel(id, message.client, Date.now());
    withTid(message.tid, () => logger.info({ id }, `message ${id} cancelled by the operator`));
    return { id, status: cancelled.status };
  });
  await bus.serve();
  // What a crash left between a state change and its event goes out first.
  relay(store.outbox('mailer'), bus, logger);
  const api = await createApi(options);
  const url = await api.listen({ host: config.MAILER_HOST, port: config.MAILER_PORT });
  logger.info(`REST API on ${url} (OpenAPI at ${url}/v1/openapi.json)`);
  return {
    url,
    async stop() {
      await api.close();
      store.close();
    },
  };
}
