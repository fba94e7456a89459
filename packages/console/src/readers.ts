import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

import { AppError, type Config, maskUrlCredentials } from '@steem-bot/config';
import { openDatabase } from '@steem-bot/store';
import pg from 'pg';

/** The apps whose stores the console reads (a bot is `bot:<name>`). */
export type StoreApp = 'mailer' | 'signer' | 'webhooks' | 'clock' | `bot:${string}`;

/**
 * Read-only access to one app's store, in one transaction: the same SQL for both dialects, with
 * `?` placeholders and the app's tables named through `t` (PostgreSQL prefixes some, and keeps
 * every bot in shared tables).
 */
export interface StoreRead {
  readonly dialect: 'sqlite' | 'postgres';
  /** The app's table `name` (its SQLite name) as a FROM item of this dialect. */
  t(name: string): string;
  all<R>(sql: string, params?: readonly unknown[]): Promise<R[]>;
  get<R>(sql: string, params?: readonly unknown[]): Promise<R | undefined>;
  /** The larger of two SQL expressions (SQLite's scalar MAX, PostgreSQL's GREATEST). */
  greatest(a: string, b: string): string;
}

/** The stores of the configured kind (STORE), opened for reading only: the console never writes another app's store. */
export interface StoreReaders {
  readonly kind: 'sqlite' | 'postgres';
  /** Where the streams (and, on SQLite, the stores) are. */
  readonly dataDir: string;
  /** Run `read` on `app`'s store; undefined when the app has no store there (yet). */
  read<T>(app: StoreApp, read: (r: StoreRead) => Promise<T>): Promise<T | undefined>;
  /** The bots that have a store. */
  botNames(): Promise<string[]>;
  /** A stable name of `app`'s store, for caches (never a password). */
  key(app: StoreApp): string;
  close(): Promise<void>;
}

export type ReaderConfig = Pick<Config<'store'>, 'DATA_DIR' | 'STORE' | 'DATABASE_URL' | 'DATABASE_SCHEMA'>;

const BOT = /^[a-z][a-z0-9-]{0,31}$/;

function botOf(app: StoreApp): string | undefined {
  if (!app.startsWith('bot:')) return undefined;
  const name = app.slice(4);
  if (!BOT.test(name)) throw new RangeError(`not a bot name: ${name}`);
  return name;
}

/** Open the readers of the configured store (STORE; DATABASE_URL and DATABASE_SCHEMA on PostgreSQL). */
export function openReaders(config: ReaderConfig): StoreReaders {
  if (config.STORE === 'sqlite') return sqliteReaders(config.DATA_DIR);
  if (!config.DATABASE_URL)
    throw new AppError(
      'ERR_CONFIG_INVALID',
      'STORE=postgres needs DATABASE_URL (postgres://user:pass@host:5432/db) for the console to read the stores',
    );
  return new PostgresReaders(config.DATA_DIR, config.DATABASE_URL, config.DATABASE_SCHEMA);
}

// ---- SQLite: one file per app under DATA_DIR, opened read-only for each read ----

const sqliteFile = (dataDir: string, app: StoreApp): string => {
  const bot = botOf(app);
  return join(dataDir, bot === undefined ? `${app}.sqlite` : `bot-${bot}.sqlite`);
};

/** Run `read` on a SQLite store file opened read-only; undefined when the file does not exist (yet). */
export async function readSqlite<T>(file: string, read: (r: StoreRead) => Promise<T>): Promise<T | undefined> {
  if (!existsSync(file)) return undefined;
  const db = openDatabase(file, { readonly: true, busyTimeoutMs: 2_000 });
  try {
    // One snapshot for all of the app's reads, as on PostgreSQL.
    db.exec('BEGIN');
    return await read({
      dialect: 'sqlite',
      t: (name) => name,
      all: <R>(sql: string, params: readonly unknown[] = []) => Promise.resolve(db.prepare(sql).all(...params) as R[]),
      get: <R>(sql: string, params: readonly unknown[] = []) => Promise.resolve(db.prepare(sql).get(...params) as R | undefined),
      greatest: (a, b) => `MAX(${a}, ${b})`,
    });
  } finally {
    if (db.inTransaction) db.exec('ROLLBACK');
    db.close();
  }
}

/** The bots that have a store file under `dataDir` (`bot-<name>.sqlite`). */
export function botNamesOnDisk(dataDir: string): string[] {
  if (!existsSync(dataDir)) return [];
  return readdirSync(dataDir)
    .map((f) => /^bot-([a-z][a-z0-9-]*)\.sqlite$/.exec(f)?.[1])
    .filter((n): n is string => n !== undefined);
}

function sqliteReaders(dataDir: string): StoreReaders {
  return {
    kind: 'sqlite',
    dataDir,
    read: (app, read) => readSqlite(sqliteFile(dataDir, app), read),
    botNames: () => Promise.resolve(botNamesOnDisk(dataDir)),
    key: (app) => `sqlite:${sqliteFile(dataDir, app)}`,
    close: () => Promise.resolve(),
  };
}

// ---- PostgreSQL: every app's tables in DATABASE_SCHEMA, read over one small read-only pool ----

/** Each app's tables on PostgreSQL, by their SQLite names (the apps' own store-postgres.ts). */
const PG_TABLES: Record<'mailer' | 'signer' | 'webhooks' | 'clock' | 'bot', Record<string, string>> = {
  mailer: { messages: 'messages', attempts: 'attempts' },
  signer: { actions: 'signer_actions' },
  webhooks: { endpoints: 'webhooks_endpoints', deliveries: 'webhooks_deliveries' },
  clock: { ticks: 'clock_ticks' },
  // Every bot's rows in shared tables, keyed by the bot's name (packages/bot/src/store-postgres.ts).
  bot: { checkpoint: 'bot_checkpoints', dead_letters: 'bot_dead_letters' },
};

