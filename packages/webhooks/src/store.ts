import { createHash } from 'node:crypto';

import { type Database, openDatabase, Outbox, OUTBOX_MIGRATION, type Statement } from '@steem-bot/store';

export interface ClientRow {
  name: string;
  token_hash: string;
  /** JSON array of the event types this client may post. */
  owned_events: string;
  /** JSON array of the catalogue tasks this client may send. */
  granted_tasks: string;
  created_at: number;
  revoked_at: number | null;
}

export interface EndpointRow {
  seq: number;
  client: string;
  id: string;
  url: string;
  /** JSON array of event types. */
  events: string;
  /** JSON object of top-level equality filters. */
  filter: string;
  description: string;
  disabled: number;
  disabled_reason: string | null;
  secret: string;
  old_secret: string | null;
  old_secret_until: number | null;
  /** Failed tries of the event at the head of the endpoint (0 when it is flowing). */
  attempts: number;
  next_attempt_at: number | null;
  failing_since: number | null;
  created_at: number;
  updated_at: number;
}

/** What a client sets with PUT. */
export interface EndpointSpec {
  url: string;
  events: string[];
  filter: Record<string, string | number | boolean | null>;
  description: string;
  disabled: boolean;
}

export interface DeliveryRow {
  seq: number;
  at: number;
  type: string;
  position: number;
  webhook_id: string;
  status: number | null;
  error: string | null;
  duration_ms: number;
  response: string | null;
}

/** One of the webhooks app's own events, written with the change that causes it (outbox). */
export interface OwnEvent {
  name: 'event.posted' | 'endpoint.disabled';
  payload: Record<string, unknown>;
  tid: string;
}

/** The bus app whose stream carries the webhooks app's own events. */
const OWN_APP = 'webhooks';

/** The SQLite schema steps, in order (exported for the upgrade test). */
export const MIGRATIONS = [
  `CREATE TABLE clients (
     name TEXT PRIMARY KEY,
     token_hash TEXT NOT NULL,
     owned_events TEXT NOT NULL DEFAULT '[]',
     granted_tasks TEXT NOT NULL DEFAULT '[]',
     created_at INTEGER NOT NULL,
     revoked_at INTEGER
   );
   CREATE TABLE endpoints (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
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
     old_secret_until INTEGER,
     attempts INTEGER NOT NULL DEFAULT 0,
     next_attempt_at INTEGER,
     failing_since INTEGER,
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL,
     UNIQUE (client, id)
   );
   CREATE TABLE cursors (
     endpoint_seq INTEGER NOT NULL REFERENCES endpoints (seq) ON DELETE CASCADE,
     app TEXT NOT NULL,
     pos INTEGER NOT NULL,
     PRIMARY KEY (endpoint_seq, app)
   );
   CREATE TABLE deliveries (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     endpoint_seq INTEGER NOT NULL REFERENCES endpoints (seq) ON DELETE CASCADE,
     at INTEGER NOT NULL,
     type TEXT NOT NULL,
     position INTEGER NOT NULL,
     webhook_id TEXT NOT NULL,
     status INTEGER,
     error TEXT,
     duration_ms INTEGER NOT NULL,
     response TEXT
   );
   CREATE INDEX deliveries_endpoint ON deliveries (endpoint_seq, seq);
   CREATE TABLE stream (
     pos INTEGER PRIMARY KEY,
     name TEXT NOT NULL,
     payload TEXT NOT NULL,
     tid TEXT NOT NULL,
     ts INTEGER NOT NULL
   );
   CREATE TABLE task_keys (
     client TEXT NOT NULL,
     idem_key TEXT NOT NULL,
     name TEXT NOT NULL,
     body_hash TEXT NOT NULL,
     reply TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     PRIMARY KEY (client, idem_key)
   );`,
  // The own events move to the app's bus stream through the outbox: what the old table held is
  // handed to the outbox (the relay skips what the stream already has), then the table goes.
  `${OUTBOX_MIGRATION}
   INSERT INTO outbox (app, pos, name, payload, tid) SELECT '${OWN_APP}', pos, name, payload, tid FROM stream;
   INSERT INTO outbox_head (app, pos) SELECT '${OWN_APP}', MAX(pos) FROM stream HAVING COUNT(*) > 0;
   DROP TABLE stream;`,
];

export const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

// Attempt log rows kept per endpoint; older ones are dropped as new ones come.
const KEEP_DELIVERIES = 1_000;

/** The webhooks app's SQLite file: clients, endpoints and their cursors, the attempt log, the outbox of its own events. */
export class WebhookStore {
  readonly db: Database;
  /** The app's own events (`event.posted`, `endpoint.disabled`) on their way to its bus stream. */
  readonly outbox: Outbox;
  private readonly statements = new Map<string, Statement>();

