#!/usr/bin/env node
import { existsSync } from 'node:fs';

import { loadConfigOrExit } from '@steem-bot/config';

import { importLegacyState } from './legacy';
import { migrateBotStore } from './migrate';
import { botStoreFile, openBotStore } from './open-store';
import type { BotStore } from './store';
import { PostgresBotStore } from './store-postgres';
import { SqliteBotStore } from './store-sqlite';

const USAGE = `usage: npm run bot -- <command>
  dead NAME            list the dead letters of bot NAME
  replay NAME ID       run dead letter ID of bot NAME again (in the running bot, or at its next start)
  checkpoint NAME      print the bot's checkpoint (last op position fully handled)
  migrate-store NAME   copy DATA_DIR/bot-NAME.sqlite into PostgreSQL (STORE=postgres, DATABASE_URL), the bot stopped
The store is where STORE says: DATA_DIR/bot-NAME.sqlite, or PostgreSQL.`;

function fail(message: string, code = 1): never {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

async function main(argv: string[]): Promise<void> {
  const [command, name, id] = argv;
  if (!command || !name || !['dead', 'replay', 'checkpoint', 'migrate-store'].includes(command)) fail(USAGE, 64);
  const config = loadConfigOrExit({ sections: ['store'] });
  const file = botStoreFile(config.DATA_DIR, name);
  if (command === 'migrate-store') {
    if (config.STORE !== 'postgres' || !config.DATABASE_URL)
      fail('migrate-store copies into PostgreSQL: set STORE=postgres and DATABASE_URL', 78);
    if (!existsSync(file)) fail(`no ${file}: nothing to migrate (DATA_DIR is where the bot ran)`);
    const source = new SqliteBotStore(file);
    importLegacyState(source.file, name); // a file from before ctx.kv: its own tables become its state first
    const target = await PostgresBotStore.open({ url: config.DATABASE_URL, schema: config.DATABASE_SCHEMA, bot: name });
    try {
      const n = await migrateBotStore(source, target);
      process.stdout.write(
        `bot ${name}: checkpoint ${n.checkpoint ?? 'none'}, ${n.deadLetters} dead letters, ${n.state} state keys copied into schema ${config.DATABASE_SCHEMA}\n`,
      );
    } finally {
      await source.close();
      await target.close();
    }
    return;
  }
  if (config.STORE === 'sqlite' && !existsSync(file)) fail(`no store for bot "${name}" (${file}); has it ever run?`);
  const store = await openBotStore(config, name);
  try {
    await run(store, command, name, id);
  } finally {
    await store.close();
  }
}

async function run(store: BotStore, command: string, name: string, id: string | undefined): Promise<void> {
  if (command === 'checkpoint') {
    process.stdout.write(`${(await store.checkpoint()) ?? 'none'}\n`);
  } else if (command === 'dead') {
    const letters = await store.deadLetters();
    if (letters.length === 0) process.stdout.write(`bot ${name} has no dead letters\n`);
    for (const l of letters) {
      process.stdout.write(
        `#${l.id}  ${l.state.padEnd(8)}  ${l.name} at ${l.position}  tid ${l.tid}  ${l.attempts} tries  ${new Date(l.created_at).toISOString()}\n    ${l.error}\n`,
      );
    }
  } else {
    const n = Number(id);
    if (!Number.isSafeInteger(n)) fail(USAGE, 64);
    const letter = await store.deadLetter(n);
    if (!letter) fail(`bot ${name} has no dead letter #${n}`);
    if (!(await store.requestReplay(n))) fail(`dead letter #${n} is ${letter.state}, not dead`);
    process.stdout.write(`dead letter #${n} queued for replay; waiting for bot ${name}...\n`);
    const deadline = Date.now() + 30_000;
    for (;;) {
      const now = await store.deadLetter(n);
      if (now?.state === 'replayed') return void process.stdout.write(`#${n} replayed: the handler succeeded\n`);
      if (now?.state === 'dead') fail(`#${n} failed again: ${now.error}`);
      if (Date.now() > deadline) return void process.stdout.write(`bot ${name} has not run it yet; it will at its next start\n`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

main(process.argv.slice(2)).catch((err: unknown) => fail(`${(err as Error).message ?? String(err)}`));