// BIGINT (COUNT, ids, ms times) and NUMERIC (SUM of BIGINT) come back as strings: parse them to
// numbers, refusing an integer beyond 2^53 rather than rounding it.
const INT8 = 20;
const NUMERIC = 1700;
const builtinParser = pg.types.getTypeParser as unknown as (oid: number, format?: string) => (text: string) => unknown;
const types = {
  getTypeParser(oid: number, format?: string): unknown {
    if (oid === INT8)
      return (text: string) => {
        const n = Number(text);
        if (!Number.isSafeInteger(n)) throw new RangeError(`BIGINT ${text} is beyond Number.MAX_SAFE_INTEGER`);
        return n;
      };
    if (oid === NUMERIC) return Number;
    return builtinParser(oid, format);
  },
};

/** `?` placeholders (outside string literals) as `$1`, `$2`, ... */
export function numberPlaceholders(sql: string): string {
  let n = 0;
  return sql.replace(/'(?:[^']|'')*'|\?/g, (m) => (m === '?' ? `$${++n}` : m));
}

const UNDEFINED_TABLE = '42P01';

class PostgresReaders implements StoreReaders {
  readonly kind = 'postgres' as const;
  private readonly pool: pg.Pool;
  private readonly where: string;
  /** Whether the bots keep their stores in PostgreSQL (their tables exist), checked per read. */
  private botTables: Promise<boolean> | undefined;

  constructor(
    readonly dataDir: string,
    url: string,
    private readonly schema: string,
  ) {
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema))
      throw new AppError('ERR_CONFIG_INVALID', `schema "${schema}" is not a plain lower-case name`);
    this.where = `postgres:${maskUrlCredentials(url)}#${schema}`;
    this.pool = new pg.Pool({
      connectionString: url,
      application_name: 'steem-bot/console',
      // Every transaction of these connections is read-only: the server refuses any write.
      options: `-c search_path=${schema} -c default_transaction_read_only=on -c statement_timeout=10000`,
      types: types as pg.CustomTypesConfig,
      max: 2,
      connectionTimeoutMillis: 5_000,
      idleTimeoutMillis: 30_000,
      keepAlive: true,
    });
    // An idle connection that dies is dropped from the pool; without a listener it would crash the console.
    this.pool.on('error', () => undefined);
  }

  async read<T>(app: StoreApp, read: (r: StoreRead) => Promise<T>): Promise<T | undefined> {
    const bot = botOf(app);
    if (bot !== undefined && !(await this.botsInPostgres())) return readSqlite(sqliteFile(this.dataDir, app), read);
    const tables = PG_TABLES[bot === undefined ? (app as keyof typeof PG_TABLES) : 'bot'];
    const t = (name: string): string => {
      const table = tables[name];
      if (table === undefined) throw new RangeError(`${app} has no table ${name} on PostgreSQL`);
      // A bot's rows, as if its table were its own (the name is checked: a plain literal).
      return bot === undefined ? table : `(SELECT * FROM ${table} WHERE bot = '${bot}') AS ${name}`;
    };
    const client = await this.pool.connect();
    let broken: Error | undefined;
    const onError = (err: Error): void => void (broken ??= err);
    client.on('error', onError);
    try {
      // One snapshot for all of the app's reads.
      await client.query('BEGIN TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const all = async <R>(sql: string, params: readonly unknown[] = []): Promise<R[]> =>
        (await client.query(numberPlaceholders(sql), params as unknown[])).rows as R[];
      return await read({
        dialect: 'postgres',
        t,
        all,
        get: async <R>(sql: string, params?: readonly unknown[]) => (await all<R>(sql, params))[0],
        greatest: (a, b) => `GREATEST(${a}, ${b})`,
      });
    } catch (err) {
      // The app has not created its tables yet: as a SQLite file that does not exist yet.
      if ((err as { code?: string }).code === UNDEFINED_TABLE) return undefined;
      throw new Error(`reading the ${app} store in PostgreSQL schema ${this.schema}: ${(err as Error).message}`, { cause: err });
    } finally {
      if (!broken) await client.query('ROLLBACK').catch(() => undefined);
      client.off('error', onError);
      client.release(broken ?? false);
    }
  }

  async botNames(): Promise<string[]> {
    if (!(await this.botsInPostgres())) return botNamesOnDisk(this.dataDir);
    const rows = await this.pool.query<{ bot: string }>('SELECT bot FROM bot_checkpoints UNION SELECT DISTINCT bot FROM bot_dead_letters');
    return rows.rows.map((r) => r.bot).filter((b) => BOT.test(b));
  }

  key(app: StoreApp): string {
    return `${this.where}:${app}`;
  }

  close(): Promise<void> {
    return this.pool.end();
  }

  // Bots that have not moved to PostgreSQL yet keep SQLite files under DATA_DIR even with
  // STORE=postgres: read those until the shared bot tables exist (once found, they stay).
  private async botsInPostgres(): Promise<boolean> {
    const check = (this.botTables ??= this.pool
      .query<{ t: string | null }>("SELECT to_regclass('bot_checkpoints')::text AS t")
      .then((r) => r.rows[0]?.t != null));
    const found = await check.catch(() => false);
    if (!found) this.botTables = undefined;
    return found;
  }
}
