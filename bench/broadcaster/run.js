'use strict';
// npm run bench:broadcaster — catch-up over synthetic blocks served by devnode: the broadcaster
// delivering every op, in order, to one subscriber process, against dsteem's
// getOperationsStream({from, to}) and a steem-js getBlock loop on the same devnode, in one run.
const { fork } = require('node:child_process');
const { mkdtempSync, readFileSync, rmSync } = require('node:fs');
const { cpus, tmpdir } = require('node:os');
const { join } = require('node:path');

const ROOT = join(__dirname, '..', '..');
const BLOCKS = Number(process.env.BENCH_BLOCKS ?? 20_000);
const OPS = process.env.BENCH_OPS ?? '20-60';
// BENCH_LATENCY_MS=N: every devnode answer is N ms late, like a public node across the internet.
const LATENCY = Number(process.env.BENCH_LATENCY_MS ?? 0);
const FIRST = 1_001_000;
const LAST = FIRST + BLOCKS - 1;

function start(file, args, env, execArgv = []) {
  const child = fork(file, args, { cwd: ROOT, env: { ...process.env, ...env }, execArgv, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const next = (pred) => new Promise((resolve) => child.on('message', (m) => pred(m) && resolve(m)));
  return { child, next };
}

async function devnode(intervalMs = 0) {
  const port = 30_000 + Math.floor(Math.random() * 20_000);
  const args = [
    '--port',
    String(port),
    '--interval-ms',
    String(intervalMs),
    '--synthetic',
    String(BLOCKS + 10),
    '--ops-per-block',
    OPS,
    '--lib-distance',
    '0',
  ];
  if (LATENCY > 0) args.push('--fault', `latency,ms=${LATENCY}`);
  const node = start(join(ROOT, 'packages/devnode/dist/cli.js'), args, { LOG_LEVEL: 'warn' });
  await node.next((m) => m === 'ready');
  return { ...node, url: `http://127.0.0.1:${port}` };
}

const rss = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;

async function broadcaster(url) {
  const dir = mkdtempSync(join(tmpdir(), 'sbbb-'));
  const env = {
    SOCKET_DIR: join(dir, 'run'),
    DATA_DIR: join(dir, 'data'),
    STEEM_NODES: url,
    STEEM_START_BLOCK: String(FIRST),
    LOG_LEVEL: 'warn',
    LAST_BLOCK: String(LAST),
  };
  // The subscriber first (it connects as soon as the broadcaster serves), then the broadcaster.
  const sub = start(join(__dirname, 'subscriber.js'), [], { ...env, FROM: String((FIRST - 1) * 1e6 + 999_999) });
  const started = Date.now();
  // BENCH_PROFILE=dir writes a CPU profile of the broadcaster there.
  const profile = process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [];
  const b = start(join(ROOT, 'packages/broadcaster/dist/main.js'), [], env, profile);
  await b.next((m) => m === 'ready');
  const done = await sub.next((m) => m && m.done);
  const seconds = (done.at - started) / 1000;
  await new Promise((r) => setTimeout(r, 5000)); // caught up: let it settle, then read idle memory
  const idleRss = rss(b.child.pid);
  sub.child.kill();
  b.child.kill('SIGINT');
  await new Promise((r) => b.child.once('exit', r));
  rmSync(dir, { recursive: true, force: true });
  return { blocksPerSec: BLOCKS / seconds, opsPerSec: done.ops / seconds, ops: done.ops, disorder: done.disorder, idleRss };
}

async function dsteem(url) {
  const { Client } = require(require.resolve('dsteem', { paths: [join(ROOT, 'packages/devnode')] }));
  const client = new Client(url, { timeout: 10_000 });
  let ops = 0;
  const started = Date.now();
  await new Promise((resolve, reject) => {
    const stream = client.blockchain.getOperationsStream({ from: FIRST, to: LAST });
    stream.on('data', () => ops++);
    stream.on('end', resolve);
    stream.on('error', reject);
  });
  const seconds = (Date.now() - started) / 1000;
  return { blocksPerSec: BLOCKS / seconds, opsPerSec: ops / seconds, ops };
}

async function steemjs(url) {
  const steem = require(require.resolve('steem', { paths: [join(ROOT, 'packages/devnode')] }));
  steem.api.setOptions({ url });
  let ops = 0;
  const started = Date.now();
  for (let n = FIRST; n <= LAST; n++) {
    const block = await steem.api.getBlockAsync(n);
    for (const t of block.transactions) ops += t.operations.length;
  }
  const seconds = (Date.now() - started) / 1000;
  return { blocksPerSec: BLOCKS / seconds, opsPerSec: ops / seconds, ops };
}

/** RSS of a broadcaster following the head of a chain that makes a block every 3 s, after 15 s. */
async function idleAtHead() {
  const node = await devnode(3000);
  const dir = mkdtempSync(join(tmpdir(), 'sbbi-'));
  const env = {
    SOCKET_DIR: join(dir, 'run'),
    DATA_DIR: join(dir, 'data'),
    STEEM_NODES: node.url,
    STEEM_START_BLOCK: 'head',
    LOG_LEVEL: 'warn',
  };
  const b = start(join(ROOT, 'packages/broadcaster/dist/main.js'), [], env);
  await b.next((m) => m === 'ready');
  await new Promise((r) => setTimeout(r, 15_000));
  const mb = rss(b.child.pid);
  b.child.kill('SIGINT');
  node.child.kill();
  rmSync(dir, { recursive: true, force: true });
  return mb;
}

const fmt = (n) => Math.round(n).toLocaleString('en-US');

(async () => {
  const results = {};
  const runs = [
    ['steem-js getBlock loop', steemjs],
    ['dsteem getOperationsStream', dsteem],
    ['broadcaster -> bus -> subscriber', broadcaster],
  ];
  for (const [name, run] of process.env.BENCH_ONLY ? runs.filter(([n]) => n.startsWith(process.env.BENCH_ONLY)) : runs) {
    const node = await devnode(); // a fresh devnode each: nobody profits from another's render cache
    results[name] = await run(node.url);
    node.child.kill();
  }
  const best = Math.max(results['steem-js getBlock loop']?.blocksPerSec ?? 0, results['dsteem getOperationsStream']?.blocksPerSec ?? 0);
  console.log(
    `\nbroadcaster benchmark: catch-up over ${BLOCKS.toLocaleString()} synthetic blocks (${OPS} ops each) from devnode, Node ${process.version}, ${cpus().length} x ${cpus()[0].model}, ${new Date().toISOString()}\n`,
  );
  console.log('| client | blocks/s | ops/s | ops | vs the faster of steem-js/dsteem |');
  console.log('|---|---|---|---|---|');
  for (const [name, r] of Object.entries(results))
    console.log(`| ${name} | ${fmt(r.blocksPerSec)} | ${fmt(r.opsPerSec)} | ${fmt(r.ops)} | ${(r.blocksPerSec / best).toFixed(2)}x |`);
  const b = results['broadcaster -> bus -> subscriber'];
  if (b)
    console.log(`\nbroadcaster: ops out of order at the subscriber: ${b.disorder}; RSS 5 s after the catch-up: ${b.idleRss.toFixed(1)} MB`);
  if (LATENCY > 0) console.log(`every devnode answer was delayed by ${LATENCY} ms`);
  else console.log(`broadcaster idle at the head (a block every 3 s): RSS ${(await idleAtHead()).toFixed(1)} MB`);
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
