import { type OutboxTarget, type PoolClient, Postgres } from '@steem-bot/store';

import {
  type AttemptEffects,
  type ClientRow,
  type DeliveryRow,
  type EndpointRow,
  type EndpointSpec,
  KEEP_DELIVERIES,
  OWN_APP,
  type OwnEvent,
  type WebhookStore,
} from './store';

// Tables are prefixed: the schema (DATABASE_SCHEMA) is shared with the other apps' stores.
// Times and positions are BIGINT (ms and positions beyond 32 bits), parsed to numbers by the
// store helper; rows keep the SQLite implementation's shape (disabled 0/1, JSON as text).
const MIGRATIONS = [
  `CREATE TABLE webhooks_clients (
     name TEXT PRIMARY KEY,
     token_hash TEXT NOT NULL,
     owned_events TEXT NOT NULL DEFAULT '[]',
     granted_tasks TEXT NOT NULL DEFAULT '[]',
     created_at BIGINT NOT NULL,
     revoked_at BIGINT
   );
   CREATE TABLE webhooks_endpoints (
     seq BIGSERIAL PRIMARY KEY,
     client TEXT NOT NULL,
     id TEXT NOT NULL,
     url TEXT NOT NULL,
     events TEXT NOT NULL,
     filter TEXT NOT NULL,
     description TEXT NOT NULL,
     disabled INTEGER NOT NULL DEFAULT 0,
     disabled_reason TEXT,
     secret TEXT NOT NULL,
     old_secret TEXT,
     old_secret_until BIGINT,
     attempts INTEGER NOT NULL DEFAULT 0,
     next_attempt_at BIGINT,
     failing_since BIGINT,
     created_at BIGINT NOT NULL,
     updated_at BIGINT NOT NULL,
     UNIQUE (client, id)
   );
   CREATE TABLE webhooks_cursors (
     endpoint_seq BIGINT NOT NULL REFERENCES webhooks_endpoints (seq) ON DELETE CASCADE,
     app TEXT NOT NULL,
     pos BIGINT NOT NULL,
     PRIMARY KEY (endpoint_seq, app)
   );
   CREATE TABLE webhooks_deliveries (
     seq BIGSERIAL PRIMARY KEY,
     endpoint_seq BIGINT NOT NULL REFERENCES webhooks_endpoints (seq) ON DELETE CASCADE,
     at BIGINT NOT NULL,
     type TEXT NOT NULL,
     position BIGINT NOT NULL,
     webhook_id TEXT NOT NULL,
     status INTEGER,
     error TEXT,
     duration_ms INTEGER NOT NULL,
     response TEXT
   );
   CREATE INDEX webhooks_deliveries_endpoint ON webhooks_deliveries (endpoint_seq, seq);
   CREATE TABLE webhooks_task_keys (
     client TEXT NOT NULL,
     idem_key TEXT NOT NULL,
     name TEXT NOT NULL,
     body_hash TEXT NOT NULL,
     reply TEXT NOT NULL,
     created_at BIGINT NOT NULL,
     PRIMARY KEY (client, idem_key)
   );
   CREATE TABLE webhooks_outbox (
     pos BIGINT PRIMARY KEY,
     name TEXT NOT NULL,
     payload TEXT NOT NULL,
     tid TEXT NOT NULL
   );
   CREATE TABLE webhooks_outbox_head (app TEXT PRIMARY KEY, pos BIGINT NOT NULL)`,
];

/** The endpoint columns, in the order of the SQLite table. */
export const ENDPOINT_COLUMNS = `seq, client, id, url, events, filter, description, disabled, disabled_reason, secret, old_secret,
  old_secret_until, attempts, next_attempt_at, failing_since, created_at, updated_at`;

/** The webhooks app's state in PostgreSQL (`STORE=postgres`): the same contract as the SQLite file. */
export class PostgresWebhookStore implements WebhookStore {
  private relaying: Promise<void> | undefined;
  private again = false;
  // The highest stream position the head row is known to cover.
  private knownHead = -1;

