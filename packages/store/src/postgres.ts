import { setTimeout as sleep } from 'node:timers/promises';

import { AppError, type Logger, maskUrlCredentials } from '@steem-bot/config';
import pg from 'pg';

export type { PoolClient, QueryResultRow } from 'pg';

/** How an app reaches PostgreSQL (`STORE=postgres`, `DATABASE_URL`). */
export interface PostgresOptions {
  /** `postgres://user:pass@host:5432/db`; the password never reaches a log line or an error. */
  url: string;
  /** The schema the app's tables live in (created if missing); tests use one of their own. */
  schema: string;
  /** A name for the migrations and for `application_name` (e.g. `mailer`). */
  name: string;
  /** Ordered schema steps; step i runs once, under an advisory lock, in one transaction. */
  migrations?: readonly string[];
  /** `application_name` of its connections (default `steem-bot/<name>`): what an operator sees in pg_stat_activity. */
  applicationName?: string;
  /** Connections in the pool (default 4: these are small processes). */
  poolSize?: number;
  logger?: Logger;
}

// int8 (BIGINT, OID 20) and its array come back as strings by default. Positions and ids fit in
// a double only up to 2^53 - 1: parse them to numbers, and refuse (loudly) anything larger rather
// than round it.
const INT8 = 20;
const INT8_ARRAY = 1016;

function parseInt8(text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new RangeError(`BIGINT ${text} is beyond Number.MAX_SAFE_INTEGER`);
  return n;
}

// pg-types' own parsers, typed loosely: its TypeId enum does not list every OID.
const builtinParser = pg.types.getTypeParser as unknown as (oid: number, format?: string) => (text: string) => unknown;
const parseInt8Array = builtinParser(INT8_ARRAY) as (text: string) => Array<string | null>;

const typeParsers = {
  getTypeParser(oid: number, format?: string): unknown {
    if (oid === INT8) return parseInt8;
    if (oid === INT8_ARRAY) return (text: string) => parseInt8Array(text).map((v) => (v === null ? null : parseInt8(v)));
    return builtinParser(oid, format);
  },
};

const IDENT = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * One app's PostgreSQL access: a small pool whose connections use the app's schema, numbered
 * migrations taken under an advisory lock (several processes may start at once), transactions,
 * a LISTEN connection that reconnects, and the advisory lock of a single active instance.
 */
export class Postgres {
  readonly pool: pg.Pool;
  private closed = false;

  private constructor(readonly options: PostgresOptions) {
    this.pool = new pg.Pool({ ...this.clientConfig(), max: options.poolSize ?? 4 });
    // An idle connection that dies (server restart, pg_terminate_backend) is dropped from the pool;
    // the next query opens a new one. Without a listener the error would crash the process.
    this.pool.on('error', (err) => options.logger?.warn({ err: safeError(err) }, 'an idle PostgreSQL connection failed'));
  }

  /** Connect, create the schema and run the pending migrations. */
  static async open(options: PostgresOptions): Promise<Postgres> {
    if (!IDENT.test(options.schema)) throw new AppError('ERR_CONFIG_INVALID', `schema "${options.schema}" is not a plain lower-case name`);
    const db = new Postgres(options);
    try {
      await db.migrate(options.migrations ?? []);
    } catch (err) {
      await db.close();
      throw safeError(err);
    }
    return db;
  }

  /** Run one statement on a pooled connection. */
  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<R[]> {
    return (await this.pool.query<R>(text, values)).rows;
  }

  /** Run `fn` in one transaction on one connection: committed if it resolves, rolled back if it throws. */
  async transaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    // A checked-out connection that dies between two statements (pg_terminate_backend, a server
    // restart) emits 'error' with no query to fail: without a listener the process would crash.
    // Note it, let the next statement fail, and throw the connection away on release.
    let lost: Error | undefined;
    const onError = (err: Error): void => {
      lost = err;
    };
    client.on('error', onError);
    try {
      await client.query('BEGIN');
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      if (!lost) await client.query('ROLLBACK').catch(() => undefined);
      throw safeError(err);
    } finally {
      client.off('error', onError);
      client.release(lost ?? false);
    }
  }

  /**
   * LISTEN on `channel` over a dedicated connection that reconnects (with backoff) when it is
   * lost. Notifications sent while it was down are gone, so `onReconnect` runs after every
   * reconnection: callers poll there (the timer poll stays the safety net).
   */
  listen(channel: string, onNotify: (payload: string | undefined) => void, onReconnect: () => void = () => undefined): Listener {
    if (!IDENT.test(channel)) throw new AppError('ERR_CONFIG_INVALID', `channel "${channel}" is not a plain lower-case name`);
    return new Listener(() => new pg.Client(this.clientConfig()), channel, onNotify, onReconnect, this.options.logger);
  }

  /**
   * Become the single active instance of `name`: wait (polling every `pollMs`) until the session
   * advisory lock is ours, on a dedicated connection. If that connection is lost the lock is
   * gone with it: `onLost` runs at once, and the holder must stop acting.
   */
  async acquireLock(
    name: string,
    onLost: (err: Error) => void,
    options: { pollMs?: number; signal?: AbortSignal } = {},
  ): Promise<ActiveLock> {
    const client = new pg.Client(this.clientConfig());
    // A standby's connection may die while it waits (a server restart, pg_terminate_backend):
    // without a listener that 'error' would crash the process; the next poll fails instead.
    let broken: Error | undefined;
    const noteError = (err: Error): void => void (broken ??= err);
    client.on('error', noteError);
    await client.connect();
    const key = `${this.options.schema}:${name}`;
    try {
      for (;;) {
        if (broken) throw broken;
        const { rows } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtext($1)) AS ok', [key]);
        if (rows[0]?.ok) break;
        await sleep(options.pollMs ?? 1_000, undefined, { signal: options.signal });
      }
    } catch (err) {
      await client.end().catch(() => undefined);
      throw safeError(err);
    } finally {
      client.off('error', noteError);
    }
    return new ActiveLock(client, key, onLost);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }

  private clientConfig(): pg.ClientConfig {
    return {
      connectionString: this.options.url,
      application_name: this.options.applicationName ?? `steem-bot/${this.options.name}`,
      options: `-c search_path=${this.options.schema}`,
      types: typeParsers as pg.CustomTypesConfig,
      // A peer that vanished without closing (a host down, a partition) is found out by TCP.
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
    };
  }

  private async migrate(migrations: readonly string[]): Promise<void> {
    const { schema, name } = this.options;
    await this.transaction(async (client) => {
      // Two processes starting at once: the second waits here, then finds nothing left to do.
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`${schema}:migrations`]);
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
      await client.query(`CREATE TABLE IF NOT EXISTS ${schema}.schema_migrations (name TEXT PRIMARY KEY, version INTEGER NOT NULL)`);
      const { rows } = await client.query<{ version: number }>(`SELECT version FROM ${schema}.schema_migrations WHERE name = $1`, [name]);
      const version = rows[0]?.version ?? 0;
      for (let i = version; i < migrations.length; i++) await client.query(migrations[i] as string);
      if (version < migrations.length) {
        await client.query(
          `INSERT INTO ${schema}.schema_migrations (name, version) VALUES ($1, $2)
           ON CONFLICT (name) DO UPDATE SET version = EXCLUDED.version`,
          [name, migrations.length],
        );
      }
    });
  }
}

