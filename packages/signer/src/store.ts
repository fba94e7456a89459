import { createHash, randomUUID } from 'node:crypto';

import { type ActionState, AppError } from '@steem-bot/config';
import { type Database, openDatabase } from '@steem-bot/store';

import type { KeyRole } from './keys';
import type { Operation, SignedTransaction } from './steem';

export type ActionKind = 'vote' | 'comment' | 'transfer' | 'custom_json';

/** A chain action as stored. */
export interface Action {
  seq: number;
  id: string;
  key: string;
  kind: ActionKind;
  account: string;
  role: KeyRole;
  op: Operation;
  state: ActionState;
  /** The signed transaction being broadcast (null before signing and after an expiry). */
  trx: SignedTransaction | null;
  trx_id: string | null;
  /** Chain time (ms) after which `trx` can no longer be included. */
  expiration: number | null;
  /** Transactions signed for this action so far. */
  signed: number;
  signed_at: number | null;
  broadcast_at: number | null;
  block_num: number | null;
  reason: string | null;
  retryable: boolean | null;
  next_at: number;
  published: boolean;
  tid: string;
  created_at: number;
}

interface Row extends Omit<Action, 'op' | 'trx' | 'retryable' | 'published'> {
  op: string;
  trx: string | null;
  op_hash: string;
  retryable: number | null;
  published: number;
}

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
];

const OPEN: readonly ActionState[] = ['pending', 'waiting-rc', 'sent'];

function toAction(row: Row): Action {
  return {
    ...row,
    op: JSON.parse(row.op) as Operation,
    trx: row.trx === null ? null : (JSON.parse(row.trx) as SignedTransaction),
    retryable: row.retryable === null ? null : row.retryable === 1,
    published: row.published === 1,
  };
}

/** The signer's SQLite file: actions by idempotency key, and the transactions signed for them. */
export class SignerStore {
  readonly db: Database;

  constructor(file: string) {
    this.db = openDatabase(file, { migrations: MIGRATIONS });
  }

  close(): void {
    this.db.close();
  }

  /**
   * Record an action under its idempotency key before anything else happens to it. The same key
   * with the same op returns the recorded action; with another op, ERR_SIGNER_CONFLICT.
   */
  record(input: { key: string; kind: ActionKind; account: string; role: KeyRole; op: Operation; tid: string }, now: number): Action {
    const op = JSON.stringify(input.op);
    const hash = createHash('sha256').update(op).digest('hex');
    return this.db
      .transaction(() => {
        const existing = this.db.prepare('SELECT * FROM actions WHERE key = ?').get(input.key) as Row | undefined;
        if (existing) {
          if (existing.op_hash !== hash)
            throw new AppError('ERR_SIGNER_CONFLICT', `idempotency key "${input.key}" was used for another action`);
          return toAction(existing);
        }
        this.db
          .prepare(
            `INSERT INTO actions (id, key, kind, account, role, op, op_hash, state, tid, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)`,
          )
          .run(randomUUID(), input.key, input.kind, input.account, input.role, op, hash, input.tid, now, now);
        return toAction(this.db.prepare('SELECT * FROM actions WHERE key = ?').get(input.key) as Row);
      })
      .immediate();
  }

  byKey(key: string): Action | undefined {
    const row = this.db.prepare('SELECT * FROM actions WHERE key = ?').get(key) as Row | undefined;
    return row && toAction(row);
  }

  byId(id: string): Action | undefined {
    const row = this.db.prepare('SELECT * FROM actions WHERE id = ?').get(id) as Row | undefined;
    return row && toAction(row);
  }

  /** The action one of whose transactions has this id, if it is still open. */
  openByTrxId(trxId: string): Action | undefined {
    const row = this.db
      .prepare(
        `SELECT a.* FROM transactions t JOIN actions a ON a.id = t.action_id
         WHERE t.trx_id = ? AND a.state IN ('pending', 'waiting-rc', 'sent')`,
      )
      .get(trxId) as Row | undefined;
    return row && toAction(row);
  }

  /** Open actions in the order they were recorded. */
  open(): Action[] {
    return (this.db.prepare(`SELECT * FROM actions WHERE state IN ('pending', 'waiting-rc', 'sent') ORDER BY seq`).all() as Row[]).map(
      toAction,
    );
  }

  /** Finished actions whose event is not published yet (outbox). */
  unpublished(): Action[] {
    return (this.db.prepare('SELECT * FROM actions WHERE published = 0 ORDER BY seq').all() as Row[]).map(toAction);
  }