  private constructor(private readonly db: Postgres) {}

  static async open(options: { url: string; schema: string }): Promise<PostgresWebhookStore> {
    return new PostgresWebhookStore(await Postgres.open({ ...options, name: 'webhooks', migrations: MIGRATIONS, poolSize: 4 }));
  }

  close(): Promise<void> {
    return this.db.close();
  }

  /** One transaction on the store's connection (for `importDump`). */
  withTransaction<T>(fn: (tx: PoolClient) => Promise<T>): Promise<T> {
    return this.db.transaction(fn);
  }

  private async one<R extends object>(text: string, values: unknown[]): Promise<R | undefined> {
    return (await this.db.query<R & Record<string, unknown>>(text, values))[0];
  }

  // clients

  async addClient(row: Omit<ClientRow, 'revoked_at'>): Promise<void> {
    await this.db.query(
      'INSERT INTO webhooks_clients (name, token_hash, owned_events, granted_tasks, created_at) VALUES ($1, $2, $3, $4, $5)',
      [row.name, row.token_hash, row.owned_events, row.granted_tasks, row.created_at],
    );
  }

  client(name: string): Promise<ClientRow | undefined> {
    return this.one<ClientRow>('SELECT * FROM webhooks_clients WHERE name = $1', [name]);
  }

  clients(): Promise<ClientRow[]> {
    return this.db.query<ClientRow & Record<string, unknown>>('SELECT * FROM webhooks_clients ORDER BY name');
  }

  async revokeClient(name: string, now: number): Promise<boolean> {
    const rows = await this.db.query('UPDATE webhooks_clients SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL RETURNING 1', [
      now,
      name,
    ]);
    return rows.length === 1;
  }

  async setClientLists(name: string, owned: string[], granted: string[]): Promise<void> {
    await this.db.query('UPDATE webhooks_clients SET owned_events = $1, granted_tasks = $2 WHERE name = $3', [
      JSON.stringify(owned),
      JSON.stringify(granted),
      name,
    ]);
  }

  async typeOwned(type: string): Promise<boolean> {
    return (await this.clients()).some((c) => c.revoked_at === null && (JSON.parse(c.owned_events) as string[]).includes(type));
  }

  // endpoints

  endpoint(client: string, id: string): Promise<EndpointRow | undefined> {
    return this.one<EndpointRow>(`SELECT ${ENDPOINT_COLUMNS} FROM webhooks_endpoints WHERE client = $1 AND id = $2`, [client, id]);
  }

  endpointBySeq(seq: number): Promise<EndpointRow | undefined> {
    return this.one<EndpointRow>(`SELECT ${ENDPOINT_COLUMNS} FROM webhooks_endpoints WHERE seq = $1`, [seq]);
  }

  endpoints(client?: string): Promise<EndpointRow[]> {
    return this.db.query<EndpointRow & Record<string, unknown>>(
      client === undefined
        ? `SELECT ${ENDPOINT_COLUMNS} FROM webhooks_endpoints ORDER BY seq`
        : `SELECT ${ENDPOINT_COLUMNS} FROM webhooks_endpoints WHERE client = $1 ORDER BY seq`,
      client === undefined ? [] : [client],
    );
  }

  async countEndpoints(client: string): Promise<number> {
    const row = await this.one<{ n: number }>('SELECT COUNT(*)::bigint AS n FROM webhooks_endpoints WHERE client = $1', [client]);
    return row?.n ?? 0;
  }

