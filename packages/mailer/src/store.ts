import { createHash, randomUUID } from 'node:crypto';
import { closeSync, fsyncSync, openSync, statSync } from 'node:fs';
import { dirname } from 'node:path';

import { AppError, type EmailStatus, type ParsedEmailRequest } from '@steem-bot/config';
import { type Database, openDatabase, Outbox, OUTBOX_MIGRATION, type Statement } from '@steem-bot/store';

export interface MessageRow {
  seq: number;
  id: string;
  client: string;
  idem_key: string | null;
  body_hash: string;
  request: string;
  status: EmailStatus;
  send_at: number;
  next_attempt_at: number;
  attempts: number;
  lease_owner: string | null;
  lease_until: number | null;
  message_id: string;
  tid: string;
  last_error: string | null;
  created_at: number;
  finished_at: number | null;
}

export interface Message extends Omit<MessageRow, 'request'> {
  request: ParsedEmailRequest;
}

export interface AttemptRow {
  at: number;
  outcome: 'sent' | 'temporary' | 'permanent' | 'skipped' | 'check-failed';
  error: string | null;
  duration_ms: number;
}

export interface ClientRow {
  name: string;
  token_hash: string;
  secret: string;
  allowed_from: string | null;
  created_at: number;
  revoked_at: number | null;
}

const MIGRATIONS = [
  `CREATE TABLE clients (
     name TEXT PRIMARY KEY,
     token_hash TEXT NOT NULL,
     secret TEXT NOT NULL,
     allowed_from TEXT,
     created_at INTEGER NOT NULL,
     revoked_at INTEGER
   );
   CREATE TABLE messages (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     id TEXT NOT NULL UNIQUE,
     client TEXT NOT NULL,
     idem_key TEXT,
     body_hash TEXT NOT NULL,
     request TEXT NOT NULL,
     status TEXT NOT NULL,
     send_at INTEGER NOT NULL,
     next_attempt_at INTEGER NOT NULL,
     attempts INTEGER NOT NULL DEFAULT 0,
     lease_owner TEXT,
     lease_until INTEGER,
     message_id TEXT NOT NULL,
     tid TEXT NOT NULL,
     last_error TEXT,
     created_at INTEGER NOT NULL,
     finished_at INTEGER,
     UNIQUE (client, idem_key)
   );
   CREATE INDEX messages_due ON messages (status, next_attempt_at);
   CREATE INDEX messages_client ON messages (client, seq);
   CREATE TABLE attempts (
     message_seq INTEGER NOT NULL REFERENCES messages (seq) ON DELETE CASCADE,
     at INTEGER NOT NULL,
     outcome TEXT NOT NULL,
     error TEXT,
     duration_ms INTEGER NOT NULL
   );
   CREATE INDEX attempts_message ON attempts (message_seq);`,
  // The pending count per client (MAILER_MAX_PENDING) on every intake.
  `CREATE INDEX messages_client_status ON messages (client, status);`,
  // Idempotency keys outlive their messages (MAILER_KEY_KEEP_DAYS): a bot may replay an op long
  // after its email was sent and purged. status is the message's last status once it is purged.
  `CREATE TABLE idempotency_keys (
     client TEXT NOT NULL,
     key TEXT NOT NULL,
     body_hash TEXT NOT NULL,
     message_id TEXT NOT NULL,
     status TEXT,
     created_at INTEGER NOT NULL,
     PRIMARY KEY (client, key)
   ) WITHOUT ROWID;
   CREATE INDEX idempotency_keys_message ON idempotency_keys (message_id);
   CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
   INSERT INTO idempotency_keys (client, key, body_hash, message_id, created_at)
     SELECT client, idem_key, body_hash, id, created_at FROM messages WHERE idem_key IS NOT NULL;`,
  // email.* events written with the state change that causes them, then relayed to the streams.
  OUTBOX_MIGRATION,
];

interface KeyRow {
  body_hash: string;
  message_id: string;
  status: EmailStatus | null;
}

/** What an intake gets back: the message (undefined when a replayed key's message was purged). */
export interface Enqueued {
  id: string;
  status: EmailStatus;
  created: boolean;
  message: Message | undefined;
}

