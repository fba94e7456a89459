import { createHash, randomUUID } from 'node:crypto';

import { AppError, type EmailStatus, type Logger } from '@steem-bot/config';
import {
  type OutboxEvent,
  type OutboxTarget,
  type PoolClient,
  Postgres,
  POSTGRES_OUTBOX_MIGRATION,
  PostgresOutbox,
} from '@steem-bot/store';

import type { EnqueueInput, FinishUpdate, MailerApp, MailerStore } from './mailer-store';
import { type AttemptRow, type ClientRow, type Enqueued, type Message, type MessageRow, sha256, type StoreEvent } from './store';

const MIGRATIONS = [
  `CREATE TABLE clients (
     name TEXT PRIMARY KEY,
     token_hash TEXT NOT NULL,
     secret TEXT NOT NULL,
     allowed_from TEXT,
     created_at BIGINT NOT NULL,
     revoked_at BIGINT
   );
   CREATE TABLE messages (
     seq BIGSERIAL PRIMARY KEY,
     id TEXT NOT NULL UNIQUE,
     client TEXT NOT NULL,
     idem_key TEXT,
     body_hash TEXT NOT NULL,
     request TEXT NOT NULL,
     checked BOOLEAN NOT NULL,
     status TEXT NOT NULL,
     send_at BIGINT NOT NULL,
     next_attempt_at BIGINT NOT NULL,
     attempts INTEGER NOT NULL DEFAULT 0,
     lease_owner TEXT,
     lease_until BIGINT,
     message_id TEXT NOT NULL,
     tid TEXT NOT NULL,
     last_error TEXT,
     created_at BIGINT NOT NULL,
     finished_at BIGINT,
     UNIQUE (client, idem_key)
   );
   CREATE INDEX messages_due ON messages (status, next_attempt_at);
   CREATE INDEX messages_client ON messages (client, seq);
   CREATE INDEX messages_client_status ON messages (client, status);
   CREATE INDEX messages_lease ON messages (lease_owner) WHERE lease_owner IS NOT NULL;
   CREATE TABLE attempts (
     id BIGSERIAL PRIMARY KEY,
     message_seq BIGINT NOT NULL REFERENCES messages (seq) ON DELETE CASCADE,
     at BIGINT NOT NULL,
     outcome TEXT NOT NULL,
     error TEXT,
     duration_ms BIGINT NOT NULL
   );
   CREATE INDEX attempts_message ON attempts (message_seq);
   CREATE TABLE idempotency_keys (
     client TEXT NOT NULL,
     key TEXT NOT NULL,
     body_hash TEXT NOT NULL,
     message_id TEXT NOT NULL,
     status TEXT,
     created_at BIGINT NOT NULL,
     PRIMARY KEY (client, key)
   );
   CREATE INDEX idempotency_keys_message ON idempotency_keys (message_id);
   CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);`,
  POSTGRES_OUTBOX_MIGRATION,
];

// The pending cap (MAILER_MAX_PENDING) counts what is not yet sent, as on SQLite.
const PENDING = "('scheduled', 'sending', 'retrying')";
const FINISHED = "('sent', 'dead', 'skipped', 'cancelled')";
const COLUMNS =
  'seq, id, client, idem_key, body_hash, request, status, send_at, next_attempt_at, attempts, lease_owner, lease_until, message_id, tid, last_error, created_at, finished_at';

/** The NOTIFY channel of a schema's mailer (channels are database-wide; schemas are not). */
export const wakeChannel = (schema: string): string => `mailer_${createHash('sha256').update(schema).digest('hex').slice(0, 16)}`;

/**
 * The distributed store: API and worker processes on several machines share one PostgreSQL
 * schema. Claims take rows with `FOR UPDATE SKIP LOCKED`, so concurrent workers never claim the
 * same message and never wait on each other; enqueues NOTIFY the workers inside their
 * transaction (delivered at commit), the workers' timer poll stays the safety net.
 */
export class PostgresMailerStore implements MailerStore {
  private readonly outboxes = new Map<MailerApp, PostgresOutbox>();
  private readonly channel: string;

  private constructor(
    readonly db: Postgres,
    private readonly logger: Logger | undefined,
  ) {
    this.channel = wakeChannel(db.options.schema);
  }

  static async open(options: {
    url: string;
    schema: string;
    logger?: Logger;
    poolSize?: number;
    applicationName?: string;
  }): Promise<PostgresMailerStore> {
    const db = await Postgres.open({
      url: options.url,
      schema: options.schema,
      name: 'mailer',
      migrations: MIGRATIONS,
      poolSize: options.poolSize ?? 4,
      ...(options.applicationName ? { applicationName: options.applicationName } : {}),
      ...(options.logger ? { logger: options.logger } : {}),
    });
    return new PostgresMailerStore(db, options.logger);
  }

