'use strict';
// npm run bench:bus — the bus against a raw node:net NDJSON socket, in the same run.
// 100k ~300 B events to 1 and 4 subscriber processes, burst and paced (10k/s), then the bus
// with one of 4 subscribers stalled (SIGSTOP). Prints a table and the bus/raw ratios.
const { fork } = require('node:child_process');
const { mkdtempSync, rmSync } = require('node:fs');
const { tmpdir, cpus } = require('node:os');
const { join } = require('node:path');

const COUNT = Number(process.env.BENCH_COUNT ?? 100_000);
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
async function scenario(kind, subs, rate, stalled = 0, slow = 0) {
  const dir = mkdtempSync(join(tmpdir(), 'sbb-'));
  const env = { KIND: kind, SOCKET_DIR: dir, COUNT: String(COUNT) };
  const server = start('server.js', env);
  await server.next((m) => m === 'ready');
  const clients = [];
  for (let i = 0; i < subs; i++) {
    const c = start('subscriber.js', i >= stalled && i < stalled + slow ? { ...env, SLOW_MS: '1' } : env);
    await c.next((m) => m === 'ready');
    clients.push(c);
  }
  for (const c of clients.slice(0, stalled)) c.child.kill('SIGSTOP');
  server.child.send({ cmd: 'run', count: COUNT, rate });
  const live = clients.slice(stalled + slow);
  const results = await Promise.all(live.map((c) => c.next((m) => m && m.received)));
  const done = await server.next((m) => m && m.done);
  for (const c of clients) c.child.kill('SIGKILL');
  server.child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
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
    missed: results.reduce((s, r) => s + r.missed, 0),
  };
}

const fmt = (n, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

(async () => {
  const rows = [];
  for (const rate of [0, RATE]) {
    for (const subs of [1, 4]) {
      const raw = await scenario('raw', subs, rate);
      const bus = await scenario('bus', subs, rate);
      rows.push(raw, bus, { ratio: true, subs, mode: bus.mode, tput: bus.msgsPerSec / raw.msgsPerSec, p99: bus.p99 / raw.p99 });
    }
  }
  const stalled = await scenario('bus', 4, 0, 1);
  const slowOne = await scenario('bus', 4, 0, 0, 1);
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
    ['bus, 1 of 4 stalled (SIGSTOP)', '3 live', stalled],
    ['bus, 1 of 4 slow (1 ms per event)', '3 fast', slowOne],
  ]) {
    console.log(
      `| ${label} | ${live} | ${s.mode} | ${fmt(s.msgsPerSec)} | ${fmt(s.p50, 2)} | ${fmt(s.p99, 2)} | ${fmt(s.rssMb)} | ${s.missed} |`,
    );
  }
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
