import { type Database, openDatabase, Outbox, OUTBOX_MIGRATION, type OutboxTarget, type Statement } from '@steem-bot/store';

import {
  type AttemptEffects,
  type ClientRow,
  type DeliveryRow,
  type EndpointRow,
  type EndpointSpec,
  KEEP_DELIVERIES,
  OWN_APP,
  type OwnEvent,
  type StoreDump,
  type WebhookStore,
} from './store';

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

/** The webhooks app's SQLite file: clients, endpoints and their cursors, the attempt log, the outbox of its own events. */
export class SqliteWebhookStore implements WebhookStore {
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

  async close(): Promise<void> {
    this.db.close();
  }

  /** The row of (client, id), read inside the caller's transaction. */
  private endpointNow(client: string, id: string): EndpointRow | undefined {
    return this.sql('SELECT * FROM endpoints WHERE client = ? AND id = ?').get(client, id) as EndpointRow | undefined;
  }

  // clients

  async addClient(row: Omit<ClientRow, 'revoked_at'>): Promise<void> {
    // A plain INSERT: a name once used (even revoked) is never handed to someone else.
    this.sql('INSERT INTO clients (name, token_hash, owned_events, granted_tasks, created_at) VALUES (?, ?, ?, ?, ?)').run(
      row.name,
      row.token_hash,
      row.owned_events,
      row.granted_tasks,
      row.created_at,
    );
  }

  async client(name: string): Promise<ClientRow | undefined> {
    return this.sql('SELECT * FROM clients WHERE name = ?').get(name) as ClientRow | undefined;
  }

  async clients(): Promise<ClientRow[]> {
    return this.sql('SELECT * FROM clients ORDER BY name').all() as ClientRow[];
  }

  async revokeClient(name: string, now: number): Promise<boolean> {
    return this.sql('UPDATE clients SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL').run(now, name).changes === 1;
  }

  async setClientLists(name: string, owned: string[], granted: string[]): Promise<void> {
    this.sql('UPDATE clients SET owned_events = ?, granted_tasks = ? WHERE name = ?').run(
      JSON.stringify(owned),
      JSON.stringify(granted),
      name,
    );
  }

  /** Whether any active client owns the posted type. */
  async typeOwned(type: string): Promise<boolean> {
    return (await this.clients()).some((c) => c.revoked_at === null && (JSON.parse(c.owned_events) as string[]).includes(type));
  }

  // endpoints

  async endpoint(client: string, id: string): Promise<EndpointRow | undefined> {
    return this.sql('SELECT * FROM endpoints WHERE client = ? AND id = ?').get(client, id) as EndpointRow | undefined;
  }

  async endpointBySeq(seq: number): Promise<EndpointRow | undefined> {
    return this.sql('SELECT * FROM endpoints WHERE seq = ?').get(seq) as EndpointRow | undefined;
  }

  async endpoints(client?: string): Promise<EndpointRow[]> {
    return (
      client === undefined
        ? this.sql('SELECT * FROM endpoints ORDER BY seq').all()
        : this.sql('SELECT * FROM endpoints WHERE client = ? ORDER BY seq').all(client)
    ) as EndpointRow[];
  }

  async countEndpoints(client: string): Promise<number> {
    return this.sql('SELECT COUNT(*) FROM endpoints WHERE client = ?').pluck().get(client) as number;
  }