  upsertEndpoint(
    client: string,
    id: string,
    spec: EndpointSpec,
    secret: string,
    now: number,
  ): Promise<{ row: EndpointRow; created: boolean; changed: boolean }> {
    const events = JSON.stringify(spec.events);
    const filter = JSON.stringify(spec.filter);
    const disabled = spec.disabled ? 1 : 0;
    return this.db.transaction(async (tx) => {
      // Two PUTs of one id at once: the second waits for the first's row, then compares with it.
      const inserted = await tx.query<EndpointRow>(
        `INSERT INTO webhooks_endpoints (client, id, url, events, filter, description, disabled, disabled_reason, secret, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)
         ON CONFLICT (client, id) DO NOTHING RETURNING ${ENDPOINT_COLUMNS}`,
        [client, id, spec.url, events, filter, spec.description, disabled, spec.disabled ? 'by the client' : null, secret, now],
      );
      if (inserted.rows[0]) return { row: inserted.rows[0], created: true, changed: true };
      const existing = (
        await tx.query<EndpointRow>(`SELECT ${ENDPOINT_COLUMNS} FROM webhooks_endpoints WHERE client = $1 AND id = $2 FOR UPDATE`, [
          client,
          id,
        ])
      ).rows[0] as EndpointRow;
      const same =
        existing.url === spec.url &&
        existing.events === events &&
        existing.filter === filter &&
        existing.description === spec.description &&
        existing.disabled === disabled;
      if (same) return { row: existing, created: false, changed: false };
      // Any change (a new URL, re-enabling) ends the wait of a failing delivery: it is tried at once.
      const updated = await tx.query<EndpointRow>(
        `UPDATE webhooks_endpoints SET url = $1, events = $2, filter = $3, description = $4, disabled = $5, disabled_reason = $6,
           updated_at = $7, attempts = 0, next_attempt_at = NULL, failing_since = NULL
         WHERE seq = $8 RETURNING ${ENDPOINT_COLUMNS}`,
        [
          spec.url,
          events,
          filter,
          spec.description,
          disabled,
          disabled ? (existing.disabled_reason ?? 'by the client') : null,
          now,
          existing.seq,
        ],
      );
      return { row: updated.rows[0] as EndpointRow, created: false, changed: true };
    });
  }

  deleteEndpoint(client: string, id: string): Promise<EndpointRow | undefined> {
    return this.one<EndpointRow>(`DELETE FROM webhooks_endpoints WHERE client = $1 AND id = $2 RETURNING ${ENDPOINT_COLUMNS}`, [
      client,
      id,
    ]);
  }

  async rotateSecret(seq: number, secret: string, oldUntil: number): Promise<void> {
    await this.db.query('UPDATE webhooks_endpoints SET old_secret = secret, old_secret_until = $1, secret = $2 WHERE seq = $3', [
      oldUntil,
      secret,
      seq,
    ]);
  }

  disable(seq: number, reason: string, now: number, event?: OwnEvent): Promise<void> {
    return this.db.transaction(async (tx) => {
      await tx.query('UPDATE webhooks_endpoints SET disabled = 1, disabled_reason = $1, updated_at = $2 WHERE seq = $3', [
        reason,
        now,
        seq,
      ]);
      if (event) await addToOutbox(tx, event, now);
    });
  }

  async enable(seq: number, now: number): Promise<boolean> {
    const rows = await this.db.query(
      `UPDATE webhooks_endpoints SET disabled = 0, disabled_reason = NULL, updated_at = $1, attempts = 0, next_attempt_at = NULL,
         failing_since = NULL
       WHERE seq = $2 AND disabled = 1 RETURNING 1`,
      [now, seq],
    );
    return rows.length === 1;
  }

  async setRetry(seq: number, attempts: number, nextAttemptAt: number | null, failingSince: number | null): Promise<void> {
    await this.db.query('UPDATE webhooks_endpoints SET attempts = $1, next_attempt_at = $2, failing_since = $3 WHERE seq = $4', [
      attempts,
      nextAttemptAt,
      failingSince,
      seq,
    ]);
  }

  // cursors

  async cursor(seq: number, app: string): Promise<number | null> {
    return (
      (await this.one<{ pos: number }>('SELECT pos FROM webhooks_cursors WHERE endpoint_seq = $1 AND app = $2', [seq, app]))?.pos ?? null
    );
  }

