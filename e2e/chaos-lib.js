// What the crash tests share: `npm run test:chaos` (one host) and `npm run test:two-hosts`. The
// expectations computed from the devnode's chain, the checks of what the system produced against
// them, and PM2 per host (a private PM2_HOME each).
'use strict';
const { execFileSync } = require('node:child_process');
const { readFileSync } = require('node:fs');
const { join } = require('node:path');

const { createIpcBus } = require('@steem-bot/bus');
const { catalogue, createLogger, loadConfig } = require('@steem-bot/config');
const { emailsFor } = require('@steem-bot/bot-watcher');
const { condenserOp } = require('@steem-bot/devnode');

const { ROOT } = require('../scripts/system');

const FIRST = 1_000_000;
const WATCHED = new Set(['alice', 'bob']);
const PM2 = join(ROOT, 'node_modules', 'pm2', 'bin', 'pm2');

/** The crash tests' settings for every app: short retries, leases and claims, so that kills heal within the run. */
const CHAOS_ENV = {
  LOG_FORMAT: 'json',
  MAILER_RETRY_BASE_MS: '500',
  MAILER_RETRY_MAX_MS: '5000',
  MAILER_LEASE_MS: '4000',
  MAILER_MAX_ATTEMPTS: '50',
  CLOCK_CLAIM_STALE_MS: '3000',
  BUS_TASK_TIMEOUT_MS: '2000',
  BOT_RETRY_BASE_MS: '200',
};

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const say = (text) => process.stdout.write(`${text}\n`);

/** A deterministic random integer in [0, n) (Park-Miller), so a failing run can be replayed by its seed. */
function randomFrom(seed) {
  let rand = seed || 1;
  return (n) => (rand = (rand * 48271) % 2147483647) % n;
}

async function until(what, timeoutMs, predicate) {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(500);
  }
}

/** The project's PM2 with its own PM2_HOME: one "host". */
function pm2Host(home, env = {}) {
  const pm2Env = { ...process.env, PM2_HOME: home, ...env };
  const pm2 = (...args) => execFileSync(process.execPath, [PM2, ...args], { env: pm2Env, encoding: 'utf8', cwd: ROOT });
  return { env: pm2Env, pm2, jlist: () => JSON.parse(pm2('jlist')), outLog: (name) => join(home, 'logs', `${name}-out.log`) };
}

/**
 * SIGKILL `victim` on `host` if it runs; false when it is not running, or is gone between the
 * listing and the kill (it exited by itself: the restart counts report it).
 */
function kill(host, victim) {
  const app = host.jlist().find((a) => a.name === victim);
  if (!app?.pid) return false;
  try {
    process.kill(app.pid, 'SIGKILL');
    return true;
  } catch (err) {
    if (err.code !== 'ESRCH') throw err;
    return false;
  }
}

/** Apps that restarted more often than they were killed exited by themselves: which, and their last fatal line. */
function selfExits(host, apps, kills) {
  return apps
    .filter((a) => a.pm2_env.restart_time > (kills.get(a.name) ?? 0))
    .map((a) => {
      const n = a.pm2_env.restart_time - (kills.get(a.name) ?? 0);
      const fatal = readFileSync(host.outLog(a.name), 'utf8')
        .split('\n')
        .filter((l) => l.includes('"level":60'))
        .map((l) => {
          try {
            const line = JSON.parse(l.slice(l.indexOf('{')));
            return `${line.msg}${line.err?.message ? `: ${line.err.message}` : ''}`.slice(0, 200);
          } catch {
            return l.slice(0, 200);
          }
        });
      return `${a.name} ${n}${fatal.length > 0 ? ` (last fatal: ${fatal.at(-1)})` : ''}`;
    });
}

/**
 * Every email.* event a bus subscriber sees, from the start of the mailer's and the mailer-worker's
 * streams, through their SIGKILLs: `<event> <message id>` -> the positions it arrived at. `env`
 * names the bus (SOCKET_DIR or BUS_TRANSPORT=rabbitmq + BUS_AMQP_URLS) and the subscriber's DATA_DIR.
 */
function watchEmailEvents(env) {
  const config = loadConfig({ env: { ...process.env, ...env } });
  const bus = createIpcBus('chaos-subscriber', catalogue, config, createLogger({ app: 'chaos-subscriber', level: 'silent' }));
  const seen = new Map();
  let gaps = 0;
  const record = (payload, ctx) => {
    const key = `${ctx.name} ${payload.id}`;
    if (!seen.has(key)) seen.set(key, new Set());
    seen.get(key).add(ctx.pos);
  };
  const onGap = () => gaps++;
  bus.subscribe('mailer', { 'email.queued': record, 'email.cancelled': record }, { from: 0, onGap });
  bus.subscribe('mailer-worker', { 'email.sent': record, 'email.failed': record, 'email.skipped': record }, { from: 0, onGap });
  return { bus, seen, gaps: () => gaps, close: () => bus.close() };
}

/**
 * The outbox promise: each committed message (`messages`: {id, status} from the mailer's store) has
 * exactly one email.queued and, once final, exactly one event of its final status; no event
 * without its state change (none for an unknown message or for a status the message does not
 * have), none twice.
 */
