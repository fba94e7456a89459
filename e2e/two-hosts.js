#!/usr/bin/env node
// `npm run test:two-hosts`: the system split across two "hosts" (two PM2 instances, each with its
// own PM2_HOME, DATA_DIR and SOCKET_DIR, sharing no file), which share only RabbitMQ (a private
// vhost of TEST_AMQP_URL) and PostgreSQL (a private database on TEST_DATABASE_URL's server).
// Host A: broadcaster, mailer-api, clock-1, new-posts, watcher, signer. Host B: broadcaster,
// mailer-worker, clock-2, digest, tipper, signer (scripts/system.js HOST_ROLES): the broadcaster
// and the signer (live, against the devnode) are active on one host, standing by on the other.
// The devnode and the SMTP sink stand for the outside world (a Steem node and a mail server) and
// run here, so that they stay up while host A is down.
// 3,000 blocks are replayed while random apps on both hosts are SIGKILLed, the broker's
// connections closed and one random app's database connections terminated; part way, all of host A is
// stopped for 30 s and started again. Then every op must have been handled by every bot, every
// email sent once, every clock tick fired once and every tipper payment be on chain once.
'use strict';
const { randomBytes } = require('node:crypto');
const { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');

const { PostgresBotStore } = require('@steem-bot/bot');
const { actionFor } = require('@steem-bot/bot-tipper');
const { appliedPosition } = require('@steem-bot/config');
const { condenserOp, DevNode, SmtpSink } = require('@steem-bot/devnode');
const { Client } = require('pg');

const { HOST_ROLES, ecosystem } = require('../scripts/system');
const lib = require('./chaos-lib');

const { FIRST, say, sleep, until } = lib;
const SYNTHETIC = Number(process.env.TWO_HOSTS_BLOCKS ?? 2000); // after the 1,000 real ones: 3,000 blocks
const INTERVAL_MS = 10;
const KILL_EVERY_MS = 3000;
const OUTAGE_MS = 30_000;
const SEED = Number(process.env.CHAOS_SEED ?? Date.now() % 100000);
/** devnode's documented test WIF: every devnode account holds it. */
const DEVNODE_TEST_KEY = '5JufocMGFc1KCxbsVba9MHyi5XfFd1CCdzXjFKGvsSstRP6e4h3';
const TIPPER = { account: 'alice', mode: 'pay', amount: '0.001 STEEM' };
/** The apps on both hosts: one active, the other its standby (waiting on a PostgreSQL lock, not ready). */
const STANDBY = ['broadcaster', 'signer'];
const BOT_HOST = { 'new-posts': 'a', watcher: 'a', digest: 'b', tipper: 'b' };

const amqp = process.env.TEST_AMQP_URL;
const pgUrl = process.env.TEST_DATABASE_URL;
if (!amqp || !pgUrl) {
  say('two-hosts: TEST_AMQP_URL and TEST_DATABASE_URL must name a RabbitMQ and a PostgreSQL server');
  process.exit(1);
}

const dir = mkdtempSync(join(tmpdir(), 'two-hosts-'));
const rabbit = require('./chaos-rabbitmq').setup(true);
const database = `two_hosts_${process.pid}_${randomBytes(3).toString('hex')}`;
const databaseUrl = (() => {
  const u = new URL(pgUrl);
  u.pathname = `/${database}`;
  return u.toString();
})();
const random = lib.randomFrom(SEED);

/** A client of the run's database (or of the server's own, to create and drop it). */
async function sql(text, params = [], url = databaseUrl) {
  const client = new Client({ connectionString: url, options: '-c search_path=steembot' });
  await client.connect();
  try {
    return (await client.query(text, params)).rows;
  } finally {
    await client.end();
  }
}

function host(name, system) {
  const h = lib.pm2Host(join(dir, name, 'pm2'));
  const apps = system.apps.filter((a) => HOST_ROLES[name].includes(a.name));
  const file = join(dir, name, 'ecosystem.json');
  mkdirSync(join(dir, name), { recursive: true });
  writeFileSync(file, JSON.stringify({ apps }));
  return { ...h, name, apps, file, start: () => h.pm2('start', file) };
}

/** The bots' checkpoints, in PostgreSQL with STORE=postgres: bot -> position. */
async function botCheckpoints() {
  const rows = await sql('SELECT bot, position::text AS position FROM bot_checkpoints').catch(() => []); // none before the first bot started
  return new Map(rows.map((r) => [r.bot, Number(r.position)]));
}

/** The tipper's payments the replayed range calls for (memo -> 0), one per first mention of @alice in a post. */
function tipperExpectations(node, last) {
  const memos = new Map();
  const seen = new Set();
  for (let n = FIRST; n <= last; n++)
    for (const trx of node.chain.block(n).transactions)
      for (const op of trx.operations) {
        const [name, v] = condenserOp(op);
        if (name !== 'comment') continue;
        const key = `${v.author}/${v.permlink}`;
        const action = actionFor(v, TIPPER);
        if (action && !seen.has(key)) memos.set(action.pay.memo, 0);
        seen.add(key);
      }
  return memos;
}

/** Counts the tipper's payments on chain (from alice, with a tipper memo) as blocks come; the last block holding one. */
function tipperOnChain(node, memos) {
  const got = new Map([...memos.keys()].map((m) => [m, 0]));
  const seen = { got, lastBlock: FIRST, scanned: FIRST - 1 };
  return () => {
    for (let n = seen.scanned + 1; n <= node.chain.head(); n++, seen.scanned++)
      for (const trx of node.chain.block(n).transactions)
        for (const op of trx.operations) {
          const [name, v] = condenserOp(op);
          if (name === 'transfer' && v.from === TIPPER.account && v.memo.startsWith('Thanks for mentioning')) {
            got.set(v.memo, (got.get(v.memo) ?? 0) + 1);
            seen.lastBlock = n;
          }
        }
    return seen;
  };
}

async function main() {
  say(
    `two-hosts: seed ${SEED}, ${1000 + SYNTHETIC} blocks, one every ${INTERVAL_MS} ms, a SIGKILL every ${KILL_EVERY_MS} ms, host A stopped for ${OUTAGE_MS / 1000} s`,
  );
  await sql(`CREATE DATABASE ${database}`, [], pgUrl);
  const node = await DevNode.start({
    intervalMs: INTERVAL_MS,
    initialBlocks: 1000,
    synthetic: SYNTHETIC,
    // The chain goes on (empty) so that payments signed after the last replayed block get a block.
    emptyTail: 100_000,
    opsPerBlock: [5, 20],
    libDistance: 0,
    seed: 7,
  });
  const target = node.chain.lastWithOps;
  const sink = await SmtpSink.start({ dir: join(dir, 'smtp-sink') });
  const keysFile = join(dir, 'signer.keys.json');
  writeFileSync(keysFile, JSON.stringify({ alice: { posting: DEVNODE_TEST_KEY, active: DEVNODE_TEST_KEY } }), { mode: 0o600 });
  chmodSync(keysFile, 0o600);
  const schedules = join(dir, 'schedules.json');
  writeFileSync(
    schedules,
    JSON.stringify({
      schedules: [{ id: 'chaos-digest', cron: '*/2 * * * * *', task: 'digest.report.send', overlap: 'allow', expiry_ms: 300_000 }],
    }),
  );
  const system = (name) =>
    ecosystem({
      dir: join(dir, name),
      devnodePort: Number(new URL(node.url).port),
      smtpPort: sink.port,
      mailerPort: 0,
      webhooksPort: 0,
      schedules,
      env: {
        ...lib.CHAOS_ENV,
        STORE: 'postgres',
        DATABASE_URL: databaseUrl,
        ...rabbit.env,
        SIGNER_LIVE: '1',
        SIGNER_KEYS_FILE: keysFile,
        TIPPER_ACCOUNT: TIPPER.account,
        TIPPER_MODE: TIPPER.mode,
        TIPPER_AMOUNT: TIPPER.amount,
      },
    });
  const hosts = { a: host('a', system('a')), b: host('b', system('b')) };
  // The bots have run before: they resume just before the first replayed block.
  for (const bot of Object.keys(BOT_HOST)) {
    const store = await PostgresBotStore.open({ url: databaseUrl, schema: 'steembot', bot });
    await store.saveCheckpoint(appliedPosition(FIRST - 1));
    await store.close();
  }
  hosts.a.start();
  hosts.b.start();
  const started = Date.now();
  const emailEvents = lib.watchEmailEvents({ ...rabbit.env, DATA_DIR: join(dir, 'subscriber') });

  const kills = { a: new Map(), b: new Map() };
  const terminated = new Map(); // application_name -> connections terminated
  let outage;
  const bots = Object.keys(BOT_HOST);
  const progress = async () => {
    const at = await botCheckpoints();
    return Math.min(...bots.map((b) => at.get(b) ?? 0));
  };
  const chaosRound = async (names, spare = []) => {
    await sleep(KILL_EVERY_MS);
    for (const h of names) {
      // An app PM2 gave up on (exit 78: a configuration error) will not come back: stop here.
      const stopped = hosts[h].jlist().filter((a) => ['stopped', 'errored'].includes(a.pm2_env.status));
      if (stopped.length > 0)
        throw new Error(`host ${h}: ${stopped.map((a) => `${a.name} ${a.pm2_env.status}`).join(', ')}; see ${hosts[h].outLog('')}`);
    }
    rabbit.chaos();
    if (random(2) === 0) {
      // Every connection of one application (`steem-bot/<app>`, on both hosts): its pool, its
      // LISTEN or its lock connection. A lock holder then exits at once and PM2 restarts it.
      const apps = await sql(
        "SELECT DISTINCT application_name AS app FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE 'steem-bot/%' ORDER BY 1",
        [database],
      );
      if (apps.length > 0) {
        const { app } = apps[random(apps.length)];
        const rows = await sql(
          'SELECT COUNT(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = $2',
          [database, app],
        );
        terminated.set(app, (terminated.get(app) ?? 0) + rows[0].n);
      }
    }
    const h = names[random(names.length)];
    const victims = HOST_ROLES[h].filter((v) => !spare.includes(v));
    const victim = victims[random(victims.length)];
    if (lib.kill(hosts[h], victim)) kills[h].set(victim, (kills[h].get(victim) ?? 0) + 1);
  };
  while ((await progress()) < appliedPosition(target)) {
    if (!outage && (await progress()) >= appliedPosition(FIRST + 1200)) {
      // All of host A goes away (its broadcaster and signer too: B's standbys take over), B carries
      // on. Its clock is spared meanwhile: with no clock running a tick is skipped by design
      // (`missed: skip`); the test is that one clock fires every tick while the other host is away.
      const at = { digest: (await botCheckpoints()).get('digest'), time: Date.now() };
      hosts.a.pm2('stop', 'all');
      say(`host A stopped at block ${Math.floor((await progress()) / 1e6)}`);
      for (const end = Date.now() + OUTAGE_MS; Date.now() < end;) await chaosRound(['b'], ['clock-2']);
      outage = { digestBlocks: Math.floor(((await botCheckpoints()).get('digest') - at.digest) / 1e6), ms: Date.now() - at.time };
      hosts.a.pm2('start', hosts.a.file);
      say(`host A started again after ${Math.round(outage.ms / 1000)} s; meanwhile the digest on B handled ${outage.digestBlocks} blocks`);
    }
    await chaosRound(['a', 'b']);
    if (Date.now() - started > 12 * 60_000) throw new Error('the replay did not finish within 12 minutes');
  }
  const killsDone = Date.now();
  say(`replay done in ${Math.round((killsDone - started) / 1000)} s; letting the payments, the mail and the clock settle`);

  // Every payment the mentions call for reaches a block; then every bot handles the blocks up to it.
  const memos = tipperExpectations(node, target);
  const scan = tipperOnChain(node, memos);
  await until('every tipper payment on chain', 180_000, () => [...scan().got.values()].every((n) => n > 0)).catch(() => undefined);
  const onChain = scan();
  const settled = Math.max(target, onChain.lastBlock);
  await until('the bots to handle the blocks of the payments', 120_000, async () => (await progress()) >= appliedPosition(settled));
  await until('every queued email to be sent', 120_000, async () => {
    const rows = await sql("SELECT COUNT(*)::int AS n FROM messages WHERE status NOT IN ('sent', 'dead', 'skipped', 'cancelled')");
    return rows[0].n === 0;
  });
  await sleep(6_000); // ticks of the last seconds reach the digest
  // No tick after this: each tick acknowledged so far must have its own report among the emails.
  hosts.a.pm2('stop', 'clock-1');
  hosts.b.pm2('stop', 'clock-2');
  // The rest of the digest's counts, in one last report (no op comes after `settled`).
  const final = await emailEvents.bus.sendByName('digest.report.send', { period: 'final' }, { idempotencyKey: `two-hosts-final-${SEED}` });
  await until('every queued email to be sent', 120_000, async () => {
    const rows = await sql("SELECT COUNT(*)::int AS n FROM messages WHERE status NOT IN ('sent', 'dead', 'skipped', 'cancelled')");
    return rows[0].n === 0;
  });
  const events = await lib.settleEmailEvents(emailEvents, () => sql('SELECT id, status FROM messages'));
  await emailEvents.close();

  // Figures.
  const want = lib.expectations(node, settled);
  const posts = lib.newPostsCheck(hosts.a.outLog('new-posts'), want);
  const mails = sink.messages;
  const watcher = lib.watcherCheck(mails, want);
  const digest = lib.digestDuplicates(mails);
  const reports = new Map(digest.mails.map((m) => [m.headers['x-steem-bot-message'], Number(/: (\d+) ops$/.exec(m.subject)?.[1])]));
  const counted = [...reports.values()].reduce((s, n) => s + n, 0);
  const tickRows = await sql("SELECT tick_time::text AS t, state FROM clock_ticks WHERE schedule_id = 'chaos-digest'");
  const acked = tickRows.filter((r) => r.state === 'acked').length;
  const wanted = [];
  for (let t = Math.ceil((started + 8_000) / 2000) * 2000; t <= killsDone; t += 2000) wanted.push(String(t));
  const ackedTimes = new Set(tickRows.filter((r) => r.state === 'acked').map((r) => r.t));
  const notAcked = wanted.filter((t) => !ackedTimes.has(t));
  const ticksLost = notAcked.length;
  const reportsWithoutTick = reports.size - 1 - acked; // the last one is the final report
  const payments = [...scan().got.values()]; // with any block since: a payment twice would show here
  const paymentsLost = payments.filter((n) => n === 0).length;
  const paymentsTwice = payments.filter((n) => n > 1).length;
  const signer = await sql('SELECT state, COUNT(*)::int AS n FROM signer_actions GROUP BY state ORDER BY state');

  const lines = [];
  const failures = [];
  let restarts = 0;
  let killed = 0;
  for (const h of Object.values(hosts)) {
    const apps = h.jlist();
    restarts += apps.reduce((s, a) => s + a.pm2_env.restart_time, 0);
    killed += [...kills[h.name].values()].reduce((s, n) => s + n, 0);
    // A standby is not ready: PM2 shows it launching, then online once listen_timeout passed.
    const standby = (a) => STANDBY.includes(a.name) && a.pm2_env.status === 'launching';
    const notOnline = apps
      .filter((a) => a.pm2_env.status !== 'online' && !standby(a) && !a.name.startsWith('clock-')) // the clocks were stopped
      .map((a) => `${a.name}:${a.pm2_env.status}`);
    if (notOnline.length > 0) failures.push(`host ${h.name} not online: ${notOnline.join(', ')}`);
    const exits = lib.selfExits(h, apps, kills[h.name]);
    lines.push(
      `host ${h.name.toUpperCase()}   ${apps.length} apps ${notOnline.length === 0 ? 'up' : `(not online: ${notOnline.join(', ')})`}, standby ${
        apps
          .filter(standby)
          .map((a) => a.name)
          .join(', ') || 'none'
      }; ` +
        `kills ${[...kills[h.name]].map(([k, n]) => `${k} ${n}`).join(', ') || 'none'}` +
        (exits.length > 0 ? `; exits by themselves: ${exits.join('; ')}` : ''),
    );
  }
  // One active instance each: exactly one session holds its lock (the standby asks every second).
  const holders = await sql(
    `SELECT a.application_name AS app, COUNT(*)::int AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
     WHERE l.locktype = 'advisory' AND l.granted AND a.datname = current_database() AND a.application_name = ANY($1)
       AND l.objid::bigint = ANY(SELECT hashtext('steembot:' || s)::bigint & 4294967295 FROM unnest($2::text[]) s)
     GROUP BY a.application_name`,
    [STANDBY.map((n) => `steem-bot/${n}`), STANDBY],
  );
  for (const name of STANDBY) {
    const n = holders.find((r) => r.app === `steem-bot/${name}`)?.n ?? 0;
    if (n !== 1) failures.push(`${name}: ${n} instances hold the single-active lock, not 1`);
  }
  say('');
  say(
    `blocks   ${FIRST}-${settled} (${settled - FIRST + 1}, ops up to ${target}), ops ${want.ops}, in ${Math.round((killsDone - started) / 1000)} s`,
  );
  say(
    `chaos    ${killed} SIGKILLs (PM2 restarts ${restarts}), broker connections closed ${rabbit.closes} times, database connections terminated ${[...terminated].map(([a, n]) => `${a.slice('steem-bot/'.length)} ${n}`).join(', ')}`,
  );
  for (const l of lines) say(l);
  say(`outage   host A down ${Math.round(outage.ms / 1000)} s; the digest on host B handled ${outage.digestBlocks} blocks meanwhile`);
  say(posts.line);
  say(
    `digest     ops counted ${counted} of ${want.ops} in ${reports.size} reports (exactly once: lost ${Math.max(0, want.ops - counted)}, duplicates ${Math.max(0, counted - want.ops)}); the final one ${final.ops}`,
  );
  say(watcher.line);
  say(
    `clock      ticks in the window ${wanted.length}, not acknowledged ${ticksLost}${ticksLost > 0 ? ` (${notAcked.map((t) => `${new Date(Number(t)).toISOString()}: ${tickRows.find((r) => r.t === t)?.state ?? 'never claimed'}`).join(', ')})` : ''}; ticks acknowledged ${acked}, digest reports for them ${reports.size - 1}; duplicate digest emails ${digest.dup}`,
  );
  say(lib.emailEventsLine(events));
  say(
    `tipper     payments wanted ${memos.size}, on chain ${payments.filter((n) => n > 0).length}, lost ${paymentsLost}, twice ${paymentsTwice}; signer actions ${signer.map((r) => `${r.state} ${r.n}`).join(', ')}`,
  );
  const failed =
    failures.length > 0 ||
    posts.lost +
      posts.dup +
      watcher.lost +
      watcher.extra +
      ticksLost +
      Math.abs(reportsWithoutTick) +
      digest.dup +
      lib.eventsWrong(events) >
      0 ||
    counted !== want.ops ||
    paymentsLost + paymentsTwice > 0;
  for (const f of failures) say(f);
  say(failed ? 'TWO HOSTS: FAILED' : 'TWO HOSTS: PASSED (0 lost)');
  return { failed, node, sink, hosts };
}

let running;
main()
  .then(async (r) => {
    running = r;
    for (const h of Object.values(r.hosts)) h.pm2('kill');
    await r.node.stop();
    await r.sink.stop();
    await cleanup();
    if (r.failed) say(`(logs left for inspection: ${dir})`);
    else rmSync(dir, { recursive: true, force: true });
    process.exit(r.failed ? 1 : 0);
  })
  .catch(async (err) => {
    process.stderr.write(`two-hosts: ${err.stack ?? err}\n(left for inspection: ${dir})\n`);
    for (const name of ['a', 'b']) {
      try {
        lib.pm2Host(join(dir, name, 'pm2')).pm2('kill');
      } catch {
        // not started
      }
    }
    await cleanup();
    process.exit(1);
  });

async function cleanup() {
  rabbit.cleanup();
  await sql(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`, [], pgUrl).catch((err) =>
    say(`two-hosts: could not drop ${database}: ${err.message}`),
  );
  return running;
}
