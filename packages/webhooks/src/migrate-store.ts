import { OWN_APP, type StoreDump } from './store';
import { ENDPOINT_COLUMNS, type PostgresWebhookStore } from './store-postgres';

const COLUMNS: Record<Exclude<keyof StoreDump, 'outbox_head'>, { table: string; columns: string[] }> = {
  clients: { table: 'webhooks_clients', columns: ['name', 'token_hash', 'owned_events', 'granted_tasks', 'created_at', 'revoked_at'] },
  endpoints: { table: 'webhooks_endpoints', columns: ENDPOINT_COLUMNS.split(',').map((c) => c.trim()) },
  cursors: { table: 'webhooks_cursors', columns: ['endpoint_seq', 'app', 'pos'] },
  deliveries: {
    table: 'webhooks_deliveries',
    columns: ['seq', 'endpoint_seq', 'at', 'type', 'position', 'webhook_id', 'status', 'error', 'duration_ms', 'response'],
  },
  task_keys: { table: 'webhooks_task_keys', columns: ['client', 'idem_key', 'name', 'body_hash', 'reply', 'created_at'] },
  outbox: { table: 'webhooks_outbox', columns: ['pos', 'name', 'payload', 'tid'] },
};

/**
 * Copy a SQLite store's rows into an empty PostgreSQL store, in one transaction (all or nothing):
 * ids (`seq`) kept, so cursors and the attempt log stay with their endpoints; sequences moved past them.
 */
export async function importDump(store: PostgresWebhookStore, dump: StoreDump): Promise<void> {
  await store.withTransaction(async (tx) => {
    const { rows } = await tx.query<{ n: number }>(
      'SELECT (SELECT COUNT(*) FROM webhooks_clients) + (SELECT COUNT(*) FROM webhooks_endpoints) AS n',
    );
    if (Number(rows[0]?.n) > 0)
      throw new Error('the PostgreSQL store already holds clients or endpoints: migrate-store only fills an empty one');
    for (const [key, { table, columns }] of Object.entries(COLUMNS) as Array<
      [keyof typeof COLUMNS, (typeof COLUMNS)[keyof typeof COLUMNS]]
    >) {
      for (const row of dump[key] as Array<Record<string, unknown>>) {
        await tx.query(
          `INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map((_c, i) => `$${i + 1}`).join(', ')})`,
          columns.map((c) => row[c] ?? null),
        );
      }
    }
    if (dump.outbox_head !== null)
      await tx.query('INSERT INTO webhooks_outbox_head (app, pos) VALUES ($1, $2)', [OWN_APP, dump.outbox_head]);
    for (const table of ['webhooks_endpoints', 'webhooks_deliveries'])
      await tx.query(`SELECT setval(pg_get_serial_sequence('${table}', 'seq'), (SELECT COALESCE(MAX(seq), 0) + 1 FROM ${table}), false)`);
  });
}
