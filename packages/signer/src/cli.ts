#!/usr/bin/env node
import { existsSync } from 'node:fs';

import { loadConfigOrExit, maskUrlCredentials } from '@steem-bot/config';

import { storeFile } from './app';
import { migrateToPostgres } from './migrate-store';
import { PostgresSignerStore } from './store-postgres';
import { SqliteSignerStore } from './store-sqlite';

const USAGE = `usage: npm run signer -- <command>
  migrate-store   copy DATA_DIR/signer.sqlite (actions with every transaction signed for them) into an
                  empty PostgreSQL store (STORE=postgres, DATABASE_URL; every signer stopped); the SQLite
                  file is then marked as moved and a signer refuses to run on it`;

function fail(message: string, code = 1): never {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

const [command] = process.argv.slice(2);
const config = loadConfigOrExit({ sections: ['signer', 'store'], app: 'signer' });
const out = (text: string): boolean => process.stdout.write(`${text}\n`);

/** `npm run signer -- migrate-store`: the single-machine signer's SQLite file into PostgreSQL. */
async function migrateStore(): Promise<void> {
  if (config.STORE !== 'postgres' || !config.DATABASE_URL)
    fail('migrate-store copies into PostgreSQL: set STORE=postgres and DATABASE_URL', 78);
  const file = storeFile(config.DATA_DIR);
  if (!existsSync(file)) fail(`no ${file}: nothing to migrate (DATA_DIR is where the signer ran)`);
  const source = new SqliteSignerStore(file);
  const target = await PostgresSignerStore.open({ url: config.DATABASE_URL, schema: config.DATABASE_SCHEMA });
  const where = `${maskUrlCredentials(config.DATABASE_URL)} schema ${config.DATABASE_SCHEMA}`;
  try {
    const n = await migrateToPostgres(source, target, where);
    out(
      `copied ${n.actions} actions (${n.open} open) with the ${n.transactions} transactions signed for them and ${n.unpublished} outcome events ` +
        `not yet published from ${file} into ${where}; ${file} is marked as moved: start the signer with STORE=postgres`,
    );
  } finally {
    await source.close();
    await target.close();
  }
}

async function main(): Promise<void> {
  if (command === 'migrate-store') return migrateStore();
  fail(USAGE, 64);
}

main().catch((err: unknown) => fail(err instanceof Error ? err.message : String(err)));