// Whether a message has a check_url (a slow check endpoint must not hold up plain messages).
const CHECKED = {
  true: "json_extract(request, '$.check_url') IS NOT NULL",
  false: "json_extract(request, '$.check_url') IS NULL",
} as const;

// The API's WAL may grow this far while no worker checkpoints it (64 MiB: tens of thousands of
// messages; a checkpoint of that size takes well under a second).
const WAL_LIMIT_BYTES = 64 * 1024 * 1024;
const JOURNAL_SIZE_LIMIT = 16 * 1024 * 1024;

/** fsync a directory, so that a file created in it survives a power loss. */
export function syncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** An event to write in the same transaction as a state change (see Outbox). */
export interface StoreEvent {
  name: string;
  payload: Record<string, unknown>;
  tid: string;
}

export const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/**
 * The mailer's SQLite file, shared by the API and the worker processes: every message, its
 * attempts, and the REST clients. Each method is one short transaction.
 */
export class MailStore {
  readonly db: Database;
  private readonly statements = new Map<string, Statement>();
  private readonly outboxes = new Map<string, Outbox>();

  private readonly walFile: string;
  private readonly walLimitBytes: number | undefined;
  private writes = 0;

  /**
   * `fsyncCommits` (the intake): every commit is fsynced (`synchronous = FULL`), so an
   * acknowledged message survives a power loss, not only a process crash; about 5 ms a commit on
   * an ordinary disk. Elsewhere (the worker) a commit lost to a power cut only repeats a send.
   * The directory entry of a new file is fsynced either way.
   *
   * `checkpoints: false` (the API) leaves WAL checkpoints, which write and fsync the database
   * file, to the worker (`checkpoint()`), so that they do not stall requests; but while the worker
   * is down the API checkpoints itself once the WAL passes `walLimitBytes`, so the WAL stays bounded.
   */
  constructor(file: string, options: { checkpoints?: boolean; walLimitBytes?: number; fsyncCommits?: boolean } = {}) {
    this.db = openDatabase(file, { migrations: MIGRATIONS });
    if (options.fsyncCommits) this.db.pragma('synchronous = FULL');
    // After a checkpoint, the next writer truncates the WAL back to this size.
    this.db.pragma(`journal_size_limit = ${JOURNAL_SIZE_LIMIT}`);
    this.walFile = `${file}-wal`;
    this.walLimitBytes = options.checkpoints === false ? (options.walLimitBytes ?? WAL_LIMIT_BYTES) : undefined;
    if (options.checkpoints === false) this.db.pragma('wal_autocheckpoint = 0');
    syncDirectory(dirname(file));
  }

  /** After a write of the API: checkpoint here if the WAL has grown past its limit (no worker checkpoints). */
  private afterWrite(): void {
    if (this.walLimitBytes === undefined || ++this.writes % 16 !== 0) return;
    const size = statSync(this.walFile, { throwIfNoEntry: false })?.size ?? 0;
    if (size > this.walLimitBytes) this.checkpoint();
  }

  /** The outbox of events published by `app` (`mailer`: queued/cancelled, `mailer-worker`: sent/failed/skipped). */
  outbox(app: 'mailer' | 'mailer-worker'): Outbox {
    let outbox = this.outboxes.get(app);
    if (!outbox) {
      outbox = new Outbox(this.db, app);
      this.outboxes.set(app, outbox);
    }
    return outbox;
  }

  /** A prepared statement, compiled once per store. */
  private sql(text: string): Statement {
    let statement = this.statements.get(text);
    if (!statement) {
      statement = this.db.prepare(text);
      this.statements.set(text, statement);
    }
    return statement;
  }

  /** Copy the WAL into the database file as far as readers allow (never blocks writers). */
  checkpoint(): void {
    this.db.pragma('wal_checkpoint(PASSIVE)');
  }

