import { join } from 'node:path';

import { AppError, type Config, type Logger } from '@steem-bot/config';

import { importLegacyState } from './legacy';
import type { BotStore } from './store';
import { PostgresBotStore } from './store-postgres';
import { SqliteBotStore } from './store-sqlite';

/** The SQLite file of bot `name`. */
export function botStoreFile(dataDir: string, name: string): string {
  return join(dataDir, `bot-${name}.sqlite`);
}

/** Open bot `name`'s store where the config says (STORE, then DATA_DIR or DATABASE_URL and DATABASE_SCHEMA). */
export async function openBotStore(config: Config<'store'>, name: string, logger?: Logger): Promise<BotStore> {
  if (config.STORE === 'sqlite') {
    const store = new SqliteBotStore(botStoreFile(config.DATA_DIR, name));
    try {
      const moved = importLegacyState(store.file, name);
      if (moved > 0) logger?.info(`moved ${moved} values of the bot's own tables into its state (ctx.kv)`);
    } catch (err) {
      await store.close();
      throw err;
    }
    return store;
  }
  if (!config.DATABASE_URL)
    throw new AppError('ERR_CONFIG_INVALID', 'STORE=postgres needs DATABASE_URL (postgres://user:pass@host:5432/db)');
  return PostgresBotStore.open({ url: config.DATABASE_URL, schema: config.DATABASE_SCHEMA, bot: name, logger });
}
