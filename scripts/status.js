#!/usr/bin/env node
// `npm run status [-- --json]`: one screen for the operator: PM2 state of every app, the
// broadcaster's block/head/LIB/lag, each event stream's head, retention floor and bytes with each
// connected subscriber's position and lag, each bot's checkpoint and lag, the mailer's counts and
// oldest due message, the clock's next fires. Directories come from the running apps' environment.
'use strict';
const { execFileSync } = require('node:child_process');
const { existsSync } = require('node:fs');
const { join } = require('node:path');

const { createIpcBus, readAmqpStreams, readStreams } = require('@steem-bot/bus');
const { blockOfPosition, catalogue, createLogger, loadConfig } = require('@steem-bot/config');
const { BotStore } = require('@steem-bot/bot');
const { MailStore, storeFile } = require('@steem-bot/mailer');
const { loadSchedules } = require('@steem-bot/clock');

const ROOT = join(__dirname, '..');
const json = process.argv.includes('--json');

function pm2List() {
  try {
    const out = execFileSync(process.execPath, [join(ROOT, 'node_modules/pm2/bin/pm2'), 'jlist'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    return JSON.parse(out.slice(out.indexOf('[')));
  } catch {
    return [];
  }
}

/** Use an app's store if it exists (the status screen never creates one). */
function open(file, make, read) {
  if (!existsSync(file)) return undefined;
  const store = make(file);
  try {
    return read(store);
  } finally {
    store.close();
  }
}

const duration = (ms) =>
  ms < 60_000
    ? `${Math.round(ms / 1000)}s`
    : ms < 3_600_000
      ? `${Math.round(ms / 60_000)}m`
      : ms < 172_800_000
        ? `${(ms / 3_600_000).toFixed(1)}h`
        : `${Math.round(ms / 86_400_000)}d`;

async function main() {
  const apps = pm2List();
  const appEnv = apps.find((a) => a.name === 'broadcaster')?.pm2_env ?? {};
  // Use the running system's directories (the demo's differ from the defaults).
  const env = { ...process.env };
  for (const k of ['SOCKET_DIR', 'DATA_DIR', 'CLOCK_SCHEDULES']) if (appEnv[k]) env[k] = appEnv[k];
  const config = loadConfig({ env });
  const status = { apps: [], broadcaster: null, streams: [], bots: [], mailer: null, clock: [] };

  for (const a of apps) {
    status.apps.push({
      name: a.name,
      status: a.pm2_env.status,
      restarts: a.pm2_env.restart_time,
      memory_mb: Math.round((a.monit?.memory ?? 0) / 1048576),
      uptime: a.pm2_env.status === 'online' ? duration(Date.now() - a.pm2_env.pm_uptime) : '-',
    });
  }

  const bus = createIpcBus('status', catalogue, config, createLogger({ app: 'status', level: 'silent' }));
  try {
    status.broadcaster = await bus.call('broadcaster.status.get', {}, { timeoutMs: 2_000 });
  } catch (err) {
    status.broadcaster = { error: err.message };
  } finally {
    await bus.close();
  }
  const head = status.broadcaster?.head_block ?? null;
  try {
    status.streams =
      config.BUS_TRANSPORT === 'rabbitmq'
        ? await readAmqpStreams(
            config.BUS_AMQP_URLS,
            Object.keys(catalogue.publishers ?? {}),
            createLogger({ app: 'status', level: 'silent' }),
          )
        : readStreams(config.DATA_DIR);
  } catch (err) {
    status.streams = [{ error: err.message }];
  }

  for (const a of apps.filter((x) => String(x.pm2_env.pm_exec_path ?? '').includes('/bots/'))) {
    const bot = open(
      join(config.DATA_DIR, `bot-${a.name}.sqlite`),
      (file) => new BotStore(file),
      (store) => ({
        position: store.checkpoint(),
        dead: store.deadLetters('dead').length,
      }),
    );
    const block = bot?.position == null ? null : blockOfPosition(bot.position);
    status.bots.push({
      name: a.name,
      checkpoint: bot?.position ?? null,
      block,
      lag_blocks: head !== null && block !== null ? head - block : null,
      dead_letters: bot?.dead ?? 0,
    });
  }

  status.mailer =
    open(
      storeFile(config.DATA_DIR),
      (file) => new MailStore(file),
      (store) => {
        const oldest = store.oldestDue(Date.now());
        const next = store.nextDue();
        return {
          counts: store.counts(),
          oldest_due: oldest === undefined ? null : new Date(oldest).toISOString(),
          next_due: next === undefined ? null : new Date(next).toISOString(),
        };
      },
    ) ?? null;

  try {
    for (const s of loadSchedules(config.CLOCK_SCHEDULES)) {
      const next = s.pattern.nextRun();
      status.clock.push({ id: s.id, task: s.task, next: next ? next.toISOString() : null });
    }
  } catch (err) {
    status.clock = [{ error: err.message }];
  }

  if (json) return void process.stdout.write(`${JSON.stringify(status, null, 2)}\n`);
  const out = [];
  out.push('APPS');
  if (status.apps.length === 0) out.push('  (PM2 runs no apps: npm start, or npm run demo)');
  for (const a of status.apps)
    out.push(
      `  ${a.name.padEnd(16)} ${a.status.padEnd(9)} restarts ${String(a.restarts).padEnd(4)} ${String(a.memory_mb).padStart(4)} MB  up ${a.uptime}`,
    );
  const b = status.broadcaster;
  out.push('', 'BROADCASTER');
  out.push(
    b.error
      ? `  not answering: ${b.error}`
      : `  block ${b.current_block}  head ${b.head_block}  LIB ${b.irreversible_block}  lag ${b.lag_blocks} blocks (${b.lag_seconds === null ? '?' : duration(b.lag_seconds * 1000)} behind the clock)  mode ${b.mode}`,
  );
  if (!b.error && b.problem) out.push(`  not streaming: ${b.problem}`);
  if (!b.error) for (const n of b.nodes) out.push(`    ${n.state.padEnd(8)} ${n.url}${n.lastError ? `  (${n.lastError})` : ''}`);
  out.push('', 'STREAMS');
  if (status.streams.length === 0) out.push('  (no stream yet)');
  for (const s of status.streams) {
    if (s.error) {
      out.push(`  ${s.error}`);
      continue;
    }
    out.push(`  ${s.app.padEnd(16)} head ${s.head}  floor ${s.floor}  ${(s.bytes / 1048576).toFixed(1)} MB`);
    for (const c of s.subscribers)
      out.push(
        `    ${(c.names === null ? 'plain client (every event)' : c.names.join(',')).slice(0, 40).padEnd(40)} at ${c.pos}  lag ${c.lag}`,
      );
  }
  out.push('', 'BOTS');
  for (const bot of status.bots)
    out.push(`  ${bot.name.padEnd(16)} block ${bot.block ?? '-'}  lag ${bot.lag_blocks ?? '?'} blocks  dead letters ${bot.dead_letters}`);
  out.push('', 'MAILER');
  const m = status.mailer;
  out.push(
    m
      ? `  ${
          Object.entries(m.counts)
            .map(([k, n]) => `${k} ${n}`)
            .join('  ') || 'no messages'
        }  oldest due ${m.oldest_due ?? '-'}  next due ${m.next_due ?? '-'}`
      : '  no store yet',
  );
  out.push('', 'CLOCK');
  for (const c of status.clock) out.push(c.error ? `  ${c.error}` : `  ${c.id.padEnd(20)} ${c.task.padEnd(24)} next ${c.next}`);
  process.stdout.write(`${out.join('\n')}\n`);
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`status: ${err.message}\n`);
    process.exit(1);
  },
);