function compareEmailEvents(watch, messages) {
  const final = { sent: 'email.sent', dead: 'email.failed', skipped: 'email.skipped', cancelled: 'email.cancelled' };
  const expected = new Set();
  for (const { id, status } of messages) {
    expected.add(`email.queued ${id}`);
    if (final[status]) expected.add(`${final[status]} ${id}`);
  }
  const missing = [...expected].filter((k) => !watch.seen.has(k));
  const invented = [...watch.seen.keys()].filter((k) => !expected.has(k));
  const twice = [...watch.seen.values()].filter((positions) => positions.size > 1).length;
  return { expected: expected.size, seen: watch.seen.size, missing, invented, twice, gaps: watch.gaps() };
}

/** Compares until nothing is missing or 30 s passed: the subscriber may still be catching up. */
async function settleEmailEvents(watch, messages) {
  let events = compareEmailEvents(watch, await messages());
  for (const deadline = Date.now() + 30_000; events.missing.length > 0 && Date.now() < deadline; await sleep(500))
    events = compareEmailEvents(watch, await messages());
  return events;
}

function emailEventsLine(events) {
  return (
    `email.*    events expected ${events.expected}, seen ${events.seen}, missing ${events.missing.length}, without their state change ${events.invented.length}, seen twice ${events.twice}, gaps ${events.gaps}` +
    (events.missing.length + events.invented.length > 0 ? ` (e.g. ${[...events.missing, ...events.invented].slice(0, 3).join('; ')})` : '')
  );
}

const eventsWrong = (events) => events.missing.length + events.invented.length + events.twice + events.gaps;

/** What blocks FIRST..last should produce: ops, root posts, watcher emails (by subject). */
function expectations(node, last) {
  let ops = 0;
  const posts = [];
  const seen = new Set();
  const emails = new Map();
  for (let n = FIRST; n <= last; n++) {
    for (const trx of node.chain.block(n).transactions) {
      for (const op of trx.operations) {
        ops++;
        const [name, v] = condenserOp(op);
        if (name === 'transfer' || name === 'comment') {
          for (const { subject } of emailsFor(name, { ...v, block_num: n }, WATCHED)) emails.set(subject, (emails.get(subject) ?? 0) + 1);
        }
        if (name !== 'comment' || v.body.startsWith('@@ ')) continue;
        const key = `${v.author}/${v.permlink}`;
        if (v.parent_author === '' && !seen.has(key)) posts.push(`new post: https://steemit.com/@${v.author}/${v.permlink}`);
        seen.add(key);
      }
    }
  }
  return { ops, posts, emails };
}

/** The new-posts bot's announcements in its PM2 log: lost and duplicated against the root posts wanted. */
function newPostsCheck(logFile, want) {
  const announced = readFileSync(logFile, 'utf8')
    .split('\n')
    .map((l) => {
      try {
        return JSON.parse(l.slice(l.indexOf('{'))).msg; // after PM2's log_date_format prefix
      } catch {
        return undefined;
      }
    })
    .filter((m) => typeof m === 'string' && m.startsWith('new post:'));
  const lost = want.posts.filter((p) => !announced.includes(p)).length;
  const dup = announced.length - new Set(announced).size;
  return {
    lost,
    dup,
    line: `new-posts  root posts ${want.posts.length}, announced ${new Set(announced).size}, lost ${lost}, duplicates ${dup}`,
  };
}

/** The watcher's emails at the SMTP sink against the ones wanted (each once, by subject). */
function watcherCheck(mails, want) {
  const watcherMails = mails.filter((m) => m.to.includes('watcher@demo.example.com'));
  const byId = new Map();
  for (const m of watcherMails) byId.set(m.headers['x-steem-bot-message'], m.subject);
  const smtpDup = watcherMails.length - byId.size;
  const got = new Map();
  for (const subject of byId.values()) got.set(subject, (got.get(subject) ?? 0) + 1);
  let wanted = 0;
  let lost = 0;
  let extra = 0;
  for (const [subject, n] of want.emails) {
    wanted += n;
    lost += Math.max(0, n - (got.get(subject) ?? 0));
    extra += Math.max(0, (got.get(subject) ?? 0) - n);
  }
  return {
    lost,
    extra,
    line: `watcher    emails wanted ${wanted}, received ${byId.size}, lost ${lost}, duplicate requests ${extra}, duplicate SMTP deliveries ${smtpDup}`,
  };
}

/** Digest emails delivered more than once (the same mailer message twice at the SMTP sink). */
function digestDuplicates(mails) {
  const digestMails = mails.filter((m) => m.to.includes('digest@demo.example.com'));
  return { mails: digestMails, dup: digestMails.length - new Set(digestMails.map((m) => m.headers['x-steem-bot-message'])).size };
}

module.exports = {
  CHAOS_ENV,
  FIRST,
  compareEmailEvents,
  digestDuplicates,
  emailEventsLine,
  eventsWrong,
  expectations,
  kill,
  newPostsCheck,
  pm2Host,
  randomFrom,
  say,
  selfExits,
  settleEmailEvents,
  sleep,
  until,
  watchEmailEvents,
  watcherCheck,
};
