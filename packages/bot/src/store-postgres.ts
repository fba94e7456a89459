import { AppError, type Logger } from '@steem-bot/config';
import { type PoolClient, Postgres, type QueryResultRow } from '@steem-bot/store';

import { type BotStore, checkKey, type DeadLetter, type Json, type NewDeadLetter, planUpdate, toJson, updateOne } from './store';

// The database's clock, in ms: bots on several hosts stamp rows alike.
const NOW_MS = '(extract(epoch from clock_timestamp()) * 1000)::bigint';

// Every bot's rows in the same three tables of DATABASE_SCHEMA, keyed by the bot's name.
const MIGRATIONS = [
  `CREATE TABLE bot_checkpoints (
     bot TEXT PRIMARY KEY,
     position BIGINT NOT NULL,
     updated_at BIGINT NOT NULL
   );
   CREATE TABLE bot_dead_letters (
     id BIGSERIAL PRIMARY KEY,
     bot TEXT NOT NULL,
     position BIGINT NOT NULL,
     name TEXT NOT NULL,
     payload JSONB NOT NULL,
     tid TEXT NOT NULL,
     error TEXT NOT NULL,
     attempts INTEGER NOT NULL,
     created_at BIGINT NOT NULL,
     state TEXT NOT NULL DEFAULT 'dead' CHECK (state IN ('dead', 'replay', 'replayed')),
     replayed_at BIGINT
   );
   CREATE INDEX bot_dead_letters_state ON bot_dead_letters (bot, state, id);
   CREATE TABLE bot_state (
     bot TEXT NOT NULL,
     key TEXT NOT NULL,
     value JSONB NOT NULL,
     updated_at BIGINT NOT NULL,
     PRIMARY KEY (bot, key)
   )`,
];

const UPSERT_STATE = `INSERT INTO bot_state (bot, key, value, updated_at) VALUES ($1, $2, $3::jsonb, ${NOW_MS})
  ON CONFLICT (bot, key) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at`;
const LETTER = 'id, position, name, payload, tid, error, attempts, created_at, state, replayed_at';

// Errors that say PostgreSQL is out of reach (SQLSTATE classes 08 connection, 53 resources, 57P
// shutdown; socket errors; a connection that ended), not that a statement or the bot is wrong.
const SOCKET_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH']);
const LOST = /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Client was closed/i;