  markPublished(id: string): void {
    this.db.prepare('UPDATE actions SET published = 1 WHERE id = ?').run(id);
  }

  /** When `account` last signed an action of `kind` (root posts and replies apart), other than `exclude`, for spacing. */
  lastSigned(account: string, kind: ActionKind, exclude: string, root?: boolean): number | null {
    const rows = this.db
      .prepare(
        `SELECT op, signed_at FROM actions WHERE account = ? AND kind = ? AND id != ? AND signed_at IS NOT NULL
         ORDER BY signed_at DESC LIMIT 50`,
      )
      .all(account, kind, exclude) as Array<{ op: string; signed_at: number }>;
    const match = rows.find((r) => root === undefined || ((JSON.parse(r.op) as Operation)[1].parent_author === '') === root);
    return match?.signed_at ?? null;
  }

  /** How many actions of `kind` `account` signed since `since` (other than `exclude`), and the earliest of those times. */
  signedSince(account: string, kind: ActionKind, exclude: string, since: number): { count: number; earliest: number | null } {
    return this.db
      .prepare(
        `SELECT COUNT(*) AS count, MIN(signed_at) AS earliest FROM actions
         WHERE account = ? AND kind = ? AND id != ? AND signed_at >= ?`,
      )
      .get(account, kind, exclude, since) as { count: number; earliest: number | null };
  }

  /** Store a newly signed transaction (before it is broadcast): state `sent`. */
  signed(id: string, trx: SignedTransaction, trxId: string, expiration: number, now: number): void {
    this.db
      .transaction(() => {
        this.db
          .prepare(
            `UPDATE actions SET state = 'sent', trx = ?, trx_id = ?, expiration = ?, signed = signed + 1, signed_at = ?,
               broadcast_at = NULL, reason = NULL, next_at = 0, updated_at = ? WHERE id = ?`,
          )
          .run(JSON.stringify(trx), trxId, expiration, now, now, id);
        this.db
          .prepare('INSERT INTO transactions (trx_id, action_id, trx, expiration, signed_at) VALUES (?, ?, ?, ?, ?)')
          .run(trxId, id, JSON.stringify(trx), expiration, now);
      })
      .immediate();
  }

  /** Update the working fields of an open action. */
  update(id: string, fields: Partial<Pick<Action, 'state' | 'broadcast_at' | 'reason' | 'next_at'>> & { trx?: null }, now: number): void {
    const sets = Object.keys(fields).map((k) => `${k} = @${k}`);
    this.db
      .prepare(
        `UPDATE actions SET ${[...sets, 'updated_at = @now'].join(', ')} WHERE id = @id AND state IN ('pending', 'waiting-rc', 'sent')`,
      )
      .run({ ...fields, id, now });
  }

  /** A final state; the event waits in the outbox (published = 0) until published. */
  finish(
    id: string,
    outcome:
      | { state: 'confirmed'; trx_id: string; block_num: number }
      | { state: 'failed'; reason: string; retryable: boolean }
      | { state: 'dry-run'; reason: string },
    now: number,
  ): boolean {
    const published = outcome.state === 'dry-run' ? 1 : 0;
    const info = this.db
      .prepare(
        `UPDATE actions SET state = @state, trx_id = COALESCE(@trx_id, trx_id), block_num = @block_num, reason = @reason,
           retryable = @retryable, published = @published, updated_at = @now
         WHERE id = @id AND state IN ('pending', 'waiting-rc', 'sent')`,
      )
      .run({
        id,
        now,
        published,
        state: outcome.state,
        trx_id: 'trx_id' in outcome ? outcome.trx_id : null,
        block_num: 'block_num' in outcome ? outcome.block_num : null,
        reason: 'reason' in outcome ? outcome.reason : null,
        retryable: 'retryable' in outcome ? (outcome.retryable ? 1 : 0) : null,
      });
    return info.changes === 1;
  }

  /** Counts by state (status, tests). */
  counts(): Partial<Record<ActionState, number>> {
    const rows = this.db.prepare('SELECT state, COUNT(*) AS n FROM actions GROUP BY state').all() as Array<{
      state: ActionState;
      n: number;
    }>;
    return Object.fromEntries(rows.map((r) => [r.state, r.n]));
  }

  /** Every action (tests, status). */
  all(): Action[] {
    return (this.db.prepare('SELECT * FROM actions ORDER BY seq').all() as Row[]).map(toAction);
  }
}

export { OPEN as OPEN_STATES };
