import { randomUUID } from 'node:crypto';

import { type ActionState, AppError } from '@steem-bot/config';
import { type Database, openDatabase } from '@steem-bot/store';

import type { SignedTransaction } from './steem';
import {
  type Action,
  type ActionInput,
  type ActionKind,
  type ActionRow,
  type ActionUpdate,
  checkRetry,
  lastOf,
  OPEN_SQL,
  opText,
  type Outcome,
  outcomeFields,
  sameAction,
  type SignedRecord,
  type SignerStore,
  toAction,
} from './store';

const MIGRATIONS = [
  `CREATE TABLE actions (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     id TEXT NOT NULL UNIQUE,
     key TEXT NOT NULL UNIQUE,
     kind TEXT NOT NULL,
     account TEXT NOT NULL,
     role TEXT NOT NULL,
     op TEXT NOT NULL,
     op_hash TEXT NOT NULL,
     state TEXT NOT NULL,
     trx TEXT,
     trx_id TEXT,
     expiration INTEGER,
     signed INTEGER NOT NULL DEFAULT 0,
     signed_at INTEGER,
     broadcast_at INTEGER,
     block_num INTEGER,
     reason TEXT,
     retryable INTEGER,
     next_at INTEGER NOT NULL DEFAULT 0,
     published INTEGER NOT NULL DEFAULT 1,
     tid TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL
   );
   CREATE INDEX actions_open ON actions(state, account, seq);
   -- Every transaction ever signed for an action: any of them seen in a block confirms it.
   CREATE TABLE transactions (
     trx_id TEXT PRIMARY KEY,
     action_id TEXT NOT NULL REFERENCES actions(id),
     trx TEXT NOT NULL,
     expiration INTEGER NOT NULL,
     signed_at INTEGER NOT NULL
   );`,
  // The operator's Retry gives a failed action a fresh signing budget, counted from here.
  `ALTER TABLE actions ADD COLUMN signs_base INTEGER NOT NULL DEFAULT 0;`,
  // Set by migrate-store: this file's actions now live in PostgreSQL, and a signer refuses it.
  `CREATE TABLE moved (target TEXT NOT NULL, at INTEGER NOT NULL);`,
];

/** The embedded store: the signer's SQLite file under DATA_DIR. */
export class SqliteSignerStore implements SignerStore {
  readonly db: Database;

  /** `readMoved`: open a file migrate-store has moved to PostgreSQL (to read it; a signer never does). */
  constructor(file: string, options: { readMoved?: boolean } = {}) {
    this.db = openDatabase(file, { migrations: MIGRATIONS });
    const moved = this.db.prepare('SELECT target, at FROM moved').get() as { target: string; at: number } | undefined;
    if (moved && !options.readMoved) {
      this.db.close();
      throw new AppError(
        'ERR_CONFIG_INVALID',
        `${file} was moved to PostgreSQL (${moved.target}) by migrate-store at ${new Date(moved.at).toISOString()}: run the signer with STORE=postgres`,
      );
    }
  }

  /** migrate-store: the actions now live in PostgreSQL (`target` says where, without credentials). */
  markMoved(target: string, now: number): void {
    this.db.prepare('INSERT INTO moved (target, at) VALUES (?, ?)').run(target, now);
  }

  close(): Promise<void> {
    this.db.close();
    return Promise.resolve();
  }

  record(input: ActionInput, now: number): Promise<Action> {
    const { op, hash } = opText(input.op);
    const byKey = this.db.prepare('SELECT * FROM actions WHERE key = ?');
    return this.run(() =>
      this.db
        .transaction(() => {
          const existing = byKey.get(input.key) as ActionRow | undefined;
          if (existing) return sameAction(existing, input.key, hash);
          this.db
            .prepare(
              `INSERT INTO actions (id, key, kind, account, role, op, op_hash, state, tid, created_at, updated_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)`,
            )
            .run(randomUUID(), input.key, input.kind, input.account, input.role, op, hash, input.tid, now, now);
          return toAction(byKey.get(input.key) as ActionRow);
        })
        .immediate(),
    );
  }

  byKey(key: string): Promise<Action | undefined> {
    return this.one('SELECT * FROM actions WHERE key = ?', key);
  }

  byId(id: string): Promise<Action | undefined> {
    return this.one('SELECT * FROM actions WHERE id = ?', id);
  }

  openByTrxId(trxId: string): Promise<Action | undefined> {
    return this.one(
      `SELECT a.* FROM transactions t JOIN actions a ON a.id = t.action_id WHERE t.trx_id = ? AND a.state IN ${OPEN_SQL}`,
      trxId,
    );
  }

  open(): Promise<Action[]> {
    return this.many(`SELECT * FROM actions WHERE state IN ${OPEN_SQL} ORDER BY seq`);
  }

  unpublished(): Promise<Action[]> {
    return this.many(`SELECT * FROM actions WHERE published = 0 AND state IN ('confirmed', 'failed') ORDER BY seq`);
  }

  markPublished(id: string): Promise<void> {
    return this.run(() => void this.db.prepare('UPDATE actions SET published = 1 WHERE id = ?').run(id));
  }

