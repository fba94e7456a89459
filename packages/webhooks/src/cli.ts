#!/usr/bin/env node
import { loadConfigOrExit } from '@steem-bot/config';

import { storeFile } from './app';
import { addClient, grantedTasks, grantTask, ownedEvents, ownEvent } from './clients';
import { WebhookStore } from './store';

const USAGE = `usage: npm run webhooks -- <command>
  clients add NAME [--events a.b,c.d]   create a REST client; prints its token (once); --events: types it owns and may post
  clients list                          list clients, their posted types and granted tasks
  clients revoke NAME                   revoke a client's token (its name is never reused)
  clients grant NAME TASK               let a client send a catalogue task (POST /v1/tasks/TASK)
  clients own NAME TYPE                 let a client post events of TYPE (POST /v1/events/TYPE)`;

function fail(message: string, code = 1): never {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

const [command, sub, name, arg, value] = process.argv.slice(2);
const config = loadConfigOrExit({ sections: ['webhooks'], app: 'webhooks' });
const store = new WebhookStore(storeFile(config.DATA_DIR));
const out = (text: string): boolean => process.stdout.write(`${text}\n`);
try {
  if (command === 'clients' && sub === 'add' && name) {
    const events = arg === '--events' && value ? value.split(',').map((s) => s.trim()) : [];
    const { token } = addClient(store, name, events);
    out(`client ${name} created. Its token is shown only now; keep it secret:\n\n  ${token}`);
  } else if (command === 'clients' && sub === 'list') {
    for (const c of store.clients()) {
      out(
        `${c.name.padEnd(24)} ${c.revoked_at ? `revoked ${new Date(c.revoked_at).toISOString()}` : 'active'}  events: ${ownedEvents(c).join(',') || '-'}  tasks: ${grantedTasks(c).join(',') || '-'}`,
      );
    }
  } else if (command === 'clients' && sub === 'revoke' && name) {
    if (!store.revokeClient(name, Date.now())) fail(`no active client ${name}`);
    out(`client ${name} revoked`);
  } else if (command === 'clients' && sub === 'grant' && name && arg) {
    grantTask(store, name, arg);
    out(`client ${name} may send ${arg}`);
  } else if (command === 'clients' && sub === 'own' && name && arg) {
    ownEvent(store, name, arg);
    out(`client ${name} may post ${arg}`);
  } else {
    fail(USAGE, 64);
  }
} catch (err) {
  fail(err instanceof Error ? err.message : String(err));
} finally {
  store.close();
}
