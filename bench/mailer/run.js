'use strict';
// npm run bench:mailer — (1) 10,000 messages end-to-end (REST intake -> SQLite -> worker -> SMTP)
// against a raw nodemailer pooled send loop without durability, into the same discarding SMTP
// server, in the same run; (2) REST intake at 1,000 req/s for 30 s (autocannon): latency and errors;
// (3) RSS of mailer-api and mailer-worker with 100,000 scheduled messages in the store.
const { fork } = require('node:child_process');
const { mkdtempSync, readFileSync, rmSync } = require('node:fs');
const { cpus, tmpdir } = require('node:os');
const { join } = require('node:path');

const autocannon = require('autocannon');
const nodemailer = require('nodemailer');

const { MailStore, newClient, storeFile } = require('@steem-bot/mailer');

const ROOT = join(__dirname, '..', '..');
const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 10_000);
const RATE = Number(process.env.BENCH_RATE ?? 1_000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 30);
const SCHEDULED = Number(process.env.BENCH_SCHEDULED ?? 100_000);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const mail = (i) => ({ to: 'bob@example.com', subject: `Bench message ${i}`, text: `Hello ${i}\n`.repeat(20) });

function startSink() {
  const child = fork(join(__dirname, 'sink.js'), { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  return new Promise((resolve) =>
    child.once('message', ({ port }) =>
      resolve({
        port,
        count: () => new Promise((r) => (child.once('message', (m) => r(m.count)), child.send('count'))),
        stop: () => child.kill(),
      }),
    ),
  );
}

function startApp(file, env, execArgv = []) {
  const child = fork(join(ROOT, file), {
    cwd: ROOT,
    env: { ...process.env, ...env },
    execArgv,
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  let out = '';
  child.stdout.on('data', (c) => (out += c));
  return new Promise((resolve, reject) => {
    child.once('message', () =>
      resolve({
        child,
        out: () => out,
        rssMb: () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))[1]) / 1024,
      }),
    );
    child.once('exit', (code) => reject(new Error(`${file} exited ${code}`)));
  });
}

async function baseline(port) {
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, pool: true, maxConnections: 5, ignoreTLS: true });
  const started = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < MESSAGES) {
      const i = next++;
      await transport.sendMail({ from: 'steem-bot@bench.example.com', ...mail(i) });
    }
  };
  await Promise.all(Array.from({ length: 20 }, worker));
  const seconds = (performance.now() - started) / 1000;
  transport.close();
  return MESSAGES / seconds;
}