  async advance(seq: number, app: string, pos: number): Promise<void> {
    await this.db.query(
      `INSERT INTO webhooks_cursors (endpoint_seq, app, pos) VALUES ($1, $2, $3)
       ON CONFLICT (endpoint_seq, app) DO UPDATE SET pos = GREATEST(webhooks_cursors.pos, EXCLUDED.pos)`,
      [seq, app, pos],
    );
  }

  setCursors(seq: number, apps: readonly string[], pos: number): Promise<void> {
    return this.db.transaction(async (tx) => {
      for (const app of apps) {
        await tx.query(
          `INSERT INTO webhooks_cursors (endpoint_seq, app, pos) VALUES ($1, $2, $3)
           ON CONFLICT (endpoint_seq, app) DO UPDATE SET pos = EXCLUDED.pos`,
          [seq, app, pos],
        );
      }
      await tx.query('UPDATE webhooks_endpoints SET attempts = 0, next_attempt_at = NULL, failing_since = NULL WHERE seq = $1', [seq]);
    });
  }

  async cursors(seq: number): Promise<Record<string, number>> {
    const rows = await this.db.query<{ app: string; pos: number }>(
      'SELECT app, pos FROM webhooks_cursors WHERE endpoint_seq = $1 ORDER BY app',
      [seq],
    );
    return Object.fromEntries(rows.map((r) => [r.app, r.pos]));
  }

  // attempt log

  async logDelivery(seq: number, row: Omit<DeliveryRow, 'seq'>, after: AttemptEffects = {}): Promise<void> {
    // One statement, one round trip: the insert, the trim of the older rows to the newest
    // KEEP_DELIVERIES - 1 (the DELETE sees the table as it was before the insert), and what the
    // try settled. Every data-modifying WITH part runs, referenced or not.
    const values: unknown[] = [seq, row.at, row.type, row.position, row.webhook_id, row.status, row.error, row.duration_ms, row.response];
    values.push(KEEP_DELIVERIES - 1);
    const parts = [
      `added AS (
         INSERT INTO webhooks_deliveries (endpoint_seq, at, type, position, webhook_id, status, error, duration_ms, response)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING seq)`,
    ];
    if (after.advance) {
      values.push(after.advance.app, after.advance.pos);
      parts.push(`moved AS (
         INSERT INTO webhooks_cursors (endpoint_seq, app, pos) VALUES ($1, $${values.length - 1}, $${values.length})
         ON CONFLICT (endpoint_seq, app) DO UPDATE SET pos = GREATEST(webhooks_cursors.pos, EXCLUDED.pos))`);
    }
    if (after.retry) {
      values.push(after.retry.attempts, after.retry.nextAttemptAt, after.retry.failingSince);
      const n = values.length;
      parts.push(`retry AS (
         UPDATE webhooks_endpoints SET attempts = $${n - 2}, next_attempt_at = $${n - 1}, failing_since = $${n} WHERE seq = $1)`);
    }
    await this.db.query(
      `WITH ${parts.join(', ')}
       DELETE FROM webhooks_deliveries WHERE endpoint_seq = $1 AND seq <= (
         SELECT seq FROM webhooks_deliveries WHERE endpoint_seq = $1 ORDER BY seq DESC LIMIT 1 OFFSET $10
       )`,
      values,
    );
  }