  lastSigned(account: string, kind: ActionKind, exclude: string, root?: boolean): Promise<number | null> {
    return this.run(() => {
      const rows = this.db
        .prepare(
          `SELECT op, signed_at FROM actions WHERE account = ? AND kind = ? AND id != ? AND signed_at IS NOT NULL
           ORDER BY signed_at DESC LIMIT 50`,
        )
        .all(account, kind, exclude) as Array<{ op: string; signed_at: number }>;
      return lastOf(rows, root);
    });
  }

  signedSince(account: string, kind: ActionKind, exclude: string, since: number): Promise<{ count: number; earliest: number | null }> {
    return this.run(
      () =>
        this.db
          .prepare(
            `SELECT COUNT(*) AS count, MIN(signed_at) AS earliest FROM actions
             WHERE account = ? AND kind = ? AND id != ? AND signed_at >= ?`,
          )
          .get(account, kind, exclude, since) as { count: number; earliest: number | null },
    );
  }

  signed(id: string, trx: SignedTransaction, trxId: string, expiration: number, now: number): Promise<boolean> {
    const text = JSON.stringify(trx);
    return this.run(() =>
      this.db
        .transaction(() => {
          const changed = this.db
            .prepare(
              `UPDATE actions SET state = 'sent', trx = ?, trx_id = ?, expiration = ?, signed = signed + 1, signed_at = ?,
                 broadcast_at = NULL, reason = NULL, next_at = 0, updated_at = ?
               WHERE id = ? AND trx IS NULL AND state IN ${OPEN_SQL}`,
            )
            .run(text, trxId, expiration, now, now, id).changes;
          if (changed !== 1) return false;
          this.db
            .prepare('INSERT INTO transactions (trx_id, action_id, trx, expiration, signed_at) VALUES (?, ?, ?, ?, ?)')
            .run(trxId, id, text, expiration, now);
          return true;
        })
        .immediate(),
    );
  }

  update(id: string, fields: ActionUpdate, now: number): Promise<void> {
    const sets = Object.keys(fields).map((k) => `${k} = @${k}`);
    return this.run(
      () =>
        void this.db
          .prepare(`UPDATE actions SET ${[...sets, 'updated_at = @now'].join(', ')} WHERE id = @id AND state IN ${OPEN_SQL}`)
          .run({ ...fields, id, now }),
    );
  }

  finish(id: string, outcome: Outcome, now: number): Promise<boolean> {
    const f = outcomeFields(outcome);
    return this.run(
      () =>
        this.db
          .prepare(
            `UPDATE actions SET state = @state, trx_id = COALESCE(@trx_id, trx_id), block_num = @block_num, reason = @reason,
               retryable = @retryable, published = @published, updated_at = @now
             WHERE id = @id AND state IN ${OPEN_SQL}`,
          )
          .run({ ...f, retryable: f.retryable === null ? null : Number(f.retryable), published: Number(f.published), id, now }).changes ===
        1,
    );
  }

  retry(id: string, reason: string, now: number): Promise<Action> {
    const byId = this.db.prepare('SELECT * FROM actions WHERE id = ?');
    return this.run(() =>
      this.db
        .transaction(() => {
          checkRetry(byId.get(id) as ActionRow | undefined, id);
          this.db
            .prepare(
              `UPDATE actions SET state = 'pending', trx = NULL, signs_base = signed, reason = ?, retryable = NULL, block_num = NULL,
                 published = 1, next_at = 0, updated_at = ? WHERE id = ?`,
            )
            .run(reason, now, id);
          return toAction(byId.get(id) as ActionRow);
        })
        .immediate(),
    );
  }

  transactions(actionId: string): Promise<SignedRecord[]> {
    return this.run(
      () => this.db.prepare('SELECT * FROM transactions WHERE action_id = ? ORDER BY signed_at, rowid').all(actionId) as SignedRecord[],
    );
  }

  counts(): Promise<Partial<Record<ActionState, number>>> {
    return this.run(() => {
      const rows = this.db.prepare('SELECT state, COUNT(*) AS n FROM actions GROUP BY state').all() as Array<{
        state: ActionState;
        n: number;
      }>;
      return Object.fromEntries(rows.map((r) => [r.state, r.n]));
    });
  }

  all(): Promise<Action[]> {
    return this.many('SELECT * FROM actions ORDER BY seq');
  }

  /** Rows of a table, for `migrate-store`. */
  rows(table: 'actions' | 'transactions'): Array<Record<string, unknown>> {
    return this.db.prepare(`SELECT * FROM ${table} ORDER BY ${table === 'actions' ? 'seq' : 'rowid'}`).all() as Array<
      Record<string, unknown>
    >;
  }

  private one(sql: string, value: string): Promise<Action | undefined> {
    return this.run(() => {
      const row = this.db.prepare(sql).get(value) as ActionRow | undefined;
      return row && toAction(row);
    });
  }

  private many(sql: string): Promise<Action[]> {
    return this.run(() => (this.db.prepare(sql).all() as ActionRow[]).map(toAction));
  }

  /** A synchronous step as the interface's promise (a thrown error becomes a rejection). */
  private run<T>(fn: () => T): Promise<T> {
    try {
      return Promise.resolve(fn());
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }
}
