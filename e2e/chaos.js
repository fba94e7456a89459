#!/usr/bin/env node
// `npm run test:chaos`: the whole system under the project's PM2 (private PM2_HOME) replays
// thousands of blocks from a devnode while a random app is SIGKILLed every few seconds; then every
// bot must have handled every op, every requested email must have arrived, every clock tick must
// have produced its task, and no app may be left errored. The figures are the last lines.
'use strict';
const { execFileSync } = require('node:child_process');
const { mkdtempSync, rmSync, writeFileSync, existsSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');

const { BotStore } = require('@steem-bot/bot');
const { appliedPosition } = require('@steem-bot/config');
const { condenserOp, DevNode, SmtpSink } = require('@steem-bot/devnode');
const { openDatabase } = require('@steem-bot/store');
const { addClient, SqliteWebhookStore, storeFile } = require('@steem-bot/webhooks');
const { createServer } = require('node:http');
const { Webhook } = require('standardwebhooks');

const { ROOT, ecosystem } = require('../scripts/system');
const lib = require('./chaos-lib');

const { FIRST, say, sleep, until } = lib;
const SYNTHETIC = Number(process.env.CHAOS_BLOCKS ?? 5000);
const INTERVAL_MS = Number(process.env.CHAOS_INTERVAL_MS ?? 10);
const KILL_EVERY_MS = Number(process.env.CHAOS_KILL_EVERY_MS ?? 3000);
const SEED = Number(process.env.CHAOS_SEED ?? Date.now() % 100000);
// The bots that act in this run (the tipper idles: it has no account, the signer holds no key).
const BOTS = ['new-posts', 'watcher', 'digest'];
const VICTIMS = ['broadcaster', 'new-posts', 'watcher', 'digest', 'mailer-api', 'mailer-worker', 'clock-1', 'clock-2', 'webhooks'];

const dir = mkdtempSync(join(tmpdir(), 'chaos-'));
// `--rabbitmq` (or CHAOS_BUS=rabbitmq): the same run with the bus on RabbitMQ (TEST_AMQP_URL, a
// private vhost made and deleted with the local rabbitmqctl), its connections also closed now and then.
const rabbit = require('./chaos-rabbitmq').setup(process.argv.includes('--rabbitmq') || process.env.CHAOS_BUS === 'rabbitmq');
const host = lib.pm2Host(join(dir, 'pm2'), rabbit.env);
const { pm2, jlist } = host;
const random = lib.randomFrom(SEED);

function checkpoint(dataDir, bot) {
  const file = join(dataDir, `bot-${bot}.sqlite`);
  if (!existsSync(file)) return null;
  const store = new BotStore(file);
  try {
    return store.checkpoint();
  } finally {
    store.close();
  }
}

function query(file, sql, ...params) {
  const db = openDatabase(file);
  try {
    return db.prepare(sql).all(...params);
  } finally {
    db.close();
  }
}

// ---- webhooks: one endpoint per kind (a chain op with a filter, an email.* event, a posted event),
// a receiver that verifies and dedupes by webhook-id, and the check that no delivery was lost. ----

/** Before PM2 starts: a client in the webhooks store, the receiver, a fixed port and the app's settings. */
async function webhooksPrepare(dataDir) {
  const store = new SqliteWebhookStore(storeFile(dataDir));
  const { token } = await addClient(store, 'chaos', ['chaos.ping']);
  await store.close();
  const got = { ops: new Map(), mail: new Map(), posted: new Map() };
  const hooks = {}; // kind -> Webhook (its secret)
  let unverified = 0;
  const receiver = createServer((req, res) => {
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', () => {
      const kind = req.url.slice(1);
      try {
        hooks[kind].verify(raw, req.headers);
      } catch {
        unverified++;
        res.writeHead(401).end();
        return;
      }
      const id = req.headers['webhook-id'];
      if (!got[kind].has(id)) got[kind].set(id, JSON.parse(raw));
      res.writeHead(204).end();
    });
  });
  await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
  const port = await new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port: p } = probe.address();
      probe.close(() => resolve(p));
    });
  });
  return {
    token,
    got,
    hooks,
    receiver,
    port,
    unverified: () => unverified,
    api: `http://127.0.0.1:${port}`,
    hook: (kind) => `http://127.0.0.1:${receiver.address().port}/${kind}`,
    env: { WEBHOOKS_ALLOW: '127.0.0.1', WEBHOOKS_RETRY_SCHEDULE_MS: '200,500,1000,2000,5000,5000,5000', WEBHOOKS_RATE_LIMIT: '100000' },
    posted: new Set(),
  };
}