  /**
   * Store a message, or return the one stored earlier under the same (client, key) when the body
   * is the same; a different body under a used key is a conflict.
   */
  enqueue(input: {
    client: string;
    key: string | undefined;
    request: ParsedEmailRequest;
    tid: string;
    now: number;
    domain: string;
    /** Refuse (ERR_MAILER_TOO_MANY_PENDING) when the client already has this many messages not yet sent. */
    maxPending?: number;
  }): Enqueued {
    const body = JSON.stringify(input.request);
    const hash = sha256(body);
    const result = this.db
      .transaction((): Enqueued => {
        if (input.key !== undefined) {
          const known = this.sql('SELECT body_hash, message_id, status FROM idempotency_keys WHERE client = ? AND key = ?').get(
            input.client,
            input.key,
          ) as KeyRow | undefined;
          if (known) {
            if (known.body_hash !== hash) throw new AppError('ERR_MAILER_CONFLICT', 'this Idempotency-Key was used with another body');
            const message = this.get(known.message_id);
            return { id: known.message_id, status: message?.status ?? known.status ?? 'sent', created: false, message };
          }
        }
        if (input.maxPending !== undefined) {
          const pending = this.sql("SELECT COUNT(*) FROM messages WHERE client = ? AND status IN ('scheduled', 'sending', 'retrying')")
            .pluck()
            .get(input.client) as number;
          if (pending >= input.maxPending) {
            throw new AppError(
              'ERR_MAILER_TOO_MANY_PENDING',
              `${pending} messages of this client are not yet sent (at most ${input.maxPending}); retry once some are`,
            );
          }
        }
        const id = randomUUID();
        const sendAt = input.request.send_at ? Date.parse(input.request.send_at) : input.now;
        this.db
          .prepare(
            `INSERT INTO messages (id, client, idem_key, body_hash, request, status, send_at, next_attempt_at, message_id, tid, created_at)
             VALUES (?, ?, ?, ?, ?, 'scheduled', ?, ?, ?, ?, ?)`,
          )
          .run(id, input.client, input.key ?? null, hash, body, sendAt, sendAt, `<${id}@${input.domain}>`, input.tid, input.now);
        if (input.key !== undefined) {
          this.sql('INSERT INTO idempotency_keys (client, key, body_hash, message_id, created_at) VALUES (?, ?, ?, ?, ?)').run(
            input.client,
            input.key,
            hash,
            id,
            input.now,
          );
        }
        const payload = { id, client: input.client, send_at: new Date(sendAt).toISOString() };
        this.outbox('mailer').add('email.queued', payload, input.tid, input.now);
        const message = this.get(id) as Message;
        return { id, status: message.status, created: true, message };
      })
      .immediate();
    this.afterWrite();
    return result;
  }

  get(id: string, client?: string): Message | undefined {
    const row = this.sql('SELECT * FROM messages WHERE id = ?').get(id) as MessageRow | undefined;
    return row && (client === undefined || row.client === client) ? parse(row) : undefined;
  }

  attempts(seq: number): AttemptRow[] {
    return this.db
      .prepare('SELECT at, outcome, error, duration_ms FROM attempts WHERE message_seq = ? ORDER BY rowid')
      .all(seq) as AttemptRow[];
  }

  list(client: string, options: { status?: EmailStatus; limit: number; after?: number }): Message[] {
    const rows = this.db
      .prepare(`SELECT * FROM messages WHERE client = ? AND seq > ? ${options.status ? 'AND status = ?' : ''} ORDER BY seq LIMIT ?`)
      .all(...[client, options.after ?? 0, ...(options.status ? [options.status] : []), options.limit]) as MessageRow[];
    return rows.map(parse);
  }

  /** Cancel a message not yet being sent (ERR_MAILER_NOT_FOUND if this client has none with this id). */
  cancel(id: string, client: string, now: number): Message {
    return this.db
      .transaction(() => {
        const message = this.get(id, client);
        if (!message) throw new AppError('ERR_MAILER_NOT_FOUND', 'no such message');
        if (message.status !== 'scheduled' && message.status !== 'retrying') {
          throw new AppError('ERR_MAILER_CONFLICT', `message is ${message.status}; only scheduled or retrying messages can be cancelled`);
        }
        this.sql("UPDATE messages SET status = 'cancelled', finished_at = ? WHERE id = ?").run(now, id);
        this.outbox('mailer').add('email.cancelled', { id, client: message.client }, message.tid, now);
        return this.get(id) as Message;
      })
      .immediate();
  }

