import { createHash } from 'node:crypto';

import { type ActionState, AppError } from '@steem-bot/config';

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
  /** Transactions signed for this action so far (in all, across retries). */
  signed: number;
  /** `signed` when the operator last retried it: the signing budget counts from there. */
  signs_base: number;
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

/** What `record` needs. */
export interface ActionInput {
  key: string;
  kind: ActionKind;
  account: string;
  role: KeyRole;
  op: Operation;
  tid: string;
}

/** A final state; its event waits in the outbox until published. */
export type Outcome =
  | { state: 'confirmed'; trx_id: string; block_num: number }
  | { state: 'failed'; reason: string; retryable: boolean }
  | { state: 'dry-run'; reason: string };

/** The working fields of an open action that the engine changes. */
export type ActionUpdate = Partial<Pick<Action, 'state' | 'broadcast_at' | 'reason' | 'next_at'>> & { trx?: null };

/** A transaction signed for an action (any of them seen in a block confirms it). */
export interface SignedRecord {
  trx_id: string;
  action_id: string;
  trx: string;
  expiration: number;
  signed_at: number;
}

/**
 * The signer's record: actions by idempotency key, and every transaction signed for them. Two
 * implementations: SQLite (one file under DATA_DIR) and PostgreSQL (STORE=postgres, for a standby
 * signer on another machine); `test/store.conformance.test.ts` holds both to this contract.
 * A finished action's event is written with its final state, in the same statement (outbox:
 * `published` false until the engine has published it).
 */
export interface SignerStore {
  /**
   * Record an action under its idempotency key before anything else happens to it. The same key
   * with the same op returns the recorded action; with another op, ERR_SIGNER_CONFLICT.
   */
  record(input: ActionInput, now: number): Promise<Action>;
  byKey(key: string): Promise<Action | undefined>;
  byId(id: string): Promise<Action | undefined>;
  /** The action one of whose transactions has this id, if it is still open. */
  openByTrxId(trxId: string): Promise<Action | undefined>;
  /** Open actions in the order they were recorded. */
  open(): Promise<Action[]>;
  /** Confirmed or failed actions whose event is not published yet (outbox), in order. */
  unpublished(): Promise<Action[]>;
  markPublished(id: string): Promise<void>;
  /** When `account` last signed an action of `kind` (root posts and replies apart), other than `exclude`, for spacing. */
  lastSigned(account: string, kind: ActionKind, exclude: string, root?: boolean): Promise<number | null>;
  /** How many actions of `kind` `account` signed since `since` (other than `exclude`), and the earliest of those times. */
  signedSince(account: string, kind: ActionKind, exclude: string, since: number): Promise<{ count: number; earliest: number | null }>;
  /**
   * Store a newly signed transaction (before it is broadcast): state `sent`. Only an open action
   * with no transaction in flight takes one: false (nothing stored) otherwise.
   */
  signed(id: string, trx: SignedTransaction, trxId: string, expiration: number, now: number): Promise<boolean>;
  /** Update the working fields of an open action (a finished one is left as it is). */
  update(id: string, fields: ActionUpdate, now: number): Promise<void>;
  /** A final state for an open action; false if it was no longer open. */
  finish(id: string, outcome: Outcome, now: number): Promise<boolean>;
  /**
   * The operator's Retry: a failed, retryable action back to `pending` with a fresh signing
   * budget (no transaction in flight: the next one is signed anew). ERR_SIGNER_NOT_FOUND for an
   * unknown id, ERR_SIGNER_NOT_RETRYABLE for an action that is not failed or not retryable.
   */
  retry(id: string, reason: string, now: number): Promise<Action>;
  /** The transactions signed for an action, oldest first. */
  transactions(actionId: string): Promise<SignedRecord[]>;
  /** Counts by state (status, tests). */
  counts(): Promise<Partial<Record<ActionState, number>>>;
  /** Every action (tests, status). */
  all(): Promise<Action[]>;
  close(): Promise<void>;
}

export const OPEN_STATES: readonly ActionState[] = ['pending', 'waiting-rc', 'sent'];
/** `state IN (...)` of the open states, for both SQL dialects. */
export const OPEN_SQL = `(${OPEN_STATES.map((s) => `'${s}'`).join(', ')})`;

/** A stored row: JSON as text, flags as 0/1 (SQLite) or booleans (PostgreSQL). */
export interface ActionRow extends Omit<Action, 'op' | 'trx' | 'retryable' | 'published'> {
  op: string;
  trx: string | null;
  op_hash: string;
  retryable: number | boolean | null;
  published: number | boolean;
}

export function toAction(row: ActionRow): Action {
  const { op_hash: _hash, ...rest } = row;
  return {
    ...rest,
    op: JSON.parse(row.op) as Operation,
    trx: row.trx === null ? null : (JSON.parse(row.trx) as SignedTransaction),
    retryable: row.retryable === null ? null : Boolean(row.retryable),
    published: Boolean(row.published),
  };
}

/** The op as stored, and the hash that tells a reused key from a repeated task. */
export function opText(op: Operation): { op: string; hash: string } {
  const text = JSON.stringify(op);
  return { op: text, hash: createHash('sha256').update(text).digest('hex') };
}

/** The recorded action of `key`, or ERR_SIGNER_CONFLICT if it records another op. */
export function sameAction(existing: ActionRow, key: string, hash: string): Action {
  if (existing.op_hash !== hash) throw new AppError('ERR_SIGNER_CONFLICT', `idempotency key "${key}" was used for another action`);
  return toAction(existing);
}

/** The columns an outcome sets. */
export function outcomeFields(outcome: Outcome): {
  state: ActionState;
  trx_id: string | null;
  block_num: number | null;
  reason: string | null;
  retryable: boolean | null;
  published: boolean;
} {
  return {
    state: outcome.state,
    trx_id: 'trx_id' in outcome ? outcome.trx_id : null,
    block_num: 'block_num' in outcome ? outcome.block_num : null,
    reason: 'reason' in outcome ? outcome.reason : null,
    retryable: 'retryable' in outcome ? outcome.retryable : null,
    // A dry run publishes nothing.
    published: outcome.state === 'dry-run',
  };
}

/** Whether `row` may be retried; the error that says why not. */
export function checkRetry(row: ActionRow | undefined, id: string): void {
  if (!row) throw new AppError('ERR_SIGNER_NOT_FOUND', `no action has the id "${id}"`);
  if (row.state !== 'failed')
    throw new AppError('ERR_SIGNER_NOT_RETRYABLE', `action ${id} is ${row.state}, not failed: only a failed action is retried`, {
      data: { action_id: id, state: row.state },
    });
  if (!row.retryable)
    throw new AppError(
      'ERR_SIGNER_NOT_RETRYABLE',
      `action ${id} failed for good (${row.reason ?? 'no reason'}): signing it again would fail again`,
      {
        data: { action_id: id, state: row.state },
      },
    );
}

/** The most recent signing time among `rows` (newest first) of a root post or a reply, or of any. */
export function lastOf(rows: Array<{ op: string; signed_at: number }>, root: boolean | undefined): number | null {
  const match = rows.find((r) => root === undefined || ((JSON.parse(r.op) as Operation)[1].parent_author === '') === root);
  return match?.signed_at ?? null;
}
