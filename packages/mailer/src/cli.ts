#!/usr/bin/env node
import { loadConfigOrExit } from '@steem-bot/config';

import { addClient } from './clients';
import { openMailerStore } from './open-store';

const USAGE = `usage: npm run mailer -- <command>
  clients add NAME [--from a@x.org,b@x.org]   create a REST client; prints its token (once) and signing secret
  clients list                                list clients
  clients revoke NAME                         revoke a client's token (the name is never reused)
  retry ID                                    queue a dead message again (the recovery hook)
  counts                                      messages per status`;

function fail(message: string, code = 1): never {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

const [command, sub, name, flag, value] = process.argv.slice(2);
const config = loadConfigOrExit();
const out = (text: string): boolean => process.stdout.write(`${text}\n`);

async function main(): Promise<void> {
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
