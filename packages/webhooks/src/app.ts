import { join } from 'node:path';

import type { AppContext, RunningApp } from '@steem-bot/bus';
import { AppError, type Config } from '@steem-bot/config';

import { createApi } from './api';
import { Dispatcher } from './dispatcher';
import { handleOperatorTasks } from './operator';
import { ownRelayer } from './relay';
import type { WebhookStore } from './store';
import { PostgresWebhookStore } from './store-postgres';
import { SqliteWebhookStore } from './store-sqlite';

export const storeFile = (dataDir: string): string => join(dataDir, 'webhooks.sqlite');

/** The configured store: the SQLite file under DATA_DIR, or PostgreSQL with STORE=postgres. */
export async function openWebhookStore(config: Config<'store'>): Promise<WebhookStore> {
  if (config.STORE === 'sqlite') return new SqliteWebhookStore(storeFile(config.DATA_DIR));
  if (!config.DATABASE_URL)
    throw new AppError('ERR_CONFIG_INVALID', 'STORE=postgres needs DATABASE_URL (postgres://user:pass@host:5432/db)');
  return PostgresWebhookStore.open({ url: config.DATABASE_URL, schema: config.DATABASE_SCHEMA });
}

export interface StartOptions {
  /** Injectable clock (ms). */
  now?: () => number;
  /** Injectable jitter source in [0, 1). */
  random?: () => number;
}

/**
 * The webhooks process (bus app `webhooks`): the REST API, one delivery cursor per endpoint, and
 * its own durable bus stream (posted events, endpoint.disabled), fed through the store's outbox.
 */
export async function startWebhooks(
  { config, logger, bus }: AppContext<'webhooks' | 'store'>,
  options: StartOptions = {},
): Promise<RunningApp & { url: string; dispatcher: Dispatcher }> {
  const store = await openWebhookStore(config);
  const now = options.now ?? Date.now;
  // The app's own events are written to the outbox with the change that causes them, then
  // relayed to its bus stream (durable, retention as the bus's settings); a failed relay is
  // retried a second later and by the next one.
  const own = ownRelayer(store, bus, logger);
  const relayOwn = own.relay;
  await bus.serve();
  relayOwn(); // what a crash left between a commit and the stream goes out first
  const dispatcher = new Dispatcher({
    store,
    bus,
    config,
    logger,
    now,
    ...(options.random ? { random: options.random } : {}),
    relayOwn,
  });
  await dispatcher.start();
  // Registered once the dispatcher exists; a task arriving before gets ERR_BUS_NO_HANDLER (retryable).
  handleOperatorTasks(bus, { store, dispatcher, logger, now });
  // The newest block the broadcaster applied (live): where a new endpoint's chain cursor starts,
  // so that a restart before its first matching op misses nothing.
  let chainHead: number | null = null;
  bus.subscribe('broadcaster', { 'block.applied': (_payload, ctx) => void (chainHead = ctx.pos) });
  const api = await createApi({
    store,
    config,
    logger,
    bus,
    dispatcher,
    now,
    chainHead: () => chainHead,
    postEvent: async (client, type, data, tid) => {
      const position = await store.addOwnEvent({ name: 'event.posted', payload: { client, type, data }, tid }, now());
      relayOwn();
      return position;
    },
  });
  const url = await api.listen({ host: config.WEBHOOKS_HOST, port: config.WEBHOOKS_PORT });
  logger.info(`REST API on ${url} (OpenAPI at ${url}/v1/openapi.json)`);
  return {
    url,
    dispatcher,
    async stop() {
      await api.close();
      await dispatcher.stop();
      await own.stop();
      await store.close();
    },
  };
}