  deliveries(seq: number, after: number, limit: number): Promise<DeliveryRow[]> {
    return this.db.query<DeliveryRow & Record<string, unknown>>(
      `SELECT seq, at, type, position, webhook_id, status, error, duration_ms, response FROM webhooks_deliveries
       WHERE endpoint_seq = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
      [seq, after, limit],
    );
  }

  // the app's own events

  async addOwnEvent(event: OwnEvent, now: number): Promise<number> {
    // One statement (one round trip): the next position under the head row's lock, and the event.
    const rows = await this.db.query<{ pos: number }>(
      `WITH head AS (
         INSERT INTO webhooks_outbox_head (app, pos) VALUES ($1, $2)
         ON CONFLICT (app) DO UPDATE SET pos = GREATEST(webhooks_outbox_head.pos + 1, EXCLUDED.pos) RETURNING pos
       )
       INSERT INTO webhooks_outbox (pos, name, payload, tid) SELECT pos, $3, $4, $5 FROM head RETURNING pos`,
      [OWN_APP, now * 1000, event.name, JSON.stringify(event.payload), event.tid],
    );
    return (rows[0] as { pos: number }).pos;
  }

  async pendingOwn(limit = 500): Promise<Array<OwnEvent & { pos: number }>> {
    const rows = await this.db.query<{ pos: number; name: OwnEvent['name']; payload: string; tid: string }>(
      'SELECT pos, name, payload, tid FROM webhooks_outbox ORDER BY pos LIMIT $1',
      [limit],
    );
    return rows.map((r) => ({ pos: r.pos, name: r.name, payload: JSON.parse(r.payload) as Record<string, unknown>, tid: r.tid }));
  }

  relayOwn(target: OutboxTarget): Promise<void> {
    if (this.relaying) {
      this.again = true;
      return this.relaying;
    }
    this.relaying = this.drain(target).finally(() => (this.relaying = undefined));
    return this.relaying;
  }

  // As @steem-bot/store's Outbox.relay: an event at or below the stream's head was appended
  // before a crash and is only removed.
  private async drain(target: OutboxTarget): Promise<void> {
    // Only when the stream holds more than this outbox put there (at start, or events appended
    // by other means): the head row never falls behind the stream.
    if ((target.head ?? 0) > this.knownHead) await this.syncHead(target);
    do {
      this.again = false;
      for (let batch = await this.pendingOwn(); batch.length > 0; batch = await this.pendingOwn()) {
        const appended = target.head ?? 0;
        const fresh = batch.filter((e) => e.pos > appended);
        if (fresh.length > 0) await target.append(fresh);
        this.knownHead = Math.max(this.knownHead, (batch.at(-1) as { pos: number }).pos);
        await this.db.query('DELETE FROM webhooks_outbox WHERE pos <= $1', [(batch.at(-1) as { pos: number }).pos]);
      }
    } while (this.again);
  }

  private async syncHead(target: OutboxTarget): Promise<void> {
    const head = target.head ?? 0;
    await this.db.query(
      `INSERT INTO webhooks_outbox_head (app, pos) VALUES ($1, $2)
       ON CONFLICT (app) DO UPDATE SET pos = GREATEST(webhooks_outbox_head.pos, EXCLUDED.pos)`,
      [OWN_APP, head],
    );
    this.knownHead = Math.max(this.knownHead, head);
  }

  // task idempotency

  taskKey(client: string, key: string): Promise<{ name: string; body_hash: string; reply: string } | undefined> {
    return this.one('SELECT name, body_hash, reply FROM webhooks_task_keys WHERE client = $1 AND idem_key = $2', [client, key]);
  }

  async saveTaskKey(client: string, key: string, name: string, bodyHash: string, reply: unknown, now: number): Promise<void> {
    await this.db.query(
      `INSERT INTO webhooks_task_keys (client, idem_key, name, body_hash, reply, created_at) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (client, idem_key) DO NOTHING`,
      [client, key, name, bodyHash, JSON.stringify(reply ?? null), now],
    );
  }
}

/** Give the event the next position (time-based, above the head) and write it, in `tx`. */
async function addToOutbox(tx: PoolClient, event: OwnEvent, now: number): Promise<number> {
  const head = await tx.query<{ pos: number }>(
    `INSERT INTO webhooks_outbox_head (app, pos) VALUES ($1, $2)
     ON CONFLICT (app) DO UPDATE SET pos = GREATEST(webhooks_outbox_head.pos + 1, EXCLUDED.pos) RETURNING pos`,
    [OWN_APP, now * 1000],
  );
  const pos = (head.rows[0] as { pos: number }).pos;
  await tx.query('INSERT INTO webhooks_outbox (pos, name, payload, tid) VALUES ($1, $2, $3, $4)', [
    pos,
    event.name,
    JSON.stringify(event.payload),
    event.tid,
  ]);
  return pos;
}
