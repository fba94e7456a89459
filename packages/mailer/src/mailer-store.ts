import type { EmailStatus, ParsedEmailRequest } from '@steem-bot/config';
import type { OutboxEvent, OutboxTarget } from '@steem-bot/store';

import type { AttemptRow, ClientRow, Enqueued, MailStore, Message, StoreEvent } from './store';

/** The apps whose email.* events go through the store's outbox. */
export type MailerApp = 'mailer' | 'mailer-worker';

export interface EnqueueInput {
  client: string;
  key: string | undefined;
  request: ParsedEmailRequest;
  tid: string;
  now: number;
  domain: string;
  /** Refuse (ERR_MAILER_TOO_MANY_PENDING) when the client already has this many messages not yet sent. */
  maxPending?: number;
}

export interface FinishUpdate {
  status: EmailStatus;
  error?: string;
  nextAttemptAt?: number;
  now: number;
  durationMs: number;
  countsAsAttempt: boolean;
}

/**
 * The mailer's store, as the API, the worker and the CLI use it: every message, its attempts, the
 * idempotency keys, the REST clients, and the outbox of email.* events. Each method is one short
 * transaction. Two implementations: SQLite (`SqliteMailerStore`, one file under DATA_DIR shared by
 * the processes of one machine) and PostgreSQL (`PostgresMailerStore`, workers on several
 * machines). `test/store.conformance.test.ts` holds both to this one contract.
 */
export interface MailerStore {
  /**
   * Store a message, or return the one stored earlier under the same (client, key) when the body
   * is the same; a different body under a used key is ERR_MAILER_CONFLICT. Writes email.queued
   * (outbox of `mailer`) in the same transaction.
   */
  enqueue(input: EnqueueInput): Promise<Enqueued>;
  get(id: string, client?: string): Promise<Message | undefined>;
  attempts(seq: number): Promise<AttemptRow[]>;
  list(client: string, options: { status?: EmailStatus; limit: number; after?: number }): Promise<Message[]>;
  /** Cancel a scheduled or retrying message (writes email.cancelled). */
  cancel(id: string, client: string, now: number): Promise<Message>;
  /**
   * Claim up to `limit` due messages for `owner` until `now + leaseMs` (expired leases of other
   * leases included, its own too, but never one of `holding`: the sends this worker has in flight),
   * of which at most `maxChecked` have a check_url. Two workers never get the same message.
   */
  claimDue(
    owner: string,
    now: number,
    leaseMs: number,
    limit: number,
    maxChecked?: number,
    holding?: readonly number[],
  ): Promise<Message[]>;
  /** Due time of the longest-waiting message due by `now`, if any. */
  oldestDue(now: number): Promise<number | undefined>;
  /** When the next message falls due (or a lease not in `holding` expires); `withChecked: false` leaves out check_url ones. */
  nextDue(holding: readonly number[], withChecked?: boolean): Promise<number | undefined>;
  /** Record an attempt and the new state (and its event, outbox of `mailer-worker`), if `owner` still holds the lease. */
  finish(seq: number, owner: string, outcome: AttemptRow['outcome'], update: FinishUpdate, event?: StoreEvent): Promise<boolean>;
  /**
   * Extend the leases `owner` holds on `seqs` (its sends in flight) to `until`. A lease it holds
   * with no send behind it (a claim whose answer was lost) is not renewed: it expires.
   */
  renewLeases(owner: string, seqs: readonly number[], until: number): Promise<number>;
  /** Give back the leases of `owner` (clean shutdown). */
  release(owner: string): Promise<number>;
  /** Queue a dead message again now, with a fresh attempt budget. */
  retry(id: string, now: number): Promise<boolean>;
  /** Delete finished messages older than `keepMs` and keys older than `keyKeepMs` whose message is gone. */
  purge(now: number, keepMs: number, keyKeepMs?: number): Promise<{ messages: number; keys: number }>;
  counts(): Promise<Record<string, number>>;
  /** A name is never given out twice (ERR_MAILER_CONFLICT). */
  addClient(row: Omit<ClientRow, 'revoked_at'>): Promise<void>;
  client(name: string): Promise<ClientRow | undefined>;
  clients(): Promise<ClientRow[]>;
  revokeClient(name: string, now: number): Promise<boolean>;
  /** Events of `app` written but not yet relayed. */
  pendingEvents(app: MailerApp): Promise<OutboxEvent[]>;
  /** Relay the events of `app` waiting in the outbox to its stream, in order, each once. */
  relay(app: MailerApp, target: OutboxTarget): Promise<void>;
  /**
   * Call `onChange` when a message is enqueued by any process (PostgreSQL: NOTIFY; SQLite: nothing,
   * the bus's email.queued wakes the worker). Returns the stop function.
   */
  watch(onChange: () => void): Promise<() => Promise<void>>;
  /** Housekeeping between claims (SQLite: a passive WAL checkpoint). */
  checkpoint(): Promise<void>;
  close(): Promise<void>;
}