async function system(sinkPort, extraEnv = {}, beforeStart = () => undefined) {
  const dir = mkdtempSync(join(tmpdir(), 'bench-mailer-'));
  const env = {
    SOCKET_DIR: join(dir, 'run'),
    DATA_DIR: join(dir, 'data'),
    SMTP_URL: `smtp://127.0.0.1:${sinkPort}`,
    MAILER_PORT: String(20_000 + Math.floor(Math.random() * 20_000)),
    MAILER_RATE_LIMIT: '100000000',
    MAILER_MAX_PENDING: '100000000', // the benchmark queues far more than one client's default share
    LOG_LEVEL: 'warn',
    ...extraEnv,
  };
  const store = new MailStore(storeFile(env.DATA_DIR));
  const { row, token } = newClient('bench', undefined);
  store.addClient(row);
  beforeStart(store);
  const api = await startApp('packages/mailer/dist/main-api.js', { ...env, LOOP_DELAY_FILE: join(dir, 'loop-delay.json') }, [
    '-r',
    join(__dirname, 'loop-delay.js'),
  ]);
  const worker = await startApp('packages/mailer/dist/main-worker.js', env);
  const url = `http://127.0.0.1:${env.MAILER_PORT}/v1/messages`;
  return {
    store,
    token,
    api,
    worker,
    url,
    async stop() {
      api.child.kill('SIGTERM');
      worker.child.kill('SIGTERM');
      await Promise.all([api, worker].map((p) => new Promise((r) => (p.child.exitCode !== null ? r() : p.child.once('exit', r)))));
      store.close();
      this.loopDelay = JSON.parse(readFileSync(join(dir, 'loop-delay.json'), 'utf8'));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function endToEnd(sink) {
  const s = await system(sink.port);
  const before = await sink.count();
  const started = performance.now();
  let next = 0;
  const poster = async () => {
    while (next < MESSAGES) {
      const i = next++;
      const res = await fetch(s.url, {
        method: 'POST',
        headers: { authorization: `Bearer ${s.token}`, 'content-type': 'application/json', 'idempotency-key': `e2e-${i}` },
        body: JSON.stringify(mail(i)),
      });
      if (res.status !== 202) throw new Error(`POST answered ${res.status}`);
    }
  };
  await Promise.all(Array.from({ length: 20 }, poster));
  const intakeSeconds = (performance.now() - started) / 1000;
  while ((await sink.count()) - before < MESSAGES) await sleep(50);
  const seconds = (performance.now() - started) / 1000;
  await s.stop();
  return { rate: MESSAGES / seconds, intakeRate: MESSAGES / intakeSeconds };
}

/** The worker alone: MESSAGES due messages already in the store, delivered as fast as it can. */
async function workerAlone(sink) {
  const before = await sink.count();
  let started;
  const s = await system(sink.port, {}, (store) => {
    store.db.transaction(() => {
      for (let i = 0; i < MESSAGES; i++)
        store.enqueue({
          client: 'bench',
          key: `w${i}`,
          request: { ...mail(i), to: ['bob@example.com'] },
          tid: '0000000000000000',
          now: Date.now(),
          domain: 'bench.example.com',
        });
    })();
    started = performance.now();
  });
  while ((await sink.count()) - before < MESSAGES) await sleep(50);
  const rate = MESSAGES / ((performance.now() - started) / 1000);
  await s.stop();
  return rate;
}

async function intakeLoad(sink, body) {
  const s = await system(sink.port);
  const result = await autocannon({
    url: s.url,
    method: 'POST',
    connections: 20,
    overallRate: RATE,
    duration: SECONDS,
    headers: { authorization: `Bearer ${s.token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const rss = { api: s.api.rssMb(), worker: s.worker.rssMb() };
  await s.stop();
  return { result, rss, loopDelay: s.loopDelay };
}

async function scheduledRss(sink) {
  const s = await system(sink.port);
  const far = new Date(Date.now() + 365 * 86_400_000).toISOString();
  const insert = s.store.db.transaction(() => {
    for (let i = 0; i < SCHEDULED; i++) {
      s.store.enqueue({
        client: 'bench',
        key: `s${i}`,
        request: { ...mail(i), to: ['bob@example.com'], send_at: far },
        tid: '0000000000000000',
        now: Date.now(),
        domain: 'bench.example.com',
      });
    }
  });
  insert();
  // Let both processes see the full store: a listing through the API and a worker wake-up.
  await fetch(`${s.url}?limit=200`, { headers: { authorization: `Bearer ${s.token}` } });
  await fetch(s.url, {
    method: 'POST',
    headers: { authorization: `Bearer ${s.token}`, 'content-type': 'application/json' },
    body: JSON.stringify(mail(1)),
  });
  await sleep(3_000);
  const rss = { api: s.api.rssMb(), worker: s.worker.rssMb() };
  await s.stop();
  return rss;
}

async function main() {
  const sink = await startSink();
  console.log(`bench:mailer on ${cpus().length} x ${cpus()[0].model}, Node ${process.version}, ${new Date().toISOString()}`);
  const raw = await baseline(sink.port);
  console.log(`raw nodemailer pool (no durability): ${raw.toFixed(0)} msg/s`);
  const e2e = await endToEnd(sink);
  console.log(
    `mailer end-to-end (REST -> SQLite -> worker -> SMTP): ${e2e.rate.toFixed(0)} msg/s (intake alone ${e2e.intakeRate.toFixed(0)} req/s) -> ${(e2e.rate / raw).toFixed(2)}x raw (target >= 0.7x)`,
  );
  const alone = await workerAlone(sink);
  console.log(
    `mailer-worker alone (${MESSAGES} due messages in the store -> SMTP): ${alone.toFixed(0)} msg/s -> ${(alone / raw).toFixed(2)}x raw`,
  );
  {
    const s = await system(sink.port);
    const r = await autocannon({
      url: s.url.replace('/messages', '/openapi.json'),
      connections: 20,
      overallRate: RATE,
      duration: Math.min(SECONDS, 10),
    });
    await s.stop();
    console.log(
      `baseline: GET /v1/openapi.json (no work) at ${RATE} req/s: p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms, max ${r.latency.max} ms (what the load generator and the machine add)`,
    );
  }
  const future = new Date(Date.now() + 30 * 86_400_000).toISOString();
  for (const [what, body] of [
    ['sent at once (the worker delivers meanwhile)', mail(0)],
    ['scheduled a month ahead (the worker idles)', { ...mail(0), send_at: future }],
  ]) {
    const { result, rss, loopDelay: d } = await intakeLoad(sink, body);
    const l = result.latency;
    console.log(
      `REST intake at ${RATE} req/s for ${SECONDS} s, ${what}: ${result.requests.total} requests, p50 ${l.p50} ms, p99 ${l.p99} ms, max ${l.max} ms as autocannon sees it (target p99 <= 20), errors ${result.errors}, timeouts ${result.timeouts}, non-2xx ${result.non2xx}; the API's event-loop delay p50 ${d.p50} ms, p99 ${d.p99} ms, max ${d.max} ms; RSS api ${rss.api.toFixed(0)} MB, worker ${rss.worker.toFixed(0)} MB`,
    );
  }
  const big = await scheduledRss(sink);
  console.log(`RSS with ${SCHEDULED} scheduled messages in the store: api ${big.api.toFixed(0)} MB, worker ${big.worker.toFixed(0)} MB`);
  sink.stop();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
