import * as botPackage from '@steem-bot/bot';
import { BotStore } from '@steem-bot/bot';
import type { Config } from '@steem-bot/config';
import { Postgres } from '@steem-bot/store';

/** A dead letter as a bot stores it. */
interface Letter {
  position: number;
  name: string;
  payload: Record<string, unknown>;
  tid: string;
  error: string;
  attempts: number;
}

interface PostgresBotStore {
  saveCheckpoint(position: number): Promise<void>;
  addDeadLetter(letter: Letter): Promise<number>;
  close(): Promise<void>;
}
// The bots' own PostgreSQL store, once the bot package has one (branch h2-bots).
const botStoreClass = (
  botPackage as unknown as { PostgresBotStore?: { open(o: { url: string; schema: string; bot: string }): Promise<PostgresBotStore> } }
).PostgresBotStore;

// Until then, the layout committed on branch h2-bots (packages/bot/src/store-postgres.ts, migration
// "bots" step 1): every bot's rows in shared tables keyed by its name. Delete once merged.
const BOT_MIGRATIONS = [
  `CREATE TABLE bot_checkpoints (bot TEXT PRIMARY KEY, position BIGINT NOT NULL, updated_at BIGINT NOT NULL);
   CREATE TABLE bot_dead_letters (
     id BIGSERIAL PRIMARY KEY, bot TEXT NOT NULL, position BIGINT NOT NULL, name TEXT NOT NULL, payload JSONB NOT NULL,
     tid TEXT NOT NULL, error TEXT NOT NULL, attempts INTEGER NOT NULL, created_at BIGINT NOT NULL,
     state TEXT NOT NULL DEFAULT 'dead' CHECK (state IN ('dead', 'replay', 'replayed')), replayed_at BIGINT);
   CREATE INDEX bot_dead_letters_state ON bot_dead_letters (bot, state, id);
   CREATE TABLE bot_state (bot TEXT NOT NULL, key TEXT NOT NULL, value JSONB NOT NULL, updated_at BIGINT NOT NULL, PRIMARY KEY (bot, key))`,
];

/** Give bot `bot` a checkpoint and a dead letter in the configured store. */
export async function fillBot(config: Config, bot: string, checkpoint: number, letter: Letter): Promise<void> {
  if (config.STORE === 'sqlite') {
    const store = new BotStore(`${config.DATA_DIR}/bot-${bot}.sqlite`);
    store.saveCheckpoint(checkpoint);
    store.addDeadLetter(letter);
    store.close();
    return;
  }
  if (botStoreClass) {
    const store = await botStoreClass.open({ url: config.DATABASE_URL, schema: config.DATABASE_SCHEMA, bot });
    await store.saveCheckpoint(checkpoint);
    await store.addDeadLetter(letter);
    await store.close();
    return;
  }
  const db = await Postgres.open({ url: config.DATABASE_URL, schema: config.DATABASE_SCHEMA, name: 'bots', migrations: BOT_MIGRATIONS });
  try {
    await db.query('INSERT INTO bot_checkpoints (bot, position, updated_at) VALUES ($1, $2, $3)', [bot, checkpoint, Date.now()]);
    await db.query(
      'INSERT INTO bot_dead_letters (bot, position, name, payload, tid, error, attempts, created_at) VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8)',
      [bot, letter.position, letter.name, JSON.stringify(letter.payload), letter.tid, letter.error, letter.attempts, Date.now()],
    );
  } finally {
    await db.close();
  }
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
