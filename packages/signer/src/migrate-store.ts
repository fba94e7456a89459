import { AppError } from '@steem-bot/config';

import { ACTION_COLUMNS, type PostgresSignerStore } from './store-postgres';
import type { SqliteSignerStore } from './store-sqlite';

/** What `migrateToPostgres` copied. */
export interface SignerMigrationCounts {
  actions: number;
  /** Of them, still open (pending, waiting for RC, or sent and not yet confirmed). */
  open: number;
  transactions: number;
  /** Outcome events not yet published (they go out when the signer starts on PostgreSQL). */
  unpublished: number;
}

const TRANSACTION_COLUMNS = ['trx_id', 'action_id', 'trx', 'expiration', 'signed_at'] as const;
const insert = (table: string, columns: readonly string[]): string =>
  `INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map((_c, i) => `$${i + 1}`).join(', ')})`;

/**
 * Copy the signer's SQLite file into an empty PostgreSQL store, all or nothing: every action with
 * its id, key, state and counters, and every transaction ever signed for it (so a transaction in
 * flight is looked up and rebroadcast, never signed anew, and an earlier one still confirms its
 * action). The SQLite file is held (write lock) for the whole copy and then marked as moved in the
 * same SQLite transaction: a signer started on it afterwards refuses to run (nothing signed twice
 * from two records). Refuses a target that already holds actions (ERR_SIGNER_CONFLICT).
 */
export async function migrateToPostgres(
  source: SqliteSignerStore,
  target: PostgresSignerStore,
  movedTo: string,
): Promise<SignerMigrationCounts> {
  const db = source.db;
  // Taken first: a signer still running on the file cannot change it during the copy.
  db.exec('BEGIN IMMEDIATE');
  try {
    const actions = source.rows('actions');
    const transactions = source.rows('transactions');
    await target.withTransaction(async (c) => {
      await c.query('LOCK TABLE signer_actions, signer_transactions IN EXCLUSIVE MODE');
      const { rows } = await c.query<{ n: number }>('SELECT COUNT(*) AS n FROM signer_actions');
      if ((rows[0]?.n ?? 0) > 0)
        throw new AppError('ERR_SIGNER_CONFLICT', 'the PostgreSQL signer store is not empty: migrate-store copies into an empty one only');
      for (const r of actions) {
        const flag = (v: unknown): boolean | null => (v === null || v === undefined ? null : Number(v) === 1);
        const row: Record<string, unknown> = { ...r, retryable: flag(r.retryable), published: flag(r.published) };
        await c.query(
          insert('signer_actions', ACTION_COLUMNS),
          ACTION_COLUMNS.map((k) => row[k] ?? null),
        );
      }
      // New actions number on from the last one copied.
      await c.query("SELECT setval(pg_get_serial_sequence('signer_actions', 'seq'), GREATEST((SELECT MAX(seq) FROM signer_actions), 1))");
      for (const r of transactions)
        await c.query(
          insert('signer_transactions', TRANSACTION_COLUMNS),
          TRANSACTION_COLUMNS.map((k) => r[k]),
        );
    });
    source.markMoved(movedTo, Date.now());
    db.exec('COMMIT');
    const open = actions.filter((a) => ['pending', 'waiting-rc', 'sent'].includes(String(a.state))).length;
    const unpublished = actions.filter((a) => Number(a.published) === 0 && ['confirmed', 'failed'].includes(String(a.state))).length;
    return { actions: actions.length, open, transactions: transactions.length, unpublished };
  } catch (err) {
    if (db.inTransaction) db.exec('ROLLBACK');
    throw err;
  }
}
