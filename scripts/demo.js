#!/usr/bin/env node
// `npm run demo`: the whole system under the project's PM2, offline: a devnode replaying the real
// fixture blocks then synthetic ones, its SMTP sink, a webhook sink, the broadcaster, the mailer,
// two clocks, the signer (live against devnode only), the bots, the console and the webhooks app
// with one endpoint (transfers, to the webhook sink).
// `npm run demo:stop` stops and deletes the demo's PM2 apps; var/demo stays.
'use strict';
const { execFileSync } = require('node:child_process');
const { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');

const { BotStore } = require('@steem-bot/bot');
const { appliedPosition } = require('@steem-bot/config');
const { addClient, SqliteWebhookStore, storeFile } = require('@steem-bot/webhooks');

const { ROOT, ecosystem } = require('./system');

const DIR = join(ROOT, 'var', 'demo');
/** devnode's test WIF (packages/devnode/README.md): the demo's only key. */
const DEVNODE_TEST_KEY = '5JufocMGFc1KCxbsVba9MHyi5XfFd1CCdzXjFKGvsSstRP6e4h3';
const FILE = join(DIR, 'ecosystem.json');
const pm2 = (...args) => execFileSync(process.execPath, [join(ROOT, 'node_modules/pm2/bin/pm2'), ...args], { cwd: ROOT, stdio: 'inherit' });

if (process.argv[2] === 'stop') {
  pm2('delete', FILE);
  process.stdout.write(`demo stopped; its data, mail and logs stay in ${DIR} and PM2's log directory\n`);
  process.exit(0);
}

mkdirSync(DIR, { recursive: true, mode: 0o700 });
// The signer broadcasts for real, but only to the demo's devnode, with devnode's documented test
// key (it guards nothing: every devnode account holds it). Never use this key or file elsewhere.
const keysFile = join(DIR, 'signer.keys.json');
writeFileSync(keysFile, `${JSON.stringify({ alice: { posting: DEVNODE_TEST_KEY, active: DEVNODE_TEST_KEY } })}\n`, { mode: 0o600 });
chmodSync(keysFile, 0o600);
const schedules = join(DIR, 'clock.schedules.json');
writeFileSync(
  schedules,
  `${JSON.stringify({ schedules: [{ id: 'demo-digest', cron: '0 * * * * *', task: 'digest.report.send', payload: { period: 'minute' }, overlap: 'skip', missed: 'once' }] }, null, 2)}\n`,
);
const system = ecosystem({
  dir: DIR,
  devnodePort: Number(process.env.DEMO_DEVNODE_PORT ?? 8090),
  smtpPort: Number(process.env.DEMO_SMTP_PORT ?? 2525),
  mailerPort: Number(process.env.DEMO_MAILER_PORT ?? 8025),
  webhooksPort: Number(process.env.DEMO_WEBHOOKS_PORT ?? 8032),
  webhookSinkPort: Number(process.env.DEMO_WEBHOOK_SINK_PORT ?? 8033),
  schedules,
  withDevnode: true,
  // The 1,000 real blocks at once, then a synthetic block every 500 ms.
  devnodeArgs: [
    '--initial-blocks',
    '1000',
    '--interval-ms',
    '500',
    '--synthetic',
    '1000000',
    '--ops-per-block',
    '5-30',
    '--lib-distance',
    '2',
  ],
  // The tipper answers mentions of @alice (synthetic posts mention her now and then) with a reply,
  // which the live signer puts on the devnode's chain and confirms from the broadcaster's stream.
  // The webhook sink is on loopback, which the SSRF guard refuses unless allowed.
  env: { LOG_LEVEL: 'info', SIGNER_LIVE: '1', SIGNER_KEYS_FILE: keysFile, TIPPER_ACCOUNT: 'alice', WEBHOOKS_ALLOW: '127.0.0.1' },
});
// On the first demo run the bots start with the first real block, not with live ops.
const dataDir = system.apps.find((a) => a.name === 'broadcaster').env.DATA_DIR;
for (const bot of system.apps.filter((a) => a.script.startsWith('bots/')).map((a) => a.name)) {
  const store = new BotStore(join(dataDir, `bot-${bot}.sqlite`));
  if (store.checkpoint() === null) store.saveCheckpoint(appliedPosition(999_999));
  store.close();
}
writeFileSync(FILE, `${JSON.stringify(system, null, 2)}\n`);
pm2('start', FILE);

// ---- webhooks: a REST client (its token kept in var/demo, shown only to this script), one
// endpoint for every transfer, on the webhook sink; on its creation, replayed from the first block. ----

/** The demo client's token: created once, kept in var/demo/webhooks.token (mode 0600). */
async function demoToken() {
  const file = join(DIR, 'webhooks.token');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const store = new SqliteWebhookStore(storeFile(dataDir));
  try {
    // a name is never reused: if var/demo lost the token of an earlier client, take a new name
    const name = (await store.client('demo')) ? `demo-${Date.now().toString(36)}` : 'demo';
    const { token } = await addClient(store, name);
    writeFileSync(file, `${token}\n`, { mode: 0o600 });
    return token;
  } finally {
    await store.close();
  }
}

async function demoEndpoint(token) {
  const env = system.apps.find((a) => a.name === 'webhooks').env;
  const api = `http://127.0.0.1:${env.WEBHOOKS_PORT}`;
  const sink = system.apps.find((a) => a.name === 'webhook-sink');
  const call = async (method, path, body) => {
    const res = await fetch(api + path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const json = await res.json().catch(() => ({}));
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
    return { status: res.status, body: json };
  };
  for (
    let i = 0;
    !(await fetch(`${api}/healthz`).then(
      (r) => r.ok,
      () => false,
    ));
    i++
  ) {
    if (i > 60) throw new Error(`the webhooks app did not answer on ${api}`);
    await new Promise((r) => setTimeout(r, 500));
  }
  const url = `http://127.0.0.1:${sink.args[1]}/hook`;
  const put = await call('PUT', '/v1/endpoints/demo-transfers', {
    url,
    events: ['transfer'],
    description: 'every transfer, to the demo webhook sink',
  });
  const { body } = await call('GET', '/v1/endpoints/demo-transfers/secret');
  writeFileSync(join(DIR, 'webhook-sink', 'secret'), `${body.secret}\n`, { mode: 0o600 });
  if (put.status === 201) await call('POST', '/v1/endpoints/demo-transfers/replay', { from_position: 1_000_000 * 1_000_000 });
  process.stdout.write(
    `\nwebhooks: endpoint demo-transfers ${put.status === 201 ? 'registered (replayed from block 1,000,000)' : 'already registered'} -> ${url}\n`,
  );
  // Show deliveries arriving: what the sink receives from now on.
  const file = join(DIR, 'webhook-sink', 'deliveries.jsonl');
  const lines = () => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);
  const before = lines().length;
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline && lines().length < before + 3) await new Promise((r) => setTimeout(r, 500));
  const fresh = lines()
    .slice(before, before + 3)
    .map((l) => JSON.parse(l));
  for (const d of fresh) {
    const op = d.data ?? {};
    process.stdout.write(
      `  received ${d.type} ${op.from} -> ${op.to} ${op.amount} (block ${op.block_num}, ${d.id}, signature ${d.verified ? 'valid' : 'NOT VALID'})\n`,
    );
  }
  if (fresh.length === 0) process.stdout.write('  no delivery yet: see npm run logs (webhooks, webhook-sink)\n');
}

demoToken()
  .then(demoEndpoint)
  .catch((err) => process.stdout.write(`\nwebhooks: the demo endpoint could not be set up: ${err.message}\n`))
  .finally(() =>
    process.stdout.write(`
The demo runs offline: a devnode at http://127.0.0.1:8090 serves the real blocks 1,000,000-1,000,999,
then adds a synthetic block every 500 ms; the SMTP sink keeps every email in ${join(DIR, 'smtp-sink')}.
  npm run logs          new posts, watcher emails queued and sent (one TID from op to email), the digest each minute,
                        the tipper's replies to mentions of @alice signed by the signer and confirmed from the chain
  npm run status        one screen: apps, broadcaster lag, bot checkpoints, mailer counts, next clock fires
  http://127.0.0.1:8031 the console: the same status live, dead letters, TID trace (set CONSOLE_TOKEN for actions)
  webhook sink          every transfer, signed and verified, in ${join(DIR, 'webhook-sink', 'deliveries.jsonl')} (pm2 logs webhook-sink)
  npm run demo:stop     stop it (nothing is deleted)
`),
  );