  /**
   * Claim up to `limit` due messages for `owner` until `now + leaseMs` (expired leases of other
   * workers included, never a message `owner` itself holds), of which at most `maxChecked` have a
   * check_url.
   */
  claimDue(owner: string, now: number, leaseMs: number, limit: number, maxChecked = limit, holding: readonly number[] = []): Message[] {
    const due = (checked: boolean): Statement =>
      this.sql(
        `SELECT seq FROM messages WHERE status IN ('scheduled', 'retrying') AND next_attempt_at <= ? AND ${CHECKED[checked ? 'true' : 'false']}
         UNION ALL SELECT seq FROM messages WHERE status = 'sending' AND lease_until <= ?
           AND seq NOT IN (SELECT value FROM json_each(?)) AND ${CHECKED[checked ? 'true' : 'false']}
         ORDER BY seq LIMIT ?`,
      );
    const held = JSON.stringify(holding);
    const dueSeqs = (): number[] => {
      const plain = due(false).pluck().all(now, now, held, limit) as number[];
      const checked = maxChecked > 0 ? (due(true).pluck().all(now, now, held, Math.min(limit, maxChecked)) as number[]) : [];
      return [...plain, ...checked].sort((a, b) => a - b).slice(0, limit);
    };
    // Look first without the write lock: most wake-ups find nothing due, and the API's writes
    // should not wait for them.
    if (dueSeqs().length === 0) return [];
    return this.db
      .transaction(() => {
        const rows = dueSeqs();
        const claim = this.sql("UPDATE messages SET status = 'sending', lease_owner = ?, lease_until = ? WHERE seq = ?");
        for (const seq of rows) claim.run(owner, now + leaseMs, seq);
        return rows.map((seq) => parse(this.sql('SELECT * FROM messages WHERE seq = ?').get(seq) as MessageRow));
      })
      .immediate();
  }

  /** Due time of the longest-waiting message that is due by `now` (a backlog sign), if any. */
  oldestDue(now: number): number | undefined {
    return (
      (this.sql("SELECT MIN(next_attempt_at) FROM messages WHERE status IN ('scheduled', 'retrying') AND next_attempt_at <= ?")
        .pluck()
        .get(now) as number | null) ?? undefined
    );
  }

  /**
   * When the next message falls due (or another worker's lease expires), or undefined if nothing
   * is pending; `withChecked: false` leaves out messages with a check_url.
   */
  nextDue(holding: readonly number[], withChecked = true): number | undefined {
    const only = withChecked ? '' : `AND ${CHECKED.false}`;
    const row = this.sql(
      `SELECT MIN(t) FROM (SELECT MIN(next_attempt_at) AS t FROM messages WHERE status IN ('scheduled', 'retrying') ${only}
       UNION ALL SELECT MIN(lease_until) FROM messages WHERE status = 'sending' AND seq NOT IN (SELECT value FROM json_each(?)) ${only})`,
    )
      .pluck()
      .get(JSON.stringify(holding)) as number | null;
    return row ?? undefined;
  }

  /** Record an attempt and the message's new state, if `owner` still holds its lease. */
  finish(
    seq: number,
    owner: string,
    outcome: AttemptRow['outcome'],
    update: { status: EmailStatus; error?: string; nextAttemptAt?: number; now: number; durationMs: number; countsAsAttempt: boolean },
    event?: StoreEvent,
  ): boolean {
    return this.db
      .transaction(() => {
        const done = update.status === 'sent' || update.status === 'dead' || update.status === 'skipped';
        const result = this.db
          .prepare(
            `UPDATE messages SET status = ?, attempts = attempts + ?, last_error = ?, next_attempt_at = COALESCE(?, next_attempt_at),
             lease_owner = NULL, lease_until = NULL, finished_at = ? WHERE seq = ? AND lease_owner = ? AND status = 'sending'`,
          )
          .run(
            update.status,
            update.countsAsAttempt ? 1 : 0,
            update.error ?? null,
            update.nextAttemptAt ?? null,
            done ? update.now : null,
            seq,
            owner,
          );
        if (result.changes === 0) return false;
        this.db
          .prepare('INSERT INTO attempts (message_seq, at, outcome, error, duration_ms) VALUES (?, ?, ?, ?, ?)')
          .run(seq, update.now, outcome, update.error ?? null, update.durationMs);
        if (event) this.outbox('mailer-worker').add(event.name, event.payload, event.tid, update.now);
        return true;
      })
      .immediate();
  }

