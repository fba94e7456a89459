#!/usr/bin/env node
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { loadConfigOrExit } from '@steem-bot/config';

import { BotStore } from './store';

const USAGE = `usage: npm run bot -- <command>
  dead NAME          list the dead letters of bot NAME
  replay NAME ID     run dead letter ID of bot NAME again (in the running bot, or at its next start)
  checkpoint NAME    print the bot's checkpoint (last op position fully handled)`;

function fail(message: string, code = 1): never {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

async function main(argv: string[]): Promise<void> {
  const [command, name, id] = argv;
  if (!command || !name || !['dead', 'replay', 'checkpoint'].includes(command)) fail(USAGE, 64);
  const config = loadConfigOrExit();
  const file = join(config.DATA_DIR, `bot-${name}.sqlite`);
  if (!existsSync(file)) fail(`no store for bot "${name}" (${file}); has it ever run?`);
  const store = new BotStore(file);
  try {
    if (command === 'checkpoint') {
      process.stdout.write(`${store.checkpoint() ?? 'none'}\n`);
    } else if (command === 'dead') {
      const letters = store.deadLetters();
      if (letters.length === 0) process.stdout.write(`bot ${name} has no dead letters\n`);
      for (const l of letters) {
        process.stdout.write(
          `#${l.id}  ${l.state.padEnd(8)}  ${l.name} at ${l.position}  tid ${l.tid}  ${l.attempts} tries  ${new Date(l.created_at).toISOString()}\n    ${l.error}\n`,
        );
      }
    } else {
      const n = Number(id);
      if (!Number.isSafeInteger(n)) fail(USAGE, 64);
      const letter = store.deadLetter(n);
      if (!letter) fail(`bot ${name} has no dead letter #${n}`);
      if (!store.requestReplay(n)) fail(`dead letter #${n} is ${letter.state}, not dead`);
      process.stdout.write(`dead letter #${n} queued for replay; waiting for bot ${name}...\n`);
      const deadline = Date.now() + 30_000;
      for (;;) {
        const now = store.deadLetter(n);
        if (now?.state === 'replayed') return void process.stdout.write(`#${n} replayed: the handler succeeded\n`);
        if (now?.state === 'dead') fail(`#${n} failed again: ${now.error}`);
        if (Date.now() > deadline) return void process.stdout.write(`bot ${name} has not run it yet; it will at its next start\n`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  } finally {
    store.close();
  }
}

void main(process.argv.slice(2));
