import { type CatalogueShape, type Config, type Logger } from '@steem-bot/config';

import { Bus } from './bus';
import { IpcTransport } from './ipc-transport';

/** node-ipc's own default socket prefix: a plain client sets only `socketRoot` to reach us. */
export const APPSPACE = 'app.';

/** The bus of one app over node-ipc, configured from the validated config. */
export function createIpcBus<C extends CatalogueShape>(app: string, catalogue: C, config: Config, logger: Logger): Bus<C> {
  const transport = new IpcTransport({
    socketDir: config.SOCKET_DIR,
    appspace: APPSPACE,
    maxMessageBytes: config.BUS_MAX_MESSAGE_BYTES,
    bufferBytes: config.BUS_SUBSCRIBER_BUFFER_BYTES,
    replayBytes: config.BUS_REPLAY_BYTES,
    maxConnections: 256,
    stallMs: 1_000,
    graceMs: 25,
    logger,
  });
  return new Bus({ app, catalogue, transport, logger, taskTimeoutMs: config.BUS_TASK_TIMEOUT_MS });
}