/** A REST call to the webhooks app, retried while it is down or restarting (it is one of the victims). */
async function webhooksCall(w, method, path, body) {
  for (let i = 0; ; i++) {
    try {
      const res = await fetch(w.api + path, {
        method,
        headers: { authorization: `Bearer ${w.token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        ...(body ? { body: JSON.stringify(body) } : {}),
      });
      if (res.status < 500) return { status: res.status, body: await res.json().catch(() => ({})) };
    } catch {
      // down: PM2 restarts it
    }
    if (i > 600) throw new Error(`webhooks ${method} ${path}: no answer for a minute`);
    await sleep(100);
  }
}

/** After PM2 started: the three endpoints, each replayed from the start of what the run produces. */
async function webhooksRegister(w) {
  const endpoints = {
    ops: { events: ['transfer'], filter: { to: 'alice' }, from: FIRST * 1_000_000 },
    mail: { events: ['email.sent'], from: 1 },
    posted: { events: ['chaos.ping'], from: 1 },
  };
  for (const [kind, e] of Object.entries(endpoints)) {
    const put = await webhooksCall(w, 'PUT', `/v1/endpoints/${kind}`, {
      url: w.hook(kind),
      events: e.events,
      ...(e.filter ? { filter: e.filter } : {}),
    });
    if (put.status !== 201) throw new Error(`PUT ${kind}: ${put.status} ${JSON.stringify(put.body)}`);
    w.hooks[kind] = new Webhook(put.body.secret);
    const replay = await webhooksCall(w, 'POST', `/v1/endpoints/${kind}/replay`, { from_position: e.from });
    if (replay.status !== 202) throw new Error(`replay ${kind}: ${replay.status}`);
  }
}

/** Posts chaos.ping {n} every 100 ms while the replay runs; an n counts once acknowledged (202). */
function webhooksPoster(w) {
  let stopped = false;
  const done = (async () => {
    for (let n = 0; !stopped; n++) {
      const res = await webhooksCall(w, 'POST', '/v1/events/chaos.ping', { n });
      if (res.status === 202) w.posted.add(n);
      await sleep(100);
    }
  })();
  return () => ((stopped = true), done);
}

/** Once the rest has settled: every expected delivery arrived (after dedupe by webhook-id). */
async function webhooksCheck(w, node, last, mailerFile) {
  const transfers = [];
  for (let n = FIRST; n <= last; n++) {
    for (const trx of node.chain.block(n).transactions) {
      for (const op of trx.operations) {
        const [name, v] = condenserOp(op);
        if (name === 'transfer' && v.to === 'alice') transfers.push(`${n}|${v.from}|${v.amount}|${v.memo}`);
      }
    }
  }
  const sent = new Set(query(mailerFile, "SELECT id FROM messages WHERE status = 'sent'").map((r) => r.id));
  const opsGot = () => [...w.got.ops.values()].map((b) => `${b.data.block_num}|${b.data.from}|${b.data.amount}|${b.data.memo}`);
  const mailGot = () => new Set([...w.got.mail.values()].map((b) => b.data.id));
  const postedGot = () => new Set([...w.got.posted.values()].map((b) => b.data.n));
  // Transfers compared as multisets: a block may hold two alike.
  const missing = () => {
    const left = new Map();
    for (const k of transfers) left.set(k, (left.get(k) ?? 0) + 1);
    for (const k of opsGot()) left.set(k, (left.get(k) ?? 0) - 1);
    return [...left].filter(([, n]) => n !== 0);
  };
  const lost = () => ({
    ops: missing().reduce((s, [, n]) => s + Math.abs(n), 0),
    mail: [...sent].filter((id) => !mailGot().has(id)).length,
    posted: [...w.posted].filter((n) => !postedGot().has(n)).length,
  });
  await until('every webhook delivery', 120_000, () => Object.values(lost()).every((n) => n === 0)).catch(() => undefined);
  const l = lost();
  if (l.ops > 0) say(`webhooks   transfers not delivered (+) or not expected (-): ${JSON.stringify(missing())}`);
  const inOrder = [...w.got.ops.values()].every((b, i, all) => i === 0 || all[i - 1].position < b.position);
  const disabled = [];
  for (const kind of ['ops', 'mail', 'posted']) {
    const e = await webhooksCall(w, 'GET', `/v1/endpoints/${kind}`);
    if (e.body.disabled) disabled.push(kind);
  }
  const postedDup = w.got.posted.size - postedGot().size; // a 202 lost to a kill: the client posted that n again
  const lines = [
    `webhooks   transfers to alice ${transfers.length}, delivered ${opsGot().length}, lost ${l.ops}${inOrder ? ', in order' : ', OUT OF ORDER'}; ` +
      `email.sent ${sent.size}, delivered ${mailGot().size}, lost ${l.mail}; posted ${w.posted.size} acknowledged, delivered ${postedGot().size}, lost ${l.posted} (re-posted after a lost 202: ${postedDup}); ` +
      `unverified ${w.unverified()}, disabled ${disabled.join(',') || 'none'}`,
  ];
  const failed = l.ops + l.mail + l.posted + w.unverified() + disabled.length > 0 || !inOrder;
  return { lines, failed };
}

async function main() {
  say(
    `chaos: seed ${SEED}, ${SYNTHETIC} synthetic blocks after the 1,000 real ones, one block every ${INTERVAL_MS} ms, a SIGKILL every ${KILL_EVERY_MS} ms`,
  );
  const node = await DevNode.start({
    intervalMs: INTERVAL_MS,
    initialBlocks: 1000,
    synthetic: SYNTHETIC,
    opsPerBlock: [5, 20],
    libDistance: 0,
    seed: 7,
  });
  const sink = await SmtpSink.start({ dir: join(dir, 'smtp-sink') });
  const wh = await webhooksPrepare(join(dir, 'data'));
  const schedules = join(dir, 'schedules.json');
  writeFileSync(
    schedules,
    JSON.stringify({
      schedules: [{ id: 'chaos-digest', cron: '*/2 * * * * *', task: 'digest.report.send', overlap: 'allow', expiry_ms: 300_000 }],
    }),
  );
  const system = ecosystem({
    dir,
    devnodePort: Number(new URL(node.url).port),
    smtpPort: sink.port,
    mailerPort: 0,
    webhooksPort: wh.port,
    schedules,
    env: {
      ...lib.CHAOS_ENV,
      ...rabbit.env,
      ...wh.env,
    },
  });
  const dataDir = system.apps.find((a) => a.name === 'broadcaster').env.DATA_DIR;
  // The bots have run before: they resume just before the first replayed block.
  for (const bot of BOTS) {
    const store = new BotStore(join(dataDir, `bot-${bot}.sqlite`));
    store.saveCheckpoint(appliedPosition(FIRST - 1));
    store.close();
  }
  writeFileSync(join(dir, 'ecosystem.json'), JSON.stringify(system));
  pm2('start', join(dir, 'ecosystem.json'));
  const started = Date.now();
  const emailEvents = lib.watchEmailEvents({
    ...rabbit.env,
    SOCKET_DIR: system.apps.find((a) => a.name === 'mailer-api').env.SOCKET_DIR,
    DATA_DIR: join(dir, 'chaos-subscriber'),
  });
  await webhooksRegister(wh);
  const stopPosting = webhooksPoster(wh);

  const kills = new Map();
  const last = node.chain.last;
  const end = (bot) => (checkpoint(dataDir, bot) ?? 0) >= appliedPosition(last);
  while (!BOTS.every(end)) {
    await sleep(KILL_EVERY_MS);
    rabbit.chaos();
    const victim = VICTIMS[random(VICTIMS.length)];
    if (lib.kill(host, victim)) kills.set(victim, (kills.get(victim) ?? 0) + 1);
    if (Date.now() - started > 10 * 60_000) throw new Error('the replay did not finish within 10 minutes');
  }
  const killsDone = Date.now();
  await stopPosting();
  say(`replay done in ${Math.round((killsDone - started) / 1000)} s; letting the mail and the clock settle`);
  const mailer = join(dataDir, 'mailer.sqlite');
  await until('every queued email to be sent', 120_000, () => {
    const open = query(mailer, "SELECT COUNT(*) AS n FROM messages WHERE status NOT IN ('sent', 'dead', 'skipped', 'cancelled')")[0].n;
    return open === 0;
  });
  await sleep(6_000); // ticks of the last seconds reach the digest
  const events = await lib.settleEmailEvents(emailEvents, () => query(mailer, 'SELECT id, status FROM messages'));
  await emailEvents.close();
  const webhooks = await webhooksCheck(wh, node, last, mailer);

  // Figures.
  const want = lib.expectations(node, last);
  const posts = lib.newPostsCheck(host.outLog('new-posts'), want);
  const mails = sink.messages;
  const watcher = lib.watcherCheck(mails, want);

  const digestDb = join(dataDir, 'bot-digest.sqlite');
  // The digest's state (ctx.kv): one `report:<key>` per report sent, `counts` since the last one.
  const digestState = (where) =>
    query(digestDb, `SELECT key, value FROM state WHERE ${where}`).map((r) => ({ key: r.key, ...JSON.parse(r.value) }));
  const reported = digestState("key LIKE 'report:%'").map((r) => ({ ...r, key: r.key.slice('report:'.length) }));
  const counts = digestState("key = 'counts'")[0]?.types ?? {};
  const counted = reported.reduce((s, r) => s + r.ops, 0) + Object.values(counts).reduce((s, n) => s + n, 0);
  const ticks = [];
  for (let t = Math.ceil((started + 8_000) / 2000) * 2000; t <= killsDone; t += 2000)
    ticks.push(`day:chaos-digest@${new Date(t).toISOString()}`);
  const reportKeys = new Set(reported.map((r) => r.key));
  const ticksLost = ticks.filter((k) => !reportKeys.has(k)).length;
  const digestDup = lib.digestDuplicates(mails).dup;
  const tickRows = query(join(dataDir, 'clock.sqlite'), 'SELECT state, COUNT(*) AS n FROM ticks GROUP BY state');

  // The operator's screen, as a script reads it.
  const status = JSON.parse(
    execFileSync(process.execPath, [join(ROOT, 'scripts/status.js'), '--json'], { env: host.env, encoding: 'utf8' }),
  );
  const apps = jlist();
  const statusOk =
    status.apps.length === apps.length &&
    status.broadcaster.current_block === last &&
    BOTS.every((name) => status.bots.some((b) => b.name === name && b.block === last && b.dead_letters === 0)) &&
    status.bots.every((b) => b.dead_letters === 0) &&
    status.mailer.counts.sent > 0 &&
    status.clock[0]?.id === 'chaos-digest';

  const notOnline = apps.filter((a) => a.pm2_env.status !== 'online').map((a) => `${a.name}:${a.pm2_env.status}`);
  const restarts = apps.reduce((s, a) => s + a.pm2_env.restart_time, 0);
  const totalKills = [...kills.values()].reduce((s, n) => s + n, 0);
  const selfExits = lib.selfExits(host, apps, kills);

  say('');
  say(`blocks   ${FIRST}-${last} (${last - FIRST + 1}), ops ${want.ops}, in ${Math.round((killsDone - started) / 1000)} s`);
  say(`kills    ${totalKills}: ${[...kills].map(([k, n]) => `${k} ${n}`).join(', ')}; PM2 restarts ${restarts}`);
  if (selfExits.length > 0) say(`exits    by themselves: ${selfExits.join('; ')}`);
  say(posts.line);
  say(
    `digest     ops counted ${counted} of ${want.ops} (exactly once: lost ${Math.max(0, want.ops - counted)}, duplicates ${Math.max(0, counted - want.ops)})`,
  );
  say(watcher.line);
  say(
    `clock      ticks in the window ${ticks.length}, without their task ${ticksLost}; claims ${tickRows.map((r) => `${r.state} ${r.n}`).join(', ')}; duplicate digest emails ${digestDup}`,
  );
  say(lib.emailEventsLine(events));
  say(`pm2        ${apps.length} apps, ${notOnline.length === 0 ? 'all online' : `not online: ${notOnline.join(', ')}`}`);
  say(
    `status     ${statusOk ? 'agrees' : `DISAGREES: ${JSON.stringify({ broadcaster: status.broadcaster, bots: status.bots })}`} (broadcaster at ${status.broadcaster.current_block}, bots at ${status.bots.map((b) => `${b.name} ${b.block ?? 'idle'}`).join(', ')})`,
  );
  for (const line of webhooks.lines) say(line);
  const failed =
    webhooks.failed ||
    posts.lost + watcher.lost + ticksLost + Math.abs(want.ops - counted) + watcher.extra + notOnline.length + lib.eventsWrong(events) > 0 ||
    !statusOk;
  if (rabbit.on) say(`rabbitmq   bus on RabbitMQ (vhost ${rabbit.vhost}), all connections closed ${rabbit.closes} times`);
  say(failed ? 'CHAOS: FAILED' : 'CHAOS: PASSED (0 lost)');
  wh.receiver.close();
  return { failed, node, sink };
}

main()
  .then(async ({ failed, node, sink }) => {
    pm2('kill');
    rabbit.cleanup();
    await node.stop();
    await sink.stop();
    rmSync(dir, { recursive: true, force: true });
    process.exit(failed ? 1 : 0);
  })
  .catch((err) => {
    process.stderr.write(`chaos: ${err.stack ?? err}\n(left for inspection: ${dir})\n`);
    try {
      pm2('kill');
    } catch {
      // already gone
    }
    rabbit.cleanup();
    process.exit(1);
  });