  private outbox(app: MailerApp): PostgresOutbox {
    let outbox = this.outboxes.get(app);
    if (!outbox) {
      outbox = new PostgresOutbox(this.db, app);
      this.outboxes.set(app, outbox);
    }
    return outbox;
  }

  async enqueue(input: EnqueueInput): Promise<Enqueued> {
    const body = JSON.stringify(input.request);
    const hash = sha256(body);
    return this.db.transaction(async (c) => {
      // One intake per client at a time, whichever host: the key check and the pending count
      // below then see every earlier enqueue of this client.
      await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`${this.db.options.schema}:mailer-client:${input.client}`]);
      if (input.key !== undefined) {
        const { rows } = await c.query<{ body_hash: string; message_id: string; status: EmailStatus | null }>(
          'SELECT body_hash, message_id, status FROM idempotency_keys WHERE client = $1 AND key = $2',
          [input.client, input.key],
        );
        const known = rows[0];
        if (known) {
          if (known.body_hash !== hash) throw new AppError('ERR_MAILER_CONFLICT', 'this Idempotency-Key was used with another body');
          const message = await getOn(c, known.message_id);
          return { id: known.message_id, status: message?.status ?? known.status ?? 'sent', created: false, message };
        }
      }
      if (input.maxPending !== undefined) {
        const { rows } = await c.query<{ n: number }>(
          `SELECT COUNT(*)::int AS n FROM messages WHERE client = $1 AND status IN ${PENDING}`,
          [input.client],
        );
        const pending = rows[0]?.n ?? 0;
        if (pending >= input.maxPending) {
          throw new AppError(
            'ERR_MAILER_TOO_MANY_PENDING',
            `${pending} messages of this client are not yet sent (at most ${input.maxPending}); retry once some are`,
          );
        }
      }
      const id = randomUUID();
      const sendAt = input.request.send_at ? Date.parse(input.request.send_at) : input.now;
      const { rows } = await c.query<MessageRow>(
        `INSERT INTO messages (id, client, idem_key, body_hash, request, checked, status, send_at, next_attempt_at, message_id, tid, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, 'scheduled', $7, $7, $8, $9, $10) RETURNING ${COLUMNS}`,
        [
          id,
          input.client,
          input.key ?? null,
          hash,
          body,
          input.request.check_url !== undefined,
          sendAt,
          `<${id}@${input.domain}>`,
          input.tid,
          input.now,
        ],
      );
      if (input.key !== undefined) {
        await c.query('INSERT INTO idempotency_keys (client, key, body_hash, message_id, created_at) VALUES ($1, $2, $3, $4, $5)', [
          input.client,
          input.key,
          hash,
          id,
          input.now,
        ]);
      }
      await this.outbox('mailer').add(
        c,
        'email.queued',
        { id, client: input.client, send_at: new Date(sendAt).toISOString() },
        input.tid,
        input.now,
      );
      // Delivered to the workers' LISTEN connections when this transaction commits, not before.
      await c.query('SELECT pg_notify($1, $2)', [this.channel, String(sendAt)]);
      const message = parse(rows[0] as MessageRow);
      return { id, status: message.status, created: true, message };
    });
  }

  async get(id: string, client?: string): Promise<Message | undefined> {
    const [row] = await this.db.query<MessageRow>(`SELECT ${COLUMNS} FROM messages WHERE id = $1`, [id]);
    return row && (client === undefined || row.client === client) ? parse(row) : undefined;
  }

  attempts(seq: number): Promise<AttemptRow[]> {
    return this.db.query<AttemptRow>('SELECT at, outcome, error, duration_ms FROM attempts WHERE message_seq = $1 ORDER BY id', [seq]);
  }

  async list(client: string, options: { status?: EmailStatus; limit: number; after?: number }): Promise<Message[]> {
    const rows = await this.db.query<MessageRow>(
      `SELECT ${COLUMNS} FROM messages WHERE client = $1 AND seq > $2 AND ($3::text IS NULL OR status = $3) ORDER BY seq LIMIT $4`,
      [client, options.after ?? 0, options.status ?? null, options.limit],
    );
    return rows.map(parse);
  }

  cancel(id: string, client: string, now: number): Promise<Message> {
    return this.db.transaction(async (c) => {
      const { rows } = await c.query<MessageRow>(`SELECT ${COLUMNS} FROM messages WHERE id = $1 AND client = $2 FOR UPDATE`, [id, client]);
      const row = rows[0];
      if (!row) throw new AppError('ERR_MAILER_NOT_FOUND', 'no such message');
      if (row.status !== 'scheduled' && row.status !== 'retrying') {
        throw new AppError('ERR_MAILER_CONFLICT', `message is ${row.status}; only scheduled or retrying messages can be cancelled`);
      }
      const updated = await c.query<MessageRow>(
        `UPDATE messages SET status = 'cancelled', finished_at = $1 WHERE id = $2 RETURNING ${COLUMNS}`,
        [now, id],
      );
      await this.outbox('mailer').add(c, 'email.cancelled', { id, client: row.client }, row.tid, now);
      return parse(updated.rows[0] as MessageRow);
    });
  }

  async claimDue(
    owner: string,
    now: number,
    leaseMs: number,
    limit: number,
    maxChecked = limit,
    holding: readonly number[] = [],
  ): Promise<Message[]> {
    // Rows another worker is claiming right now are skipped, not waited for; a row claimed and
    // committed meanwhile is re-checked against the WHERE clause (READ COMMITTED) and dropped.
    const claim = async (c: PoolClient, checked: boolean, n: number): Promise<MessageRow[]> => {
      if (n <= 0) return [];
      const { rows } = await c.query<MessageRow>(
        `UPDATE messages SET status = 'sending', lease_owner = $1, lease_until = $2
         WHERE seq IN (
           SELECT seq FROM messages
           WHERE checked = $3 AND ((status IN ('scheduled', 'retrying') AND next_attempt_at <= $4)
              OR (status = 'sending' AND lease_until <= $4 AND NOT (seq = ANY($6::bigint[]))))
           ORDER BY seq LIMIT $5 FOR UPDATE SKIP LOCKED)
         RETURNING ${COLUMNS}`,
        [owner, now + leaseMs, checked, now, n, holding],
      );
      return rows;
    };
    return this.db.transaction(async (c) => {
      const plain = await claim(c, false, limit);
      const checked = await claim(c, true, Math.min(limit - plain.length, maxChecked));
      return [...plain, ...checked].sort((a, b) => a.seq - b.seq).map(parse);
    });
  }

  async oldestDue(now: number): Promise<number | undefined> {
    const [row] = await this.db.query<{ t: number | null }>(
      "SELECT MIN(next_attempt_at) AS t FROM messages WHERE status IN ('scheduled', 'retrying') AND next_attempt_at <= $1",
      [now],
    );
    return row?.t ?? undefined;
  }

  async nextDue(holding: readonly number[], withChecked = true): Promise<number | undefined> {
    const only = withChecked ? '' : 'AND NOT checked';
    const [row] = await this.db.query<{ t: number | null }>(
      `SELECT LEAST((SELECT MIN(next_attempt_at) FROM messages WHERE status IN ('scheduled', 'retrying') ${only}),
                    (SELECT MIN(lease_until) FROM messages WHERE status = 'sending' AND NOT (seq = ANY($1::bigint[])) ${only})) AS t`,
      [holding],
    );
    return row?.t ?? undefined;
  }

  finish(seq: number, owner: string, outcome: AttemptRow['outcome'], update: FinishUpdate, event?: StoreEvent): Promise<boolean> {
    return this.db.transaction(async (c) => {
      const done = update.status === 'sent' || update.status === 'dead' || update.status === 'skipped';
      const result = await c.query(
        `UPDATE messages SET status = $1, attempts = attempts + $2, last_error = $3, next_attempt_at = COALESCE($4, next_attempt_at),
         lease_owner = NULL, lease_until = NULL, finished_at = $5 WHERE seq = $6 AND lease_owner = $7 AND status = 'sending'`,
        [
          update.status,
          update.countsAsAttempt ? 1 : 0,
          update.error ?? null,
          update.nextAttemptAt ?? null,
          done ? update.now : null,
          seq,
          owner,
        ],
      );
      if (result.rowCount === 0) return false;
      await c.query('INSERT INTO attempts (message_seq, at, outcome, error, duration_ms) VALUES ($1, $2, $3, $4, $5)', [
        seq,
        update.now,
        outcome,
        update.error ?? null,
        update.durationMs,
      ]);
      if (event) await this.outbox('mailer-worker').add(c, event.name, event.payload, event.tid, update.now);
      return true;
    });
  }

  async renewLeases(owner: string, seqs: readonly number[], until: number): Promise<number> {
    return (
      await this.db.query(
        "UPDATE messages SET lease_until = $1 WHERE lease_owner = $2 AND status = 'sending' AND seq = ANY($3::bigint[]) RETURNING 1",
        [until, owner, seqs],
      )
    ).length;
  }

  async release(owner: string): Promise<number> {
    const rows = await this.db.query(
      `UPDATE messages SET status = CASE WHEN attempts > 0 THEN 'retrying' ELSE 'scheduled' END, lease_owner = NULL, lease_until = NULL
       WHERE lease_owner = $1 AND status = 'sending' RETURNING 1`,
      [owner],
    );
    if (rows.length > 0) await this.db.query('SELECT pg_notify($1, $2)', [this.channel, 'released']);
    return rows.length;
  }

  retry(id: string, now: number): Promise<boolean> {
    return this.db.transaction(async (c) => {
      const { rows } = await c.query<MessageRow>(`SELECT ${COLUMNS} FROM messages WHERE id = $1 FOR UPDATE`, [id]);
      const row = rows[0];
      if (row?.status !== 'dead') return false;
      await c.query("UPDATE messages SET status = 'scheduled', attempts = 0, next_attempt_at = $1, finished_at = NULL WHERE id = $2", [
        now,
        id,
      ]);
      // Queued again, with the state change (outbox): the workers wake at commit, subscribers see it.
      await this.outbox('mailer').add(c, 'email.queued', { id, client: row.client, send_at: new Date(now).toISOString() }, row.tid, now);
      await c.query('SELECT pg_notify($1, $2)', [this.channel, String(now)]);
      return true;
    });
  }

  purge(now: number, keepMs: number, keyKeepMs = keepMs): Promise<{ messages: number; keys: number }> {
    return this.db.transaction(async (c) => {
      await c.query(
        `UPDATE idempotency_keys SET status = m.status FROM messages m
         WHERE idempotency_keys.message_id = m.id AND m.status IN ${FINISHED} AND m.finished_at < $1`,
        [now - keepMs],
      );
      const messages = await c.query(`DELETE FROM messages WHERE status IN ${FINISHED} AND finished_at < $1`, [now - keepMs]);
      const keys = await c.query(
        'DELETE FROM idempotency_keys WHERE created_at < $1 AND NOT EXISTS (SELECT 1 FROM messages WHERE messages.id = idempotency_keys.message_id)',
        [now - Math.max(keepMs, keyKeepMs)],
      );
      return { messages: messages.rowCount ?? 0, keys: keys.rowCount ?? 0 };
    });
  }

  async counts(): Promise<Record<string, number>> {
    const rows = await this.db.query<{ status: string; n: number }>('SELECT status, COUNT(*)::int AS n FROM messages GROUP BY status');
    return Object.fromEntries(rows.map((r) => [r.status, r.n]));
  }

  async addClient(row: Omit<ClientRow, 'revoked_at'>): Promise<void> {
    const inserted = await this.db.query(
      `INSERT INTO clients (name, token_hash, secret, allowed_from, created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, NULL)
       ON CONFLICT (name) DO NOTHING RETURNING 1`,
      [row.name, row.token_hash, row.secret, row.allowed_from, row.created_at],
    );
    if (inserted.length === 1) return;
    const existing = await this.client(row.name);
    throw new AppError(
      'ERR_MAILER_CONFLICT',
      existing?.revoked_at === null
        ? `client ${row.name} exists`
        : `client ${row.name} was revoked; a revoked name is never reused (its messages stay its own): choose another name`,
    );
  }

  async client(name: string): Promise<ClientRow | undefined> {
    return (await this.db.query<ClientRow>('SELECT * FROM clients WHERE name = $1', [name]))[0];
  }

  clients(): Promise<ClientRow[]> {
    return this.db.query<ClientRow>('SELECT * FROM clients ORDER BY name');
  }

  async revokeClient(name: string, now: number): Promise<boolean> {
    return (
      (await this.db.query('UPDATE clients SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL RETURNING 1', [now, name])).length ===
      1
    );
  }

  pendingEvents(app: MailerApp): Promise<OutboxEvent[]> {
    return this.outbox(app).pending();
  }

  relay(app: MailerApp, target: OutboxTarget): Promise<void> {
    return this.outbox(app).relay(target);
  }

  async watch(onChange: () => void): Promise<() => Promise<void>> {
    // After a reconnection, notifications sent meanwhile are lost: look at the store then too.
    const listener = this.db.listen(this.channel, () => onChange(), onChange);
    await listener.ready;
    this.logger?.debug(`listening for new messages on ${this.channel}`);
    return () => listener.close();
  }

  checkpoint(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    return this.db.close();
  }
}

async function getOn(c: PoolClient, id: string): Promise<Message | undefined> {
  const { rows } = await c.query<MessageRow>(`SELECT ${COLUMNS} FROM messages WHERE id = $1`, [id]);
  return rows[0] ? parse(rows[0]) : undefined;
}

function parse(row: MessageRow): Message {
  return { ...row, request: JSON.parse(row.request) as Message['request'] };
}
