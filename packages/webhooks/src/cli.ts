#!/usr/bin/env node
import { existsSync } from 'node:fs';

import { loadConfigOrExit } from '@steem-bot/config';

import { openWebhookStore, storeFile } from './app';
import { addClient, grantedTasks, grantTask, ownedEvents, ownEvent } from './clients';
import { importDump } from './migrate-store';
import type { WebhookStore } from './store';
import { PostgresWebhookStore } from './store-postgres';
import { SqliteWebhookStore } from './store-sqlite';

const USAGE = `usage: npm run webhooks -- <command>
  clients add NAME [--events a.b,c.d]   create a REST client; prints its token (once); --events: types it owns and may post
  clients list                          list clients, their posted types and granted tasks
  clients revoke NAME                   revoke a client's token (its name is never reused)
  clients grant NAME TASK               let a client send a task, the catalogue's or a bot's own (POST /v1/tasks/TASK)
  clients own NAME TYPE                 let a client post events of TYPE (POST /v1/events/TYPE)
  migrate-store                         copy DATA_DIR/webhooks.sqlite into the empty PostgreSQL store (STORE=postgres)`;

function fail(message: string, code = 1): never {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

const [command, sub, name, arg, value] = process.argv.slice(2);
const config = loadConfigOrExit({ sections: ['webhooks', 'store'], app: 'webhooks' });
const out = (text: string): boolean => process.stdout.write(`${text}\n`);

/** Copy the SQLite file into PostgreSQL (run with the webhooks app stopped). */
async function migrateStore(): Promise<void> {
  if (config.STORE !== 'postgres' || !config.DATABASE_URL)
    fail('migrate-store copies into PostgreSQL: set STORE=postgres and DATABASE_URL');
  const file = storeFile(config.DATA_DIR);
  if (!existsSync(file)) fail(`no SQLite store at ${file}`);
  const from = new SqliteWebhookStore(file);
  const dump = from.dump();
  await from.close();
  const to = await PostgresWebhookStore.open({ url: config.DATABASE_URL, schema: config.DATABASE_SCHEMA });
  try {
    await importDump(to, dump);
  } finally {
    await to.close();
  }
  out(
    `copied ${dump.clients.length} clients, ${dump.endpoints.length} endpoints, ${dump.cursors.length} cursors, ` +
      `${dump.deliveries.length} attempt log rows, ${dump.task_keys.length} task keys and ${dump.outbox.length} own events not yet relayed ` +
      `into PostgreSQL (schema ${config.DATABASE_SCHEMA}); ${file} is left as it was`,
  );
}

async function main(): Promise<void> {
  if (command === 'migrate-store') return migrateStore();
  const store = await openWebhookStore(config);
  try {
    await run(store);
  } finally {
    await store.close();
  }
}

async function run(store: WebhookStore): Promise<void> {
  if (command === 'clients' && sub === 'add' && name) {
    const events = arg === '--events' && value ? value.split(',').map((s) => s.trim()) : [];
    const { token } = await addClient(store, name, events);
    out(`client ${name} created. Its token is shown only now; keep it secret:\n\n  ${token}`);
  } else if (command === 'clients' && sub === 'list') {
    for (const c of await store.clients()) {
      out(
        `${c.name.padEnd(24)} ${c.revoked_at ? `revoked ${new Date(c.revoked_at).toISOString()}` : 'active'}  events: ${ownedEvents(c).join(',') || '-'}  tasks: ${grantedTasks(c).join(',') || '-'}`,
      );
    }
  } else if (command === 'clients' && sub === 'revoke' && name) {
    if (!(await store.revokeClient(name, Date.now()))) fail(`no active client ${name}`);
    out(`client ${name} revoked`);
  } else if (command === 'clients' && sub === 'grant' && name && arg) {
    await grantTask(store, name, arg);
    out(`client ${name} may send ${arg}`);
  } else if (command === 'clients' && sub === 'own' && name && arg) {
    await ownEvent(store, name, arg);
    out(`client ${name} may post ${arg}`);
  } else {
    fail(USAGE, 64);
  }
}

main().catch((err: unknown) => fail(err instanceof Error ? err.message : String(err)));
