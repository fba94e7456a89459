import { join } from 'node:path';

import type { AppContext, RunningApp, WireEvent } from '@steem-bot/bus';

import { createApi } from './api';
import { Dispatcher } from './dispatcher';
import { WebhookStore } from './store';

export const storeFile = (dataDir: string): string => join(dataDir, 'webhooks.sqlite');

export interface StartOptions {
  /** Injectable clock (ms). */
  now?: () => number;
  /** Injectable jitter source in [0, 1). */
  random?: () => number;
}

/**
 * The webhooks process (bus app `webhooks`): the REST API, one delivery cursor per endpoint, and
 * its own stream (posted events, endpoint.disabled), kept in SQLite so that subscribers that
 * were away get what they missed.
 */
export async function startWebhooks(
  { config, logger, bus }: AppContext<'webhooks'>,
  options: StartOptions = {},
): Promise<RunningApp & { url: string; dispatcher: Dispatcher }> {
  const store = new WebhookStore(storeFile(config.DATA_DIR));
  const now = options.now ?? Date.now;
  // Outbox: appended first, then published; a subscriber that was away gets it from the store.
  const appendAndPublish = async (
    name: 'endpoint.disabled' | 'event.posted',
    payload: Record<string, unknown>,
    tid: string,
  ): Promise<number> => {
    const row = store.appendStream(name, payload, tid, now());
    await bus
      .publish(name, payload as never, { position: row.pos, tid })
      .catch((err: unknown) => logger.warn({ err }, `could not publish ${name}`));
    return row.pos;
  };
  await bus.serve({
    floor: store.lastStreamPos(),
    backfill: async function* (after, until, names): AsyncIterable<WireEvent> {
      for (let from = after; ;) {
        const rows = store.streamRange(from, until, 500);
        for (const r of rows) {
          if (names.has(r.name))
            yield { name: r.name, payload: JSON.parse(r.payload) as Record<string, unknown>, tid: r.tid, pos: r.pos, ts: r.ts };
        }
        if (rows.length < 500) return;
        from = (rows.at(-1) as { pos: number }).pos;
      }
    },
  });
  const dispatcher = new Dispatcher({
    store,
    bus,
    config,
    logger,
    now,
    ...(options.random ? { random: options.random } : {}),
    publishOwn: async (name, payload, tid) => void (await appendAndPublish(name, payload, tid)),
  });
  dispatcher.start();
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
    postEvent: (client, type, data, tid) => appendAndPublish('event.posted', { client, type, data }, tid),
  });
  const url = await api.listen({ host: config.WEBHOOKS_HOST, port: config.WEBHOOKS_PORT });
  logger.info(`REST API on ${url} (OpenAPI at ${url}/v1/openapi.json)`);
  return {
    url,
    dispatcher,
    async stop() {
      await api.close();
      await dispatcher.stop();
      store.close();
    },
  };
}