  constructor(file: string) {
    this.db = openDatabase(file, { migrations: MIGRATIONS });
    this.outbox = new Outbox(this.db, OWN_APP);
  }

  private sql(text: string): Statement {
    let statement = this.statements.get(text);
    if (!statement) {
      statement = this.db.prepare(text);
      this.statements.set(text, statement);
    }
    return statement;
  }

  close(): void {
    this.db.close();
  }

  // clients

  addClient(row: Omit<ClientRow, 'revoked_at'>): void {
    // A plain INSERT: a name once used (even revoked) is never handed to someone else.
    this.sql('INSERT INTO clients (name, token_hash, owned_events, granted_tasks, created_at) VALUES (?, ?, ?, ?, ?)').run(
      row.name,
      row.token_hash,
      row.owned_events,
      row.granted_tasks,
      row.created_at,
    );
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

  setClientLists(name: string, owned: string[], granted: string[]): void {
    this.sql('UPDATE clients SET owned_events = ?, granted_tasks = ? WHERE name = ?').run(
      JSON.stringify(owned),
      JSON.stringify(granted),
      name,
    );
  }

  /** Whether any active client owns the posted type. */
  typeOwned(type: string): boolean {
    return this.clients().some((c) => c.revoked_at === null && (JSON.parse(c.owned_events) as string[]).includes(type));
  }

  // endpoints

  endpoint(client: string, id: string): EndpointRow | undefined {
    return this.sql('SELECT * FROM endpoints WHERE client = ? AND id = ?').get(client, id) as EndpointRow | undefined;
  }

  endpointBySeq(seq: number): EndpointRow | undefined {
    return this.sql('SELECT * FROM endpoints WHERE seq = ?').get(seq) as EndpointRow | undefined;
  }

  endpoints(client?: string): EndpointRow[] {
    return (
      client === undefined
        ? this.sql('SELECT * FROM endpoints ORDER BY seq').all()
        : this.sql('SELECT * FROM endpoints WHERE client = ? ORDER BY seq').all(client)
    ) as EndpointRow[];
  }

  countEndpoints(client: string): number {
    return this.sql('SELECT COUNT(*) FROM endpoints WHERE client = ?').pluck().get(client) as number;
  }

  /**
   * Create or update an endpoint. Returns `created`, and `changed` when anything the client set
   * differs (the same body twice changes nothing). A change resets the retry state.
   */
  upsertEndpoint(
    client: string,
    id: string,
    spec: EndpointSpec,
    secret: string,
    now: number,
  ): { row: EndpointRow; created: boolean; changed: boolean } {
    return this.db
      .transaction(() => {
        const existing = this.endpoint(client, id);
        const events = JSON.stringify(spec.events);
        const filter = JSON.stringify(spec.filter);
        const disabled = spec.disabled ? 1 : 0;
        if (!existing) {
          this.sql(
            `INSERT INTO endpoints (client, id, url, events, filter, description, disabled, disabled_reason, secret, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          ).run(client, id, spec.url, events, filter, spec.description, disabled, spec.disabled ? 'by the client' : null, secret, now, now);
          return { row: this.endpoint(client, id) as EndpointRow, created: true, changed: true };
        }
        const same =
          existing.url === spec.url &&
          existing.events === events &&
          existing.filter === filter &&
          existing.description === spec.description &&
          existing.disabled === disabled;
        if (same) return { row: existing, created: false, changed: false };
        // Any change (a new URL, re-enabling) ends the wait of a failing delivery: it is tried at once.
        this.sql(
          `UPDATE endpoints SET url = ?, events = ?, filter = ?, description = ?, disabled = ?, disabled_reason = ?, updated_at = ?,
             attempts = 0, next_attempt_at = NULL, failing_since = NULL
           WHERE seq = ?`,
        ).run(
          spec.url,
          events,
          filter,
          spec.description,
          disabled,
          disabled ? (existing.disabled_reason ?? 'by the client') : null,
          now,
          existing.seq,
        );
        return { row: this.endpointBySeq(existing.seq) as EndpointRow, created: false, changed: true };
      })
      .immediate();
  }

  deleteEndpoint(client: string, id: string): EndpointRow | undefined {
    const row = this.endpoint(client, id);
    if (row) this.sql('DELETE FROM endpoints WHERE seq = ?').run(row.seq);
    return row;
  }

  rotateSecret(seq: number, secret: string, oldUntil: number): void {
    this.sql('UPDATE endpoints SET old_secret = secret, old_secret_until = ?, secret = ? WHERE seq = ?').run(oldUntil, secret, seq);
  }

  /** Disable an endpoint; `event` (endpoint.disabled) goes to the outbox in the same transaction. */
  disable(seq: number, reason: string, now: number, event?: OwnEvent): void {
    this.db
      .transaction(() => {
        this.sql('UPDATE endpoints SET disabled = 1, disabled_reason = ?, updated_at = ? WHERE seq = ?').run(reason, now, seq);
        if (event) this.outbox.add(event.name, event.payload, event.tid, now);
      })
      .immediate();
  }

  /** The retry state of the event at the head of the endpoint. */
  setRetry(seq: number, attempts: number, nextAttemptAt: number | null, failingSince: number | null): void {
    this.sql('UPDATE endpoints SET attempts = ?, next_attempt_at = ?, failing_since = ? WHERE seq = ?').run(
      attempts,
      nextAttemptAt,
      failingSince,
      seq,
    );
  }

  // cursors

  cursor(seq: number, app: string): number | null {
    const pos = this.sql('SELECT pos FROM cursors WHERE endpoint_seq = ? AND app = ?').pluck().get(seq, app) as number | undefined;
    return pos ?? null;
  }

  /** Move the endpoint's cursor on `app`'s stream past `pos` (the event is done: delivered or not wanted). */
  advance(seq: number, app: string, pos: number): void {
    this.sql(
      `INSERT INTO cursors (endpoint_seq, app, pos) VALUES (?, ?, ?)
       ON CONFLICT (endpoint_seq, app) DO UPDATE SET pos = MAX(pos, excluded.pos)`,
    ).run(seq, app, pos);
  }

  /** Set the endpoint's cursors on `apps` back (or forward) to `pos` (replay), and clear its retry state. */
  setCursors(seq: number, apps: readonly string[], pos: number): void {
    this.db
      .transaction(() => {
        for (const app of apps) {
          this.sql(
            `INSERT INTO cursors (endpoint_seq, app, pos) VALUES (?, ?, ?) ON CONFLICT (endpoint_seq, app) DO UPDATE SET pos = excluded.pos`,
          ).run(seq, app, pos);
        }
        this.sql('UPDATE endpoints SET attempts = 0, next_attempt_at = NULL, failing_since = NULL WHERE seq = ?').run(seq);
      })
      .immediate();
  }

  cursors(seq: number): Record<string, number> {
    const rows = this.sql('SELECT app, pos FROM cursors WHERE endpoint_seq = ? ORDER BY app').all(seq) as Array<{
      app: string;
      pos: number;
    }>;
    return Object.fromEntries(rows.map((r) => [r.app, r.pos]));
  }

  // attempt log

  logDelivery(seq: number, row: Omit<DeliveryRow, 'seq'>): void {
    this.sql(
      `INSERT INTO deliveries (endpoint_seq, at, type, position, webhook_id, status, error, duration_ms, response)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(seq, row.at, row.type, row.position, row.webhook_id, row.status, row.error, row.duration_ms, row.response);
    this.sql(
      'DELETE FROM deliveries WHERE endpoint_seq = ? AND seq <= (SELECT seq FROM deliveries WHERE endpoint_seq = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)',
    ).run(seq, seq, KEEP_DELIVERIES);
  }

  deliveries(seq: number, after: number, limit: number): DeliveryRow[] {
    return this.sql(
      'SELECT seq, at, type, position, webhook_id, status, error, duration_ms, response FROM deliveries WHERE endpoint_seq = ? AND seq > ? ORDER BY seq LIMIT ?',
    ).all(seq, after, limit) as DeliveryRow[];
  }

  // the webhooks app's own events

  /** Write an own event (a posted one) to the outbox; returns the stream position it will have. */
  addOwnEvent(event: OwnEvent, now: number): number {
    return this.db.transaction(() => this.outbox.add(event.name, event.payload, event.tid, now)).immediate();
  }

  // task idempotency

  taskKey(client: string, key: string): { name: string; body_hash: string; reply: string } | undefined {
    return this.sql('SELECT name, body_hash, reply FROM task_keys WHERE client = ? AND idem_key = ?').get(client, key) as
      { name: string; body_hash: string; reply: string } | undefined;
  }

  saveTaskKey(client: string, key: string, name: string, bodyHash: string, reply: unknown, now: number): void {
    this.sql('INSERT OR IGNORE INTO task_keys (client, idem_key, name, body_hash, reply, created_at) VALUES (?, ?, ?, ?, ?, ?)').run(
      client,
      key,
      name,
      bodyHash,
      JSON.stringify(reply ?? null),
      now,
    );
  }
}