/** The embedded store: the SQLite `MailStore` (synchronous, one file) behind the async contract. */
export class SqliteMailerStore implements MailerStore {
  constructor(readonly core: MailStore) {}

  enqueue(input: EnqueueInput): Promise<Enqueued> {
    return run(() => this.core.enqueue(input));
  }
  get(id: string, client?: string): Promise<Message | undefined> {
    return run(() => this.core.get(id, client));
  }
  attempts(seq: number): Promise<AttemptRow[]> {
    return run(() => this.core.attempts(seq));
  }
  list(client: string, options: { status?: EmailStatus; limit: number; after?: number }): Promise<Message[]> {
    return run(() => this.core.list(client, options));
  }
  cancel(id: string, client: string, now: number): Promise<Message> {
    return run(() => this.core.cancel(id, client, now));
  }
  claimDue(
    owner: string,
    now: number,
    leaseMs: number,
    limit: number,
    maxChecked = limit,
    holding: readonly number[] = [],
  ): Promise<Message[]> {
    return run(() => this.core.claimDue(owner, now, leaseMs, limit, maxChecked, holding));
  }
  oldestDue(now: number): Promise<number | undefined> {
    return run(() => this.core.oldestDue(now));
  }
  nextDue(holding: readonly number[], withChecked = true): Promise<number | undefined> {
    return run(() => this.core.nextDue(holding, withChecked));
  }
  finish(seq: number, owner: string, outcome: AttemptRow['outcome'], update: FinishUpdate, event?: StoreEvent): Promise<boolean> {
    return run(() => this.core.finish(seq, owner, outcome, update, event));
  }
  renewLeases(owner: string, seqs: readonly number[], until: number): Promise<number> {
    return run(() => this.core.renewLeases(owner, seqs, until));
  }
  release(owner: string): Promise<number> {
    return run(() => this.core.release(owner));
  }
  retry(id: string, now: number): Promise<boolean> {
    return run(() => this.core.retry(id, now));
  }
  purge(now: number, keepMs: number, keyKeepMs = keepMs): Promise<{ messages: number; keys: number }> {
    return run(() => this.core.purge(now, keepMs, keyKeepMs));
  }
  counts(): Promise<Record<string, number>> {
    return run(() => this.core.counts());
  }
  addClient(row: Omit<ClientRow, 'revoked_at'>): Promise<void> {
    return run(() => this.core.addClient(row));
  }
  client(name: string): Promise<ClientRow | undefined> {
    return run(() => this.core.client(name));
  }
  clients(): Promise<ClientRow[]> {
    return run(() => this.core.clients());
  }
  revokeClient(name: string, now: number): Promise<boolean> {
    return run(() => this.core.revokeClient(name, now));
  }
  pendingEvents(app: MailerApp): Promise<OutboxEvent[]> {
    return run(() => this.core.outbox(app).pending());
  }
  relay(app: MailerApp, target: OutboxTarget): Promise<void> {
    return this.core.outbox(app).relay(target);
  }
  watch(): Promise<() => Promise<void>> {
    return Promise.resolve(() => Promise.resolve());
  }
  checkpoint(): Promise<void> {
    return run(() => this.core.checkpoint());
  }
  close(): Promise<void> {
    return run(() => this.core.close());
  }
}

/** A synchronous call as a promise: a throw becomes a rejection, as on PostgreSQL. */
function run<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (err) {
    return Promise.reject(err as Error);
  }
}
