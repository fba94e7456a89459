'use strict';
// npm run bench:bus — the bus against a raw node:net NDJSON socket, in the same run.
// 100k ~340 B events to 1 and 4 subscriber processes, burst and paced (10k/s); then the bus with
// one of 4 subscribers stalled (SIGSTOP for 10 s, then SIGCONT) and one of 4 slow (1 ms per
// event); 1M events to one subscriber (publisher RSS); the append cost of a 125-op block.
// Prints a table, the bus/raw ratios and each target met or missed. With BENCH_AMQP_URL (or
// TEST_AMQP_URL): the bus on RabbitMQ against amqplib alone (confirms on both), 1 and 4
// subscribers, paced 10k/s, and tasks acknowledged per second (BENCH_RABBIT_ONLY=1: only that).
const { fork } = require('node:child_process');
const { mkdtempSync, rmSync } = require('node:fs');
const { tmpdir, cpus } = require('node:os');
const { join } = require('node:path');

const { measureAppend } = require('./append');

const COUNT = Number(process.env.BENCH_COUNT ?? 100_000);
const BIG = Number(process.env.BENCH_BIG ?? COUNT * 10);
const STALL_MS = Number(process.env.BENCH_STALL_MS ?? 10_000);
const RATE = 10_000;

function start(file, env) {
  const child = fork(join(__dirname, file), { env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const messages = [];
  const waiters = [];
  child.on('message', (m) => {
    messages.push(m);
    for (const w of waiters.splice(0)) w();
  });
  const next = async (pred) => {
    for (;;) {
      const i = messages.findIndex(pred);
      if (i >= 0) return messages.splice(i, 1)[0];
      await new Promise((r) => waiters.push(r));
    }
  };
  return { child, next };
}

/** `stalled` subscribers are SIGSTOPped, `slow` ones busy-wait 1 ms per event; the rest are measured. */
async function scenario(kind, subs, rate, stalled = 0, slow = 0, count = COUNT) {
  const dir = mkdtempSync(join(tmpdir(), 'sbb-'));
  const env = { KIND: kind, SOCKET_DIR: dir, DATA_DIR: join(dir, 'data'), COUNT: String(count) };
  // RabbitMQ: each scenario on its own queues (deleted after), on the broker of AMQP_URL.
  const prefix = `bench-${process.pid}-${Date.now()}`;
  if (kind.startsWith('amqp')) Object.assign(env, { AMQP_URL, AMQP_PREFIX: prefix });
  const server = start('server.js', env);
  await server.next((m) => m === 'ready');
  const clients = [];
  for (let i = 0; i < subs; i++) {
    const c = start('subscriber.js', i >= stalled && i < stalled + slow ? { ...env, SLOW_MS: '1' } : env);
    await c.next((m) => m === 'ready');
    clients.push(c);
  }
  for (const c of clients.slice(0, stalled)) c.child.kill('SIGSTOP');
  const stoppedAt = Date.now();
  server.child.send({ cmd: 'run', count, rate });
  const live = clients.slice(stalled + slow);
  const results = await Promise.all(live.map((c) => c.next((m) => m && m.received)));
  const done = await server.next((m) => m && m.done);
  // The stalled ones resume after STALL_MS and catch up from the log; the slow ones finish.
  await new Promise((r) => setTimeout(r, Math.max(0, stoppedAt + STALL_MS - Date.now()) * Math.min(stalled, 1)));
  for (const c of clients.slice(0, stalled)) c.child.kill('SIGCONT');
  const behind = await Promise.all(clients.slice(0, stalled + slow).map((c) => c.next((m) => m && m.received)));
  for (const c of clients) c.child.kill('SIGKILL');
  server.child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
  if (kind.startsWith('amqp')) await deleteQueues(prefix, kind === 'amqp' ? ['broadcaster'] : []);
  const avg = (k) => results.reduce((s, r) => s + r[k], 0) / results.length;
  const max = (k) => Math.max(...results.map((r) => r[k]));
  return {
    kind,
    subs,
    mode: rate ? `paced ${rate}/s` : 'burst',
    stalled,
    msgsPerSec: avg('msgsPerSec'),
    p50: avg('p50'),
    p99: max('p99'),
    rssMb: done.rssMb,
    missed: [...results, ...behind].reduce((s, r) => s + r.missed, 0),
    behindReceived: behind.map((r) => r.received),
  };
}

const AMQP_URL = process.env.BENCH_AMQP_URL ?? process.env.TEST_AMQP_URL;
const AMQP_COUNT = Number(process.env.BENCH_AMQP_COUNT ?? 50_000);

async function deleteQueues(prefix, apps) {
  const amqp = require('amqplib');
  const { amqpNames } = require('@steem-bot/bus');
  const conn = await amqp.connect(AMQP_URL);
  const ch = await conn.createChannel();
  const n = amqpNames(prefix);
  await ch.deleteQueue(`${prefix}.raw`);
  for (const app of apps) for (const q of [n.stream(app), n.tasks(app), n.dead(app)]) await ch.deleteQueue(q);
  await ch.deleteExchange(n.taskExchange);
  await ch.deleteExchange(n.deadExchange);
  await conn.close();
}

/** The bus on RabbitMQ against amqplib alone on the same broker, in the same run. */
async function rabbitmq() {
  const { AmqpTransport } = require('@steem-bot/bus');
  const { createLogger } = require('@steem-bot/config');
  const { measureTasks } = require('./tasks');
  const rows = [];
  const ratios = {};
  for (const [subs, rate] of [
    [1, 0],
    [4, 0],
    [4, RATE],
  ]) {
    const raw = await scenario('amqpraw', subs, rate, 0, 0, AMQP_COUNT);
    const bus = await scenario('amqp', subs, rate, 0, 0, AMQP_COUNT);
    const ratio = { ratio: true, subs, mode: bus.mode, tput: bus.msgsPerSec / raw.msgsPerSec, p99: bus.p99 / raw.p99 };
    ratios[`${subs}-${rate}`] = { raw, bus, ratio };
    rows.push(raw, bus, ratio);
  }
  const prefix = `bench-${process.pid}-tasks`;
  const logger = createLogger({ app: 'bench-tasks', level: 'warn', format: 'json' });
  const tasks = await measureTasks(() => new AmqpTransport({ urls: [AMQP_URL], prefix, logger }));
  await deleteQueues(prefix, ['worker', 'client']);
  console.log(`\nbus on RabbitMQ: ${AMQP_COUNT.toLocaleString()} events, broker ${new URL(AMQP_URL).host}\n`);
  console.log('| transport | subscribers | mode | msgs/s per subscriber | p50 ms | p99 ms | publisher peak RSS MB | missed (gaps) |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    if (r.ratio) console.log(`| **rabbitmq bus / raw amqplib** | ${r.subs} | ${r.mode} | **${fmt(r.tput, 2)}x** | | ${fmt(r.p99, 2)}x | |`);
    else {
      const name = r.kind === 'amqp' ? 'bus on RabbitMQ' : 'raw amqplib (confirms)';
      console.log(
        `| ${name} | ${r.subs} | ${r.mode} | ${fmt(r.msgsPerSec)} | ${fmt(r.p50, 2)} | ${fmt(r.p99, 2)} | ${fmt(r.rssMb)} | ${r.missed ?? 0} |`,
      );
    }
  }
  console.log(
    `| bus on RabbitMQ: tasks acknowledged | ${tasks.concurrency} in flight | ${tasks.count} sends | ${fmt(tasks.perSec)} | | | | ${tasks.failed} failed |`,
  );
  const verdict = (ok) => (ok ? 'met' : '**missed**');
  const t1 = ratios['1-0'].ratio.tput;
  const t4 = ratios['4-0'].ratio.tput;
  const missed = Object.values(ratios).reduce((s, r) => s + r.bus.missed, 0);
  console.log('\n| target | measured | verdict |\n|---|---|---|');
  console.log(`| RabbitMQ burst, 1 subscriber >= 0.8x raw amqplib | ${fmt(t1, 2)}x | ${verdict(t1 >= 0.8)} |`);
  console.log(`| RabbitMQ burst, 4 subscribers >= 0.8x raw amqplib | ${fmt(t4, 2)}x | ${verdict(t4 >= 0.8)} |`);
  console.log(
    `| RabbitMQ paced 10k/s to 4: p99 | ${fmt(ratios[`4-${RATE}`].bus.p99, 2)} ms (raw ${fmt(ratios[`4-${RATE}`].raw.p99, 2)} ms) | - |`,
  );
  console.log(`| RabbitMQ: 0 missed | ${missed} | ${verdict(missed === 0)} |`);
}

const fmt = (n, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

(async () => {
  if (process.env.BENCH_RABBIT_ONLY === '1') return rabbitmq();
  const append = await measureAppend();
  const rows = [];
  const ratios = {};
  for (const rate of [0, RATE]) {
    for (const subs of [1, 4]) {
      const raw = await scenario('raw', subs, rate);
      const bus = await scenario('bus', subs, rate);
      const ratio = { ratio: true, subs, mode: bus.mode, tput: bus.msgsPerSec / raw.msgsPerSec, p99: bus.p99 / raw.p99 };
      ratios[`${subs}-${rate}`] = { raw, bus, ratio };
      rows.push(raw, bus, ratio);
    }
  }
  const stalled = await scenario('bus', 4, 0, 1);
  const slowOne = await scenario('bus', 4, 0, 0, 1);
  const big = await scenario('bus', 1, 0, 0, 0, BIG);
  console.log(
    `\nbus benchmark: ${COUNT.toLocaleString()} events, Node ${process.version}, ${cpus().length} x ${cpus()[0].model}, ${new Date().toISOString()}\n`,
  );
  console.log('| transport | subscribers | mode | msgs/s per subscriber | p50 ms | p99 ms | server peak RSS MB | missed (gaps) |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    if (r.ratio) console.log(`| **bus / raw** | ${r.subs} | ${r.mode} | **${fmt(r.tput, 2)}x** | | ${fmt(r.p99, 2)}x | |`);
    else
      console.log(
        `| ${r.kind} | ${r.subs} | ${r.mode} | ${fmt(r.msgsPerSec)} | ${fmt(r.p50, 2)} | ${fmt(r.p99, 2)} | ${fmt(r.rssMb)} | ${r.missed ?? 0} |`,
      );
  }
  for (const [label, live, s] of [
    [`bus, 1 of 4 stalled (SIGSTOP ${STALL_MS / 1000} s)`, '3 live', stalled],
    ['bus, 1 of 4 slow (1 ms per event)', '3 fast', slowOne],
    [`bus, ${BIG.toLocaleString()} events`, '1', big],
  ]) {
    console.log(
      `| ${label} | ${live} | ${s.mode} | ${fmt(s.msgsPerSec)} | ${fmt(s.p50, 2)} | ${fmt(s.p99, 2)} | ${fmt(s.rssMb)} | ${s.missed} |`,
    );
  }
  const unhindered = ratios[`4-0`].bus.msgsPerSec;
  const verdict = (ok) => (ok ? 'met' : '**missed**');
  const t1 = ratios['1-0'].ratio.tput;
  const t4 = ratios['4-0'].ratio.tput;
  const p99 = ratios[`4-${RATE}`].bus.p99;
  const peak = Math.max(...Object.values(ratios).map((r) => r.bus.rssMb), stalled.rssMb, slowOne.rssMb, big.rssMb);
  const allMissed = Object.values(ratios).reduce((s, r) => s + r.bus.missed, 0) + stalled.missed + slowOne.missed + big.missed;
  console.log('\n| target | measured | verdict |\n|---|---|---|');
  console.log(`| burst, 1 subscriber >= 0.8x raw | ${fmt(t1, 2)}x | ${verdict(t1 >= 0.8)} |`);
  console.log(`| burst, 4 subscribers >= 0.9x raw each | ${fmt(t4, 2)}x | ${verdict(t4 >= 0.9)} |`);
  console.log(`| 0 missed in every scenario | ${allMissed} | ${verdict(allMissed === 0)} |`);
  console.log(
    `| stalled one catches up from the log | received ${stalled.behindReceived.join(', ')} of ${COUNT.toLocaleString()} | ${verdict(stalled.behindReceived.every((n) => n === COUNT))} |`,
  );
  console.log(
    `| 1 of 4 slow: the fast ones >= 0.9x unhindered (${fmt(unhindered)}/s) | ${fmt(slowOne.msgsPerSec / unhindered, 2)}x | ${verdict(slowOne.msgsPerSec / unhindered >= 0.9)} |`,
  );
  console.log(
    `| 1 of 4 slow: the slow one gets every event | received ${slowOne.behindReceived.join(', ')} of ${COUNT.toLocaleString()} | ${verdict(slowOne.behindReceived.every((n) => n === COUNT))} |`,
  );
  console.log(`| paced 10k/s to 4: p99 <= 5 ms | ${fmt(p99, 2)} ms | ${verdict(p99 <= 5)} |`);
  console.log(`| publisher peak RSS <= 150 MB | ${fmt(peak)} MB | ${verdict(peak <= 150)} |`);
  console.log(
    `| RSS flat from ${COUNT.toLocaleString()} to ${BIG.toLocaleString()} events (1 subscriber) | ${fmt(ratios['1-0'].bus.rssMb)} -> ${fmt(big.rssMb)} MB | ${verdict(big.rssMb <= ratios['1-0'].bus.rssMb * 1.2)} |`,
  );
  console.log(
    `| 125-op block appended <= 0.5 ms median | median ${fmt(append.median, 3)} ms, p99 ${fmt(append.p99, 3)} ms (${append.blocks} blocks) | ${verdict(append.median <= 0.5)} |`,
  );
  if (AMQP_URL) await rabbitmq();
  else console.log('\nbus on RabbitMQ: skipped (set BENCH_AMQP_URL or TEST_AMQP_URL)');
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
