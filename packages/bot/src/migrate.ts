import { AppError } from '@steem-bot/config';

import type { PostgresBotStore } from './store-postgres';
import type { SqliteBotStore } from './store-sqlite';

/** What `migrateBotStore` copied. */
export interface BotMigrationCounts {
  checkpoint: number | null;
  deadLetters: number;
  state: number;
}

type Row = Record<string, unknown>;

/**
 * Copy one bot's SQLite file into PostgreSQL (its rows of the shared `bot_*` tables), in one
 * PostgreSQL transaction: the checkpoint, every dead letter (new ids: PostgreSQL numbers them
 * for all bots together) and the bot's state, with their times. Refuses a bot that already has
 * rows there (ERR_BOT_INVALID): run it once, with the bot stopped. Nothing is written unless all of it is.
 */
export async function migrateBotStore(source: SqliteBotStore, target: PostgresBotStore): Promise<BotMigrationCounts> {
  const all = (sql: string): Row[] => source.db.prepare(sql).all() as Row[];
  const [checkpoint] = all('SELECT position, updated_at FROM checkpoint WHERE id = 1');
  const letters = all('SELECT * FROM dead_letters ORDER BY id');
  const state = all('SELECT key, value, updated_at FROM state ORDER BY key');
  const { bot } = target;
  await target.db.transaction(async (c) => {
    await c.query('LOCK TABLE bot_checkpoints, bot_dead_letters, bot_state IN EXCLUSIVE MODE');
    const { rows } = await c.query<{ n: number }>(
      `SELECT (SELECT COUNT(*) FROM bot_checkpoints WHERE bot = $1) + (SELECT COUNT(*) FROM bot_dead_letters WHERE bot = $1)
         + (SELECT COUNT(*) FROM bot_state WHERE bot = $1) AS n`,
      [bot],
    );
    if ((rows[0]?.n ?? 0) > 0)
      throw new AppError('ERR_BOT_INVALID', `bot ${bot} already has rows in PostgreSQL: migrate-store copies into none`);
    if (checkpoint) {
      await c.query('INSERT INTO bot_checkpoints (bot, position, updated_at) VALUES ($1, $2, $3)', [
        bot,
        checkpoint.position,
        checkpoint.updated_at,
      ]);
    }
    for (const r of letters) {
      await c.query(
        `INSERT INTO bot_dead_letters (bot, position, name, payload, tid, error, attempts, created_at, state, replayed_at)
         VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9, $10)`,
        [bot, r.position, r.name, r.payload, r.tid, r.error, r.attempts, r.created_at, r.state, r.replayed_at],
      );
    }
    for (const r of state) {
      await c.query('INSERT INTO bot_state (bot, key, value, updated_at) VALUES ($1, $2, $3::jsonb, $4)', [
        bot,
        r.key,
        r.value,
        r.updated_at,
      ]);
    }
  });
  return { checkpoint: (checkpoint?.position as number | undefined) ?? null, deadLetters: letters.length, state: state.length };
}
