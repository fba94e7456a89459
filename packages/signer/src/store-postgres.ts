import { randomUUID } from 'node:crypto';

import type { ActionState } from '@steem-bot/config';
import { type PoolClient, Postgres } from '@steem-bot/store';

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
  `CREATE TABLE signer_actions (
     seq BIGSERIAL PRIMARY KEY,
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
     expiration BIGINT,
     signed INTEGER NOT NULL DEFAULT 0,
     signs_base INTEGER NOT NULL DEFAULT 0,
     signed_at BIGINT,
     broadcast_at BIGINT,
     block_num BIGINT,
     reason TEXT,
     retryable BOOLEAN,
     next_at BIGINT NOT NULL DEFAULT 0,
     published BOOLEAN NOT NULL DEFAULT TRUE,
     tid TEXT NOT NULL,
     created_at BIGINT NOT NULL,
     updated_at BIGINT NOT NULL
   );
   CREATE INDEX signer_actions_open ON signer_actions (state, account, seq);
   CREATE INDEX signer_actions_signed ON signer_actions (account, kind, signed_at);
   -- Every transaction ever signed for an action: any of them seen in a block confirms it.
   CREATE TABLE signer_transactions (
     trx_id TEXT PRIMARY KEY,
     action_id TEXT NOT NULL REFERENCES signer_actions (id),
     trx TEXT NOT NULL,
     expiration BIGINT NOT NULL,
     signed_at BIGINT NOT NULL,
     seq BIGSERIAL
   );
   CREATE INDEX signer_transactions_action ON signer_transactions (action_id)`,
];

/** Columns of `signer_actions`, in the order `migrate-store` copies them. */
export const ACTION_COLUMNS = [
  'seq',
  'id',
  'key',
  'kind',
  'account',
  'role',
  'op',
  'op_hash',
  'state',
  'trx',
  'trx_id',
  'expiration',
  'signed',
  'signs_base',
  'signed_at',
  'broadcast_at',
  'block_num',
  'reason',
  'retryable',
  'next_at',
  'published',
  'tid',
  'created_at',
  'updated_at',
] as const;

/**
 * The distributed store (STORE=postgres): one active signer at a time (a session advisory lock,
 * see main.ts), a standby on another machine takes over from the same record.
 */
export class PostgresSignerStore implements SignerStore {
  private constructor(readonly db: Postgres) {}

  static async open(options: { url: string; schema: string }): Promise<PostgresSignerStore> {
    return new PostgresSignerStore(await Postgres.open({ ...options, name: 'signer', migrations: MIGRATIONS, poolSize: 4 }));
  }

  close(): Promise<void> {
    return this.db.close();
  }

  async record(input: ActionInput, now: number): Promise<Action> {
    const { op, hash } = opText(input.op);
    // Two intakes of one key at once: the unique key makes one INSERT win; the other reads its row.
    const [inserted] = await this.db.query<ActionRow>(
      `INSERT INTO signer_actions (id, key, kind, account, role, op, op_hash, state, tid, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $9, $9)
       ON CONFLICT (key) DO NOTHING RETURNING *`,
      [randomUUID(), input.key, input.kind, input.account, input.role, op, hash, input.tid, now],
    );
    if (inserted) return toAction(inserted);
    const [existing] = await this.db.query<ActionRow>('SELECT * FROM signer_actions WHERE key = $1', [input.key]);
    if (!existing) throw new Error(`action ${input.key} neither inserted nor found`);
    return sameAction(existing, input.key, hash);
  }

  byKey(key: string): Promise<Action | undefined> {
    return this.one('SELECT * FROM signer_actions WHERE key = $1', [key]);
  }

  byId(id: string): Promise<Action | undefined> {
    return this.one('SELECT * FROM signer_actions WHERE id = $1', [id]);
  }

  openByTrxId(trxId: string): Promise<Action | undefined> {
    return this.one(
      `SELECT a.* FROM signer_transactions t JOIN signer_actions a ON a.id = t.action_id WHERE t.trx_id = $1 AND a.state IN ${OPEN_SQL}`,
      [trxId],
    );
  }

  open(): Promise<Action[]> {
    return this.many(`SELECT * FROM signer_actions WHERE state IN ${OPEN_SQL} ORDER BY seq`);
  }

  unpublished(): Promise<Action[]> {
    return this.many(`SELECT * FROM signer_actions WHERE NOT published AND state IN ('confirmed', 'failed') ORDER BY seq`);
  }

  async markPublished(id: string): Promise<void> {
    await this.db.query('UPDATE signer_actions SET published = TRUE WHERE id = $1', [id]);
  }