/** Run `work`; an unreachable PostgreSQL becomes ERR_BOT_STORE_UNAVAILABLE (retried, never dead-lettered). */
async function reachable<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    const out =
      typeof code === 'string' ? SOCKET_ERRORS.has(code) || /^(08|53|57P)/.test(code) : err instanceof Error && LOST.test(err.message);
    if (!out) throw err;
    throw new AppError('ERR_BOT_STORE_UNAVAILABLE', `the bot's PostgreSQL store is out of reach: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/** The distributed store of one bot: its rows in the shared `bot_*` tables. */
export class PostgresBotStore implements BotStore {
  private constructor(
    readonly db: Postgres,
    readonly bot: string,
  ) {}

  static async open(options: { url: string; schema: string; bot: string; logger?: Logger | undefined }): Promise<PostgresBotStore> {
    const db = await Postgres.open({
      url: options.url,
      schema: options.schema,
      name: 'bots',
      applicationName: `steem-bot/${options.bot}`,
      migrations: MIGRATIONS,
      poolSize: 3,
      ...(options.logger ? { logger: options.logger } : {}),
    });
    return new PostgresBotStore(db, options.bot);
  }

  async checkpoint(): Promise<number | null> {
    const [row] = await this.query<{ position: number }>('SELECT position FROM bot_checkpoints WHERE bot = $1', [this.bot]);
    return row?.position ?? null;
  }

  async saveCheckpoint(position: number): Promise<void> {
    await this.query(
      `INSERT INTO bot_checkpoints (bot, position, updated_at) VALUES ($1, $2, ${NOW_MS})
       ON CONFLICT (bot) DO UPDATE SET position = EXCLUDED.position, updated_at = EXCLUDED.updated_at
       WHERE EXCLUDED.position > bot_checkpoints.position`,
      [this.bot, position],
    );
  }

  async addDeadLetter(letter: NewDeadLetter): Promise<number> {
    const [row] = await this.query<{ id: number }>(
      `INSERT INTO bot_dead_letters (bot, position, name, payload, tid, error, attempts, created_at)
       VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, ${NOW_MS}) RETURNING id`,
      [this.bot, letter.position, letter.name, JSON.stringify(letter.payload), letter.tid, letter.error, letter.attempts],
    );
    return (row as { id: number }).id;
  }

  deadLetters(state?: DeadLetter['state']): Promise<DeadLetter[]> {
    return state === undefined
      ? this.query<DeadLetter>(`SELECT ${LETTER} FROM bot_dead_letters WHERE bot = $1 ORDER BY id`, [this.bot])
      : this.query<DeadLetter>(`SELECT ${LETTER} FROM bot_dead_letters WHERE bot = $1 AND state = $2 ORDER BY id`, [this.bot, state]);
  }

  async deadLetter(id: number): Promise<DeadLetter | undefined> {
    const [row] = await this.query<DeadLetter>(`SELECT ${LETTER} FROM bot_dead_letters WHERE bot = $1 AND id = $2`, [this.bot, id]);
    return row;
  }

  async requestReplay(id: number): Promise<boolean> {
    const rows = await this.query(
      "UPDATE bot_dead_letters SET state = 'replay' WHERE bot = $1 AND id = $2 AND state = 'dead' RETURNING 1",
      [this.bot, id],
    );
    return rows.length === 1;
  }

  async discardDeadLetter(id: number): Promise<DeadLetter | undefined> {
    const [row] = await this.query<DeadLetter>(
      `DELETE FROM bot_dead_letters WHERE bot = $1 AND id = $2 AND state = 'dead' RETURNING ${LETTER}`,
      [this.bot, id],
    );
    return row;
  }

  async replaySucceeded(id: number): Promise<void> {
    await this.query(`UPDATE bot_dead_letters SET state = 'replayed', replayed_at = ${NOW_MS} WHERE bot = $1 AND id = $2`, [this.bot, id]);
  }

  async replayFailed(id: number, error: string, attempts: number): Promise<void> {
    await this.query("UPDATE bot_dead_letters SET state = 'dead', error = $3, attempts = attempts + $4 WHERE bot = $1 AND id = $2", [
      this.bot,
      id,
      error,
      attempts,
    ]);
  }

  async get<T extends Json = Json>(key: string): Promise<T | undefined> {
    checkKey(key);
    const [row] = await this.query<{ value: T }>('SELECT value FROM bot_state WHERE bot = $1 AND key = $2', [this.bot, key]);
    return row?.value;
  }

  async set(key: string, value: Json): Promise<void> {
    checkKey(key);
    await this.query(UPSERT_STATE, [this.bot, key, toJson(key, value)]);
  }

  async delete(key: string): Promise<boolean> {
    checkKey(key);
    return (await this.query('DELETE FROM bot_state WHERE bot = $1 AND key = $2 RETURNING 1', [this.bot, key])).length === 1;
  }

  update<T extends Json = Json>(key: string, fn: (current: T | undefined) => T | undefined): Promise<T | undefined> {
    return updateOne(this, key, fn);
  }

  updateMany<K extends string>(
    keys: readonly K[],
    fn: (current: Partial<Record<K, Json>>) => Partial<Record<K, Json | undefined>>,
  ): Promise<Partial<Record<K, Json>>> {
    keys.forEach(checkKey);
    return this.transaction(async (c) => {
      // A transaction lock per key (absent keys too, which no row lock could cover), taken in one
      // order so that two updates never deadlock. The two-key form keeps them apart from the
      // single-key advisory locks (migrations, the active instance).
      await c.query(
        `SELECT pg_advisory_xact_lock(hashtext('bot_state:' || current_schema()), h)
         FROM (SELECT DISTINCT hashtext($1 || ':' || k) AS h FROM unnest($2::text[]) AS k ORDER BY h) AS locks`,
        [this.bot, keys],
      );
      const { rows } = await c.query<{ key: K; value: Json }>('SELECT key, value FROM bot_state WHERE bot = $1 AND key = ANY($2::text[])', [
        this.bot,
        keys,
      ]);
      const current = Object.fromEntries(rows.map((r) => [r.key, r.value])) as Partial<Record<K, Json>>;
      const { writes, removes, after } = planUpdate(keys, current, fn);
      // One statement each for the removals and the writes: a round trip counts more than rows.
      if (removes.length > 0) await c.query('DELETE FROM bot_state WHERE bot = $1 AND key = ANY($2::text[])', [this.bot, removes]);
      if (writes.length > 0) {
        await c.query(
          `INSERT INTO bot_state (bot, key, value, updated_at)
           SELECT $1, k, v::jsonb, ${NOW_MS} FROM unnest($2::text[], $3::text[]) AS w(k, v)
           ON CONFLICT (bot, key) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at`,
          [this.bot, writes.map(([k]) => k), writes.map(([, v]) => v)],
        );
      }
      return after;
    });
  }

  async prune(prefix: string, olderThanMs: number): Promise<number> {
    const rows = await this.query(
      `DELETE FROM bot_state WHERE bot = $1 AND starts_with(key, $2) AND updated_at < ${NOW_MS} - $3 RETURNING 1`,
      [this.bot, prefix, olderThanMs],
    );
    return rows.length;
  }

  close(): Promise<void> {
    return this.db.close();
  }

  private query<R extends QueryResultRow = QueryResultRow>(text: string, values?: unknown[]): Promise<R[]> {
    return reachable(() => this.db.query<R>(text, values));
  }

  private transaction<T>(fn: (client: PoolClient) => Promise<T>): Promise<T> {
    return reachable(() => this.db.transaction(fn));
  }
}
