import { type CatalogueShape, type Config, type Logger } from '@steem-bot/config';

import { AmqpTransport } from './amqp-transport';
import { Bus } from './bus';
import { IpcTransport } from './ipc-transport';
import type { Transport } from './transport';

/** The transport BUS_TRANSPORT selects: node-ipc (default) or RabbitMQ, from the validated config. */
export function createTransport(config: Config<never>, logger: Logger): Transport {
  if (config.BUS_TRANSPORT === 'rabbitmq') {
    return new AmqpTransport({
      urls: config.BUS_AMQP_URLS,
      dataDir: config.DATA_DIR,
      maxMessageBytes: config.BUS_MAX_MESSAGE_BYTES,
      retentionHours: config.BUS_RETENTION_HOURS,
      retentionBytes: config.BUS_RETENTION_BYTES,
      logger,
    });
  }
  return new IpcTransport({
    socketDir: config.SOCKET_DIR,
    maxMessageBytes: config.BUS_MAX_MESSAGE_BYTES,
    dataDir: config.DATA_DIR,
    retentionHours: config.BUS_RETENTION_HOURS,
    retentionBytes: config.BUS_RETENTION_BYTES,
    logger,
  });
}

/** The bus of one app on the transport BUS_TRANSPORT selects, configured from the validated config. */
export function createBus<C extends CatalogueShape>(app: string, catalogue: C, config: Config<never>, logger: Logger): Bus<C> {
  return new Bus({ app, catalogue, transport: createTransport(config, logger), logger, taskTimeoutMs: config.BUS_TASK_TIMEOUT_MS });
}

/** The former name of `createBus` (it follows BUS_TRANSPORT too, so every caller runs on either transport). */
export const createIpcBus = createBus;
