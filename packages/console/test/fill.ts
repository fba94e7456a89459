import { BotStore, type NewDeadLetter, PostgresBotStore } from '@steem-bot/bot';
import type { Config } from '@steem-bot/config';
import { Postgres } from '@steem-bot/store';

/** Give bot `bot` a checkpoint and a dead letter in the configured store. */
export async function fillBot(config: Config, bot: string, checkpoint: number, letter: NewDeadLetter): Promise<void> {
  if (config.STORE === 'sqlite') {
    const store = new BotStore(`${config.DATA_DIR}/bot-${bot}.sqlite`);
    store.saveCheckpoint(checkpoint);
    store.addDeadLetter(letter);
    store.close();
    return;
  }
  const store = await PostgresBotStore.open({ url: config.DATABASE_URL, schema: config.DATABASE_SCHEMA, bot });
  await store.saveCheckpoint(checkpoint);
  await store.addDeadLetter(letter);
  await store.close();
}

/** Drop the test's PostgreSQL schema (nothing on SQLite). */
export async function dropSchema(config: Config | undefined): Promise<void> {
  if (config?.STORE !== 'postgres') return;
  const admin = await Postgres.open({ url: config.DATABASE_URL, schema: config.DATABASE_SCHEMA, name: 'cleanup' });
  try {
    await admin.query(`DROP SCHEMA IF EXISTS ${config.DATABASE_SCHEMA} CASCADE`);
  } finally {
    await admin.close();
  }
}
