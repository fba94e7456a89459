import { AppError } from '@steem-bot/config';

import type { MailStore } from './store';
import type { PostgresMailerStore } from './store-postgres';

/** What `migrateToPostgres` copied. */
export interface MigrationCounts {
  clients: number;
  messages: number;
  attempts: number;
  keys: number;
  events: number;
}

type Row = Record<string, unknown>;

// Columns copied as they are (PostgreSQL adds `checked`, derived from the request).
const MESSAGE_COLUMNS = [
  'seq',
  'id',
  'client',
  'idem_key',
  'body_hash',
  'request',
  'status',
  'send_at',
  'next_attempt_at',
  'attempts',
  'lease_owner',
  'lease_until',
  'message_id',
  'tid',
  'last_error',
  'created_at',
  'finished_at',
] as const;

/**
 * Copy a single-machine mailer (its SQLite file) into an empty PostgreSQL store, in one
 * PostgreSQL transaction: clients (with their token hashes: tokens keep working), every message
 * with its attempts, the idempotency keys, and the `email.*` events not yet relayed. Messages keep
 * their ids and sequence numbers (list cursors stay valid); leases are dropped (a message being sent
 * is due again). Refuses a target that already holds messages or clients (ERR_MAILER_CONFLICT):
 * run it once, with every mailer process stopped. Nothing is written unless all of it is.
 */
export async function migrateToPostgres(source: MailStore, target: PostgresMailerStore): Promise<MigrationCounts> {
  const all = (sql: string): Row[] => source.db.prepare(sql).all() as Row[];
  const clients = all('SELECT * FROM clients ORDER BY name');
  const messages = all('SELECT * FROM messages ORDER BY seq');
  const attempts = all('SELECT message_seq, at, outcome, error, duration_ms FROM attempts ORDER BY rowid');
  const keys = all('SELECT * FROM idempotency_keys ORDER BY created_at');
  const events = all('SELECT * FROM outbox ORDER BY app, pos');
  const heads = all('SELECT * FROM outbox_head');

  await target.db.transaction(async (c) => {
    // Nothing else writes while we copy; a second run finds the rows and stops.
    await c.query('LOCK TABLE clients, messages, attempts, idempotency_keys, outbox, outbox_head IN EXCLUSIVE MODE');
    const { rows } = await c.query<{ n: number }>('SELECT (SELECT COUNT(*) FROM messages) + (SELECT COUNT(*) FROM clients) AS n');
    if ((rows[0]?.n ?? 0) > 0) {
      throw new AppError('ERR_MAILER_CONFLICT', 'the PostgreSQL mailer store is not empty: migrate-store copies into an empty one only');
    }
    for (const r of clients) {
      await c.query(
        'INSERT INTO clients (name, token_hash, secret, allowed_from, created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6)',
        [r.name, r.token_hash, r.secret, r.allowed_from, r.created_at, r.revoked_at],
      );
    }
    for (const r of messages) {
      const sending = r.status === 'sending';
      const values = MESSAGE_COLUMNS.map((k) => r[k]);
      // A lease of a process that no longer runs: the message is due again.
      if (sending) {
        values[MESSAGE_COLUMNS.indexOf('status')] = Number(r.attempts) > 0 ? 'retrying' : 'scheduled';
        values[MESSAGE_COLUMNS.indexOf('lease_owner')] = null;
        values[MESSAGE_COLUMNS.indexOf('lease_until')] = null;
      }
      const checked = (JSON.parse(String(r.request)) as { check_url?: string }).check_url !== undefined;
      await c.query(
        `INSERT INTO messages (${MESSAGE_COLUMNS.join(', ')}, checked) VALUES (${MESSAGE_COLUMNS.map((_, i) => `$${i + 1}`).join(', ')}, $${MESSAGE_COLUMNS.length + 1})`,
        [...values, checked],
      );
    }
    // New messages number on from the last one copied.
    await c.query("SELECT setval(pg_get_serial_sequence('messages', 'seq'), GREATEST((SELECT MAX(seq) FROM messages), 1))");
    for (const r of attempts) {
      await c.query('INSERT INTO attempts (message_seq, at, outcome, error, duration_ms) VALUES ($1, $2, $3, $4, $5)', [
        r.message_seq,
        r.at,
        r.outcome,
        r.error,
        r.duration_ms,
      ]);
    }
    for (const r of keys) {
      await c.query(
        'INSERT INTO idempotency_keys (client, key, body_hash, message_id, status, created_at) VALUES ($1, $2, $3, $4, $5, $6)',
        [r.client, r.key, r.body_hash, r.message_id, r.status, r.created_at],
      );
    }
    for (const r of heads) {
      await c.query(
        'INSERT INTO outbox_head (app, pos) VALUES ($1, $2) ON CONFLICT (app) DO UPDATE SET pos = GREATEST(outbox_head.pos, EXCLUDED.pos)',
        [r.app, r.pos],
      );
    }
    for (const r of events) {
      await c.query('INSERT INTO outbox (app, pos, name, payload, tid) VALUES ($1, $2, $3, $4, $5)', [
        r.app,
        r.pos,
        r.name,
        r.payload,
        r.tid,
      ]);
    }
  });
  return { clients: clients.length, messages: messages.length, attempts: attempts.length, keys: keys.length, events: events.length };
}
