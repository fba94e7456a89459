import { type CatalogueShape, type Config, type Logger } from '@steem-bot/config';

import { Bus } from './bus';
import { IpcTransport } from './ipc-transport';

/** The bus of one app over node-ipc, configured from the validated config. */
export function createIpcBus<C extends CatalogueShape>(app: string, catalogue: C, config: Config<never>, logger: Logger): Bus<C> {
  const transport = new IpcTransport({
    socketDir: config.SOCKET_DIR,
    maxMessageBytes: config.BUS_MAX_MESSAGE_BYTES,
    dataDir: config.DATA_DIR,
    retentionHours: config.BUS_RETENTION_HOURS,
    retentionBytes: config.BUS_RETENTION_BYTES,
    logger,
  });
  return new Bus({ app, catalogue, transport, logger, taskTimeoutMs: config.BUS_TASK_TIMEOUT_MS });
}
