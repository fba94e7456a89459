'use strict';
// npm run bench:webhooks — (1) deliveries/s of the webhooks app to a local receiver across 20
// endpoints (every posted event goes to each of them), against a raw fetch POST loop with the
// same concurrency (20) into the same receiver, in the same run; (2) the latency from posting a
// live event (appended to the webhooks stream inside POST /v1/events) to the receiver, at
// 100 events/s: p50, p99 (goal <= 50 ms). BENCH_DEBUG=1 lists the live events slower than 50 ms
// by arrival index (a burst at the start, or spread: the machine). BENCH_DATABASE_URL=postgres://...
// runs the app on STORE=postgres (a schema of its own, dropped at the end).
const { fork } = require('node:child_process');
const { mkdtempSync, rmSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');

const { Postgres } = require('@steem-bot/store');
const { addClient, PostgresWebhookStore, SqliteWebhookStore, storeFile } = require('@steem-bot/webhooks');

const ROOT = join(__dirname, '..', '..');
const EVENTS = Number(process.env.BENCH_EVENTS ?? 500); // x 20 endpoints = deliveries
const RATE = Number(process.env.BENCH_RATE ?? 100);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const ENDPOINTS = 20;
const PG = process.env.BENCH_DATABASE_URL;
const SCHEMA = `bench_webhooks_${process.pid}`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function child(file, env = {}) {
  const proc = fork(file, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  let out = '';
  proc.stdout.on('data', (c) => (out += c));
  const ask = (what, key) => new Promise((r) => (proc.once('message', (m) => r(m[key])), proc.send(what)));
  return { proc, out: () => out, ask };
}

async function startReceiver() {
  const r = child(join(__dirname, 'receiver.js'));
  const { port } = await new Promise((resolve) => r.proc.once('message', resolve));
  return {
    ...r,
    url: `http://127.0.0.1:${port}/hook`,
    count: () => r.ask('count', 'count'),
    latencies: () => r.ask('latencies', 'latencies'),
  };
}

async function waitFor(predicate, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

async function baseline(receiver) {
  const body = JSON.stringify({ type: 'bench.tick', position: 1, tid: '0', timestamp: new Date().toISOString(), data: { i: 0 } });
  const total = EVENTS * ENDPOINTS;
  const before = await receiver.count();
  const started = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < total) {
      next++;
      const res = await fetch(receiver.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      await res.arrayBuffer();
    }
  };
  await Promise.all(Array.from({ length: ENDPOINTS }, worker));
  const seconds = (performance.now() - started) / 1000;
  if ((await receiver.count()) - before !== total) throw new Error('baseline lost requests');
  return total / seconds;
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'bench-webhooks-'));
  const env = {
    SOCKET_DIR: join(dir, 'run'),
    DATA_DIR: join(dir, 'data'),
    WEBHOOKS_PORT: String(20_000 + Math.floor(Math.random() * 20_000)),
    WEBHOOKS_ALLOW: '127.0.0.1',
    WEBHOOKS_RATE_LIMIT: '1000000',
    WEBHOOKS_EVENTS_PER_MINUTE: '1000000',
    LOG_LEVEL: 'warn',
  };
  if (PG) Object.assign(env, { STORE: 'postgres', DATABASE_URL: PG, DATABASE_SCHEMA: SCHEMA });
  const store = PG ? await PostgresWebhookStore.open({ url: PG, schema: SCHEMA }) : new SqliteWebhookStore(storeFile(env.DATA_DIR));
  const { token } = await addClient(store, 'bench', ['bench.tick']);
  await store.close();
  const receiver = await startReceiver();
  const app = child(join(ROOT, 'packages/webhooks/dist/main.js'), env);
  await new Promise((resolve, reject) => {
    app.proc.once('message', resolve);
    app.proc.once('exit', (code) => reject(new Error(`webhooks exited ${code}: ${app.out()}`)));
  });
  const api = `http://127.0.0.1:${env.WEBHOOKS_PORT}`;
  const rest = async (method, path, body) => {
    const res = await fetch(api + path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  };
  try {
    const raw = await baseline(receiver);

    for (let e = 0; e < ENDPOINTS; e++) await rest('PUT', `/v1/endpoints/e${e}`, { url: receiver.url, events: ['bench.tick'] });
    const before = await receiver.count();
    const started = performance.now();
    for (let i = 0; i < EVENTS; i++) await rest('POST', '/v1/events/bench.tick', { i });
    const total = EVENTS * ENDPOINTS;
    await waitFor(async () => (await receiver.count()) - before >= total, 600_000, 'every delivery');
    const system = total / ((performance.now() - started) / 1000);
    for (let e = 0; e < ENDPOINTS; e++) await rest('DELETE', `/v1/endpoints/e${e}`);

    await rest('PUT', '/v1/endpoints/live', { url: receiver.url, events: ['bench.tick'] });
    await receiver.latencies();
    const liveStart = await receiver.count();
    const events = RATE * SECONDS;
    const t0 = performance.now();
    for (let i = 0; i < events; i++) {
      const due = t0 + (i * 1000) / RATE;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      void rest('POST', '/v1/events/bench.tick', { i, t: performance.timeOrigin + performance.now() });
    }
    await waitFor(async () => (await receiver.count()) - liveStart >= events, 30_000, 'every live event');
    const arrival = await receiver.latencies();
    if (process.env.BENCH_DEBUG)
      process.stderr.write(
        `slowest by arrival index: ${JSON.stringify(arrival.map((l, i) => [i, Math.round(l)]).filter(([, l]) => l > 50))}\n`,
      );
    const lat = [...arrival].sort((a, b) => a - b);
    const pct = (p) => lat[Math.min(lat.length - 1, Math.floor((p / 100) * lat.length))]?.toFixed(1);

    const out = (s) => process.stdout.write(`${s}\n`);
    out(`store: ${PG ? 'PostgreSQL' : 'SQLite'}`);
    out(`raw fetch POST loop (${ENDPOINTS} in flight):      ${raw.toFixed(0)} req/s`);
    out(
      `webhooks, ${ENDPOINTS} endpoints x ${EVENTS} events:   ${system.toFixed(0)} deliveries/s  (${(system / raw).toFixed(2)}x, goal >= 0.7x)`,
    );
    out(
      `live event -> receiver at ${RATE}/s for ${SECONDS} s: ${lat.length}/${events} received, p50 ${pct(50)} ms, p99 ${pct(99)} ms (goal <= 50 ms)`,
    );
  } finally {
    app.proc.kill('SIGINT');
    receiver.proc.kill();
    await sleep(500);
    rmSync(dir, { recursive: true, force: true });
    if (PG) {
      const admin = await Postgres.open({ url: PG, schema: SCHEMA, name: 'cleanup' });
      await admin.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
      await admin.close();
    }
  }
}

main().catch((err) => {
  process.stderr.write(`${err.stack ?? err}\n`);
  process.exit(1);
});