/** A LISTEN connection that comes back by itself. */
export class Listener {
  private client: pg.Client | undefined;
  private stopped = false;
  private attempt = 0;
  /** Resolves once the first LISTEN is in place. */
  readonly ready: Promise<void>;

  constructor(
    private readonly connect: () => pg.Client,
    private readonly channel: string,
    private readonly onNotify: (payload: string | undefined) => void,
    private readonly onReconnect: () => void,
    private readonly logger: Logger | undefined,
  ) {
    this.ready = this.open(true);
  }

  private async open(first: boolean): Promise<void> {
    while (!this.stopped) {
      const client = this.connect();
      try {
        client.on('notification', (n) => {
          if (n.channel === this.channel) this.onNotify(n.payload);
        });
        client.on('error', () => this.lost(client));
        client.on('end', () => this.lost(client));
        await client.connect();
        await client.query(`LISTEN ${this.channel}`);
        if (this.stopped) {
          await client.end();
          return;
        }
        this.client = client;
        this.attempt = 0;
        if (!first) this.onReconnect();
        return;
      } catch (err) {
        client.removeAllListeners('end');
        await client.end().catch(() => undefined);
        if (first) throw safeError(err); // at start-up: the caller says what is wrong
        const delay = Math.min(30_000, 250 * 2 ** Math.min(this.attempt++, 7));
        this.logger?.warn({ err: safeError(err), delay }, `LISTEN ${this.channel}: reconnecting`);
        await sleep(delay);
      }
    }
  }

  private lost(client: pg.Client): void {
    if (this.client !== client || this.stopped) return;
    this.client = undefined;
    client.removeAllListeners('end');
    this.logger?.warn(`LISTEN ${this.channel}: connection lost; reconnecting`);
    void this.open(false);
  }

  async close(): Promise<void> {
    this.stopped = true;
    const client = this.client;
    this.client = undefined;
    if (client) {
      client.removeAllListeners('end');
      await client.end().catch(() => undefined);
    }
  }
}

/** How often the lock holder checks its connection, and how long an answer may take. */
const HEARTBEAT_MS = 5_000;

/** The session advisory lock of the single active instance, on its own connection. */
export class ActiveLock {
  private released = false;
  private readonly heartbeat: NodeJS.Timeout;

  constructor(
    private readonly client: pg.Client,
    readonly key: string,
    onLost: (err: Error) => void,
  ) {
    const lost = (err?: Error): void => {
      clearInterval(this.heartbeat);
      if (this.released) return;
      this.released = true;
      onLost(safeError(err ?? new Error(`the connection holding lock ${key} ended`)));
    };
    client.on('error', lost);
    client.on('end', () => lost());
    // A half-open connection (the server dropped the session, and the lock with it, but no error
    // reached us) is found out by asking: a check that fails or goes unanswered means lost.
    this.heartbeat = setInterval(() => {
      let timer: NodeJS.Timeout | undefined;
      const unanswered = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(
          () => reject(new Error(`the connection holding lock ${key} did not answer within ${HEARTBEAT_MS} ms`)),
          HEARTBEAT_MS,
        );
      });
      const check = client.query('SELECT 1');
      check.catch(() => undefined); // settled by the race below
      Promise.race([check, unanswered])
        .catch((err: unknown) => {
          if (!this.released) void client.end().catch(() => undefined);
          lost(err instanceof Error ? err : new Error(String(err)));
        })
        .finally(() => clearTimeout(timer));
    }, HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  /** Give the lock up (on a clean stop) so a standby takes over at once. */
  async release(): Promise<void> {
    clearInterval(this.heartbeat);
    if (this.released) return;
    this.released = true;
    await this.client.query('SELECT pg_advisory_unlock(hashtext($1))', [this.key]).catch(() => undefined);
    await this.client.end().catch(() => undefined);
  }
}

/** pg errors may quote the connection string; never let a password through. */
function safeError(err: unknown): Error {
  if (!(err instanceof Error)) return new Error(maskUrlCredentials(String(err)));
  err.message = maskUrlCredentials(err.message);
  return err;
}
