import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

import Database from 'better-sqlite3';

export type { Database, Statement } from 'better-sqlite3';

export interface OpenOptions {
  /** Ordered schema steps; step i runs once, when `PRAGMA user_version` is below i + 1. */
  migrations?: readonly string[];
  /** How long a writer waits for another process's lock before SQLITE_BUSY (default 5000 ms). */
  busyTimeoutMs?: number;
  readonly?: boolean;
}

/**
 * Open (or create) an app's SQLite file with the house settings: WAL (readers never block the
 * writer), a busy timeout (several processes may share a file), synchronous=NORMAL (durable
 * across a process crash; WAL keeps the file consistent across power loss) and foreign keys.
 * Pending migrations run in one transaction each.
 */
export function openDatabase(file: string, options: OpenOptions = {}): Database.Database {
  if (file !== ':memory:' && !options.readonly) mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const db = new Database(file, { readonly: options.readonly ?? false, fileMustExist: options.readonly ?? false });
  db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 5_000}`);
  if (!options.readonly) {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
  }
  db.pragma('foreign_keys = ON');
  const migrations = options.migrations ?? [];
  if (!options.readonly && migrations.length > 0) migrate(db, migrations);
  return db;
}

function migrate(db: Database.Database, migrations: readonly string[]): void {
  // IMMEDIATE takes the write lock first, so two processes opening a new file cannot both migrate.
  db.transaction(() => {
    const version = db.pragma('user_version', { simple: true }) as number;
    for (let i = version; i < migrations.length; i++) db.exec(migrations[i] as string);
    if (version < migrations.length) db.pragma(`user_version = ${migrations.length}`);
  }).immediate();
}
