import { join } from 'node:path';

import { AppError, type Config, type Logger } from '@steem-bot/config';

import { type MailerStore, SqliteMailerStore } from './mailer-store';
import { MailStore } from './store';
import { PostgresMailerStore } from './store-postgres';

export const storeFile = (dataDir: string): string => join(dataDir, 'mailer.sqlite');

/** Which process opens the store: the intake fsyncs its commits and leaves WAL checkpoints to the worker. */
export type StoreRole = 'intake' | 'worker' | 'cli';

/** The configured store: the SQLite file under DATA_DIR, or PostgreSQL with STORE=postgres. */
export async function openMailerStore(config: Config<'store'>, role: StoreRole, logger?: Logger): Promise<MailerStore> {
  if (config.STORE === 'sqlite') {
    const options = role === 'intake' ? { checkpoints: false, fsyncCommits: true } : {};
    return new SqliteMailerStore(new MailStore(storeFile(config.DATA_DIR), options));
  }
  if (!config.DATABASE_URL)
    throw new AppError('ERR_CONFIG_INVALID', 'STORE=postgres needs DATABASE_URL (postgres://user:pass@host:5432/db)');
  // The worker's 20 sends in flight each record their outcome in a transaction of their own.
  const poolSize = role === 'worker' ? 8 : 4;
  return PostgresMailerStore.open({ url: config.DATABASE_URL, schema: config.DATABASE_SCHEMA, poolSize, ...(logger ? { logger } : {}) });
}
