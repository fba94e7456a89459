#!/usr/bin/env node
import { existsSync } from 'node:fs';

import { loadConfigOrExit } from '@steem-bot/config';

import { addClient } from './clients';
import { migrateToPostgres } from './migrate';
import { openMailerStore, storeFile } from './open-store';
import { MailStore } from './store';
import { PostgresMailerStore } from './store-postgres';

const USAGE = `usage: npm run mailer -- <command>
  clients add NAME [--from a@x.org,b@x.org]   create a REST client; prints its token (once) and signing secret
  clients list                                list clients
  clients revoke NAME                         revoke a client's token (the name is never reused)
  retry ID                                    queue a dead message again (the recovery hook)
  counts                                      messages per status
  migrate-store                               copy DATA_DIR/mailer.sqlite into an empty PostgreSQL store
                                              (STORE=postgres, DATABASE_URL; every mailer process stopped)`;

function fail(message: string, code = 1): never {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

const [command, sub, name, flag, value] = process.argv.slice(2);
const config = loadConfigOrExit();
const out = (text: string): boolean => process.stdout.write(`${text}\n`);

/** `npm run migrate-store`: the single-machine mailer's SQLite file into PostgreSQL. */
async function migrateStore(): Promise<void> {
  if (config.STORE !== 'postgres' || !config.DATABASE_URL)
    fail('migrate-store copies into PostgreSQL: set STORE=postgres and DATABASE_URL', 78);
  const file = storeFile(config.DATA_DIR);
  if (!existsSync(file)) fail(`no ${file}: nothing to migrate (DATA_DIR is where the mailer ran)`);
  const source = new MailStore(file);
  const target = await PostgresMailerStore.open({ url: config.DATABASE_URL, schema: config.DATABASE_SCHEMA });
  try {
    const n = await migrateToPostgres(source, target);
    out(
      `copied ${n.clients} clients, ${n.messages} messages (${n.attempts} attempts), ${n.keys} idempotency keys and ${n.events} events not yet published ` +
        `from ${file} into schema ${config.DATABASE_SCHEMA}; start the mailer with STORE=postgres`,
    );
  } finally {
    source.close();
    await target.close();
  }
}

async function main(): Promise<void> {
  if (command === 'migrate-store') return migrateStore();
  const store = await openMailerStore(config, 'cli');
  try {
    if (command === 'clients' && sub === 'add' && name) {
      const from = flag === '--from' && value ? value.split(',').map((s) => s.trim()) : undefined;
      const { token, secret } = await addClient(store, name, from);
      out(`client ${name} created. Its token is shown only now; keep it secret:\n\n  ${token}\n`);
      out(`check_url requests are signed with this secret (Standard Webhooks, HMAC-SHA256):\n\n  ${secret}`);
    } else if (command === 'clients' && sub === 'list') {
      for (const c of await store.clients()) {
        out(
          `${c.name.padEnd(24)} ${c.revoked_at ? `revoked ${new Date(c.revoked_at).toISOString()}` : 'active'}  from: ${c.allowed_from ?? config.MAILER_FROM}`,
        );
      }
    } else if (command === 'clients' && sub === 'revoke' && name) {
      if (!(await store.revokeClient(name, Date.now()))) fail(`no active client ${name}`);
      out(`client ${name} revoked`);
    } else if (command === 'retry' && sub) {
      if (!(await store.retry(sub, Date.now()))) fail(`no dead message ${sub}`);
      out(`${sub} queued again`);
    } else if (command === 'counts') {
      out(JSON.stringify(await store.counts()));
    } else {
      fail(USAGE, 64);
    }
  } finally {
    await store.close();
  }
}

main().catch((err: unknown) => fail(err instanceof Error ? err.message : String(err)));