  /**
   * Create or update an endpoint. Returns `created`, and `changed` when anything the client set
   * differs (the same body twice changes nothing). A change resets the retry state.
   */
  async upsertEndpoint(
    client: string,
    id: string,
    spec: EndpointSpec,
    secret: string,
    now: number,
  ): Promise<{ row: EndpointRow; created: boolean; changed: boolean }> {
    return this.db
      .transaction(() => {
        const existing = this.endpointNow(client, id);
        const events = JSON.stringify(spec.events);
        const filter = JSON.stringify(spec.filter);
        const disabled = spec.disabled ? 1 : 0;
        if (!existing) {
          this.sql(
            `INSERT INTO endpoints (client, id, url, events, filter, description, disabled, disabled_reason, secret, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          ).run(client, id, spec.url, events, filter, spec.description, disabled, spec.disabled ? 'by the client' : null, secret, now, now);
          return { row: this.endpointNow(client, id) as EndpointRow, created: true, changed: true };
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
        return {
          row: this.sql('SELECT * FROM endpoints WHERE seq = ?').get(existing.seq) as EndpointRow,
          created: false,
          changed: true,
        };
      })
      .immediate();
  }

  async deleteEndpoint(client: string, id: string): Promise<EndpointRow | undefined> {
    const row = this.endpointNow(client, id);
    if (row) this.sql('DELETE FROM endpoints WHERE seq = ?').run(row.seq);
    return row;
  }

  async rotateSecret(seq: number, secret: string, oldUntil: number): Promise<void> {
    this.sql('UPDATE endpoints SET old_secret = secret, old_secret_until = ?, secret = ? WHERE seq = ?').run(oldUntil, secret, seq);
  }

  /** Disable an endpoint; `event` (endpoint.disabled) goes to the outbox in the same transaction. */
  async disable(seq: number, reason: string, now: number, event?: OwnEvent): Promise<void> {
    this.db
      .transaction(() => {
        this.sql('UPDATE endpoints SET disabled = 1, disabled_reason = ?, updated_at = ? WHERE seq = ?').run(reason, now, seq);
        if (event) this.outbox.add(event.name, event.payload, event.tid, now);
      })
      .immediate();
  }

  async enable(seq: number, now: number): Promise<boolean> {
    const changed = this.sql(
      `UPDATE endpoints SET disabled = 0, disabled_reason = NULL, updated_at = ?, attempts = 0, next_attempt_at = NULL, failing_since = NULL
       WHERE seq = ? AND disabled = 1`,
    ).run(now, seq).changes;
    return changed > 0;
  }

  /** The retry state of the event at the head of the endpoint. */
  async setRetry(seq: number, attempts: number, nextAttemptAt: number | null, failingSince: number | null): Promise<void> {
    this.setRetryNow(seq, attempts, nextAttemptAt, failingSince);
  }

  private setRetryNow(seq: number, attempts: number, nextAttemptAt: number | null, failingSince: number | null): void {
    this.sql('UPDATE endpoints SET attempts = ?, next_attempt_at = ?, failing_since = ? WHERE seq = ?').run(
      attempts,
      nextAttemptAt,
      failingSince,
      seq,
    );
  }

  // cursors

  async cursor(seq: number, app: string): Promise<number | null> {
    const pos = this.sql('SELECT pos FROM cursors WHERE endpoint_seq = ? AND app = ?').pluck().get(seq, app) as number | undefined;
    return pos ?? null;
  }

  /** Move the endpoint's cursor on `app`'s stream past `pos` (the event is done: delivered or not wanted). */
  async advance(seq: number, app: string, pos: number): Promise<void> {
    this.advanceNow(seq, app, pos);
  }

  private advanceNow(seq: number, app: string, pos: number): void {
    this.sql(
      `INSERT INTO cursors (endpoint_seq, app, pos) VALUES (?, ?, ?)
       ON CONFLICT (endpoint_seq, app) DO UPDATE SET pos = MAX(pos, excluded.pos)`,
    ).run(seq, app, pos);
  }

  /** Set the endpoint's cursors on `apps` back (or forward) to `pos` (replay), and clear its retry state. */
  async setCursors(seq: number, apps: readonly string[], pos: number): Promise<void> {
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

  async cursors(seq: number): Promise<Record<string, number>> {
    const rows = this.sql('SELECT app, pos FROM cursors WHERE endpoint_seq = ? ORDER BY app').all(seq) as Array<{
      app: string;
      pos: number;
    }>;
    return Object.fromEntries(rows.map((r) => [r.app, r.pos]));
  }

  // attempt log

  async logDelivery(seq: number, row: Omit<DeliveryRow, 'seq'>, after: AttemptEffects = {}): Promise<void> {
    this.db
      .transaction(() => {
        this.sql(
          `INSERT INTO deliveries (endpoint_seq, at, type, position, webhook_id, status, error, duration_ms, response)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        ).run(seq, row.at, row.type, row.position, row.webhook_id, row.status, row.error, row.duration_ms, row.response);
        this.sql(
          'DELETE FROM deliveries WHERE endpoint_seq = ? AND seq <= (SELECT seq FROM deliveries WHERE endpoint_seq = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)',
        ).run(seq, seq, KEEP_DELIVERIES);
        if (after.advance) this.advanceNow(seq, after.advance.app, after.advance.pos);
        if (after.retry) this.setRetryNow(seq, after.retry.attempts, after.retry.nextAttemptAt, after.retry.failingSince);
      })
      .immediate();
  }

  async deliveries(seq: number, after: number, limit: number): Promise<DeliveryRow[]> {
    return this.sql(
      'SELECT seq, at, type, position, webhook_id, status, error, duration_ms, response FROM deliveries WHERE endpoint_seq = ? AND seq > ? ORDER BY seq LIMIT ?',
    ).all(seq, after, limit) as DeliveryRow[];
  }

  // the webhooks app's own events

  /** Write an own event (a posted one) to the outbox; returns the stream position it will have. */
  async addOwnEvent(event: OwnEvent, now: number): Promise<number> {
    return this.db.transaction(() => this.outbox.add(event.name, event.payload, event.tid, now)).immediate();
  }

  async pendingOwn(): Promise<Array<OwnEvent & { pos: number }>> {
    return this.outbox.pending() as Array<OwnEvent & { pos: number }>;
  }

  relayOwn(target: OutboxTarget): Promise<void> {
    return this.outbox.relay(target);
  }

  // task idempotency

  async taskKey(client: string, key: string): Promise<{ name: string; body_hash: string; reply: string } | undefined> {
    return this.sql('SELECT name, body_hash, reply FROM task_keys WHERE client = ? AND idem_key = ?').get(client, key) as
      { name: string; body_hash: string; reply: string } | undefined;
  }

  async saveTaskKey(client: string, key: string, name: string, bodyHash: string, reply: unknown, now: number): Promise<void> {
    this.sql('INSERT OR IGNORE INTO task_keys (client, idem_key, name, body_hash, reply, created_at) VALUES (?, ?, ?, ?, ?, ?)').run(
      client,
      key,
      name,
      bodyHash,
      JSON.stringify(reply ?? null),
      now,
    );
  }

  /** Every row, for `migrate-store` (read in one transaction). */
  dump(): StoreDump {
    return this.db.transaction((): StoreDump => ({
      clients: this.db.prepare('SELECT * FROM clients ORDER BY name').all() as StoreDump['clients'],
      endpoints: this.db.prepare('SELECT * FROM endpoints ORDER BY seq').all() as StoreDump['endpoints'],
      cursors: this.db.prepare('SELECT * FROM cursors ORDER BY endpoint_seq, app').all() as StoreDump['cursors'],
      deliveries: this.db.prepare('SELECT * FROM deliveries ORDER BY seq').all() as StoreDump['deliveries'],
      task_keys: this.db.prepare('SELECT * FROM task_keys ORDER BY client, idem_key').all() as StoreDump['task_keys'],
      outbox: this.db.prepare('SELECT pos, name, payload, tid FROM outbox WHERE app = ? ORDER BY pos').all(OWN_APP) as StoreDump['outbox'],
      outbox_head: (this.db.prepare('SELECT pos FROM outbox_head WHERE app = ?').pluck().get(OWN_APP) as number | undefined) ?? null,
    }))();
  }
}