  /** Extend the leases `owner` holds on `seqs` (its sends still in flight) to `until`. */
  renewLeases(owner: string, seqs: readonly number[], until: number): number {
    return this.sql(
      "UPDATE messages SET lease_until = ? WHERE lease_owner = ? AND status = 'sending' AND seq IN (SELECT value FROM json_each(?))",
    ).run(until, owner, JSON.stringify(seqs)).changes;
  }

  /** Give back the leases of `owner` (clean shutdown): its messages are due again at once. */
  release(owner: string): number {
    return this.db
      .prepare(
        "UPDATE messages SET status = CASE WHEN attempts > 0 THEN 'retrying' ELSE 'scheduled' END, lease_owner = NULL, lease_until = NULL WHERE lease_owner = ? AND status = 'sending'",
      )
      .run(owner).changes;
  }

  /** The recovery hook for a dead message: queue it again now, with a fresh attempt budget. */
  retry(id: string, now: number): boolean {
    return this.db
      .transaction(() => {
        const message = this.get(id);
        if (message?.status !== 'dead') return false;
        this.sql("UPDATE messages SET status = 'scheduled', attempts = 0, next_attempt_at = ?, finished_at = NULL WHERE id = ?").run(
          now,
          id,
        );
        // Queued again, with the state change (outbox): the worker wakes at once, subscribers see it.
        this.outbox('mailer').add('email.queued', { id, client: message.client, send_at: new Date(now).toISOString() }, message.tid, now);
        return true;
      })
      .immediate();
  }

  /**
   * Delete finished messages older than `keepMs` (pending ones are never purged), and idempotency
   * keys older than `keyKeepMs` whose message is gone. A purged message's key remembers its status.
   */
  purge(now: number, keepMs: number, keyKeepMs = keepMs): { messages: number; keys: number } {
    return this.db
      .transaction(() => {
        const old = "SELECT id, status FROM messages WHERE status IN ('sent', 'dead', 'skipped', 'cancelled') AND finished_at < ?";
        this.db
          .prepare(`UPDATE idempotency_keys SET status = m.status FROM (${old}) AS m WHERE idempotency_keys.message_id = m.id`)
          .run(now - keepMs);
        const messages = this.db
          .prepare("DELETE FROM messages WHERE status IN ('sent', 'dead', 'skipped', 'cancelled') AND finished_at < ?")
          .run(now - keepMs).changes;
        const keys = this.db
          .prepare(
            'DELETE FROM idempotency_keys WHERE created_at < ? AND NOT EXISTS (SELECT 1 FROM messages WHERE messages.id = idempotency_keys.message_id)',
          )
          .run(now - Math.max(keepMs, keyKeepMs)).changes;
        return { messages, keys };
      })
      .immediate();
  }

  counts(): Record<string, number> {
    const rows = this.sql('SELECT status, COUNT(*) AS n FROM messages GROUP BY status').all() as Array<{
      status: string;
      n: number;
    }>;
    return Object.fromEntries(rows.map((r) => [r.status, r.n]));
  }

  // Clients ----------------------------------------------------------------------------------

  /**
   * A name is never given out twice: messages and idempotency keys are keyed by it, so a new
   * holder of a revoked client's name would see (and dedupe against) the old client's messages.
   */
  addClient(row: Omit<ClientRow, 'revoked_at'>): void {
    const existing = this.client(row.name);
    if (existing) {
      throw new AppError(
        'ERR_MAILER_CONFLICT',
        existing.revoked_at === null
          ? `client ${row.name} exists`
          : `client ${row.name} was revoked; a revoked name is never reused (its messages stay its own): choose another name`,
      );
    }
    this.db
      .prepare('INSERT INTO clients (name, token_hash, secret, allowed_from, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, NULL)')
      .run(row.name, row.token_hash, row.secret, row.allowed_from, row.created_at);
  }

  client(name: string): ClientRow | undefined {
    return this.sql('SELECT * FROM clients WHERE name = ?').get(name) as ClientRow | undefined;
  }

  clients(): ClientRow[] {
    return this.sql('SELECT * FROM clients ORDER BY name').all() as ClientRow[];
  }

  revokeClient(name: string, now: number): boolean {
    return this.sql('UPDATE clients SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL').run(now, name).changes === 1;
  }

  close(): void {
    this.db.close();
  }
}

function parse(row: MessageRow): Message {
  return { ...row, request: JSON.parse(row.request) as ParsedEmailRequest };
}
