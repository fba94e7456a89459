import { join } from 'node:path';

import { AppError, type Config, type Logger } from '@steem-bot/config';

import type { BotStore } from './store';
import { PostgresBotStore } from './store-postgres';
import { SqliteBotStore } from './store-sqlite';

/** The SQLite file of bot `name`. */
export function botStoreFile(dataDir: string, name: string): string {
  return join(dataDir, `bot-${name}.sqlite`);
}

/** Open bot `name`'s store where the config says (STORE, then DATA_DIR or DATABASE_URL and DATABASE_SCHEMA). */
export async function openBotStore(config: Config<'store'>, name: string, logger?: Logger): Promise<BotStore> {
  if (config.STORE === 'sqlite') return new SqliteBotStore(botStoreFile(config.DATA_DIR, name));
  if (!config.DATABASE_URL)
    throw new AppError('ERR_CONFIG_INVALID', 'STORE=postgres needs DATABASE_URL (postgres://user:pass@host:5432/db)');
  return PostgresBotStore.open({ url: config.DATABASE_URL, schema: config.DATABASE_SCHEMA, bot: name, logger });
}