  async lastSigned(account: string, kind: ActionKind, exclude: string, root?: boolean): Promise<number | null> {
    const rows = await this.db.query<{ op: string; signed_at: number }>(
      `SELECT op, signed_at FROM signer_actions WHERE account = $1 AND kind = $2 AND id <> $3 AND signed_at IS NOT NULL
       ORDER BY signed_at DESC LIMIT 50`,
      [account, kind, exclude],
    );
    return lastOf(rows, root);
  }

  async signedSince(
    account: string,
    kind: ActionKind,
    exclude: string,
    since: number,
  ): Promise<{ count: number; earliest: number | null }> {
    const [row] = await this.db.query<{ count: number; earliest: number | null }>(
      `SELECT COUNT(*) AS count, MIN(signed_at) AS earliest FROM signer_actions
       WHERE account = $1 AND kind = $2 AND id <> $3 AND signed_at >= $4`,
      [account, kind, exclude, since],
    );
    return row ?? { count: 0, earliest: null };
  }

  signed(id: string, trx: SignedTransaction, trxId: string, expiration: number, now: number): Promise<boolean> {
    const text = JSON.stringify(trx);
    return this.db.transaction(async (c) => {
      const { rowCount } = await c.query(
        `UPDATE signer_actions SET state = 'sent', trx = $1, trx_id = $2, expiration = $3, signed = signed + 1, signed_at = $4,
           broadcast_at = NULL, reason = NULL, next_at = 0, updated_at = $4
         WHERE id = $5 AND trx IS NULL AND state IN ${OPEN_SQL}`,
        [text, trxId, expiration, now, id],
      );
      if (rowCount !== 1) return false;
      await c.query('INSERT INTO signer_transactions (trx_id, action_id, trx, expiration, signed_at) VALUES ($1, $2, $3, $4, $5)', [
        trxId,
        id,
        text,
        expiration,
        now,
      ]);
      return true;
    });
  }

  async update(id: string, fields: ActionUpdate, now: number): Promise<void> {
    const entries = Object.entries(fields);
    const sets = entries.map(([k], i) => `${k} = $${i + 3}`);
    await this.db.query(`UPDATE signer_actions SET ${[...sets, 'updated_at = $2'].join(', ')} WHERE id = $1 AND state IN ${OPEN_SQL}`, [
      id,
      now,
      ...entries.map(([, v]) => v),
    ]);
  }

  async finish(id: string, outcome: Outcome, now: number): Promise<boolean> {
    const f = outcomeFields(outcome);
    const rows = await this.db.query(
      `UPDATE signer_actions SET state = $2, trx_id = COALESCE($3, trx_id), block_num = $4, reason = $5, retryable = $6,
         published = $7, updated_at = $8
       WHERE id = $1 AND state IN ${OPEN_SQL} RETURNING 1`,
      [id, f.state, f.trx_id, f.block_num, f.reason, f.retryable, f.published, now],
    );
    return rows.length === 1;
  }

  retry(id: string, reason: string, now: number): Promise<Action> {
    return this.db.transaction(async (c) => {
      const { rows } = await c.query<ActionRow>('SELECT * FROM signer_actions WHERE id = $1 FOR UPDATE', [id]);
      checkRetry(rows[0], id);
      const { rows: updated } = await c.query<ActionRow>(
        `UPDATE signer_actions SET state = 'pending', trx = NULL, signs_base = signed, reason = $2, retryable = NULL, block_num = NULL,
           published = TRUE, next_at = 0, updated_at = $3 WHERE id = $1 RETURNING *`,
        [id, reason, now],
      );
      return toAction(updated[0] as ActionRow);
    });
  }

  transactions(actionId: string): Promise<SignedRecord[]> {
    return this.db.query<SignedRecord & { seq?: number }>(
      'SELECT trx_id, action_id, trx, expiration, signed_at FROM signer_transactions WHERE action_id = $1 ORDER BY signed_at, seq',
      [actionId],
    );
  }

  async counts(): Promise<Partial<Record<ActionState, number>>> {
    const rows = await this.db.query<{ state: ActionState; n: number }>('SELECT state, COUNT(*) AS n FROM signer_actions GROUP BY state');
    return Object.fromEntries(rows.map((r) => [r.state, r.n]));
  }

  all(): Promise<Action[]> {
    return this.many('SELECT * FROM signer_actions ORDER BY seq');
  }

  /** Run `fn` in one transaction (`migrate-store`). */
  withTransaction<T>(fn: (client: PoolClient) => Promise<T>): Promise<T> {
    return this.db.transaction(fn);
  }

  private async one(sql: string, values: unknown[]): Promise<Action | undefined> {
    const [row] = await this.db.query<ActionRow>(sql, values);
    return row && toAction(row);
  }

  private async many(sql: string): Promise<Action[]> {
    return (await this.db.query<ActionRow>(sql)).map(toAction);
  }
}
