'use strict';
// npm run bench:devnode — get_block served over loopback, single and in batches of 50, by devnode
// (synthetic blocks of 50-200 ops, each rendered on first request) and by a static server that
// returns one pre-rendered block (baseline: HTTP + JSON only), in the same run.
const { fork } = require('node:child_process');
const { cpus } = require('node:os');
const { join } = require('node:path');

const BLOCKS = Number(process.env.BENCH_BLOCKS ?? 20_000);
const FIRST = 1_001_000;

function start(kind) {
  const child = fork(join(__dirname, 'server.js'), {
    env: { ...process.env, KIND: kind, BLOCKS: String(BLOCKS + 1000) },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  return new Promise((resolve) => child.once('message', (m) => resolve({ child, url: m.url })));
}

/** `concurrency` workers fetch blocks FIRST.. in order, `batch` per request; returns blocks/s and ops/s. */
async function load(url, total, batch, concurrency) {
  let next = FIRST;
  let ops = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < FIRST + total) {
      const from = next;
      next += batch;
      const reqs = [];
      for (let n = from; n < Math.min(from + batch, FIRST + total); n++)
        reqs.push({ jsonrpc: '2.0', method: 'condenser_api.get_block', params: [n], id: n });
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(batch === 1 ? reqs[0] : reqs),
      });
      const body = await res.json();
      for (const r of Array.isArray(body) ? body : [body]) ops += r.result.transactions.length;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const s = (performance.now() - started) / 1000;
  return { blocksPerSec: total / s, opsPerSec: ops / s };
}

const fmt = (n) => Math.round(n).toLocaleString('en-US');

(async () => {
  const rows = [];
  for (const [label, batch, concurrency, total] of [
    ['single requests, 4 in flight', 1, 4, Math.min(BLOCKS, 5000)],
    ['batches of 50, 4 in flight', 50, 4, BLOCKS],
  ]) {
    const out = {};
    for (const kind of ['static', 'devnode']) {
      const server = await start(kind);
      out[kind] = await load(server.url, total, batch, concurrency);
      server.child.kill();
    }
    rows.push({ label, ...out });
  }
  console.log(
    `\ndevnode benchmark: ${BLOCKS.toLocaleString()} synthetic blocks, Node ${process.version}, ${cpus().length} x ${cpus()[0].model}, ${new Date().toISOString()}\n`,
  );
  console.log('| get_block | static server blocks/s | devnode blocks/s | devnode ops/s | devnode / static |');
  console.log('|---|---|---|---|---|');
  for (const r of rows) {
    console.log(
      `| ${r.label} | ${fmt(r.static.blocksPerSec)} | ${fmt(r.devnode.blocksPerSec)} | ${fmt(r.devnode.opsPerSec)} | ${(r.devnode.blocksPerSec / r.static.blocksPerSec).toFixed(2)}x |`,
    );
  }
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
