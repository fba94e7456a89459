'use strict';
// Append cost: blocks of 125 comment ops appended with publishBatch (catalogue check, envelope,
// encoding, one SQLite transaction in a real file). Prints the median and p99 per block, in ms.
const { mkdtempSync, rmSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');
const { catalogue, createLogger } = require('@steem-bot/config');
const { Bus, IpcTransport } = require('@steem-bot/bus');
const { makeEvent, now, percentile } = require('./common');

async function measureAppend(blocks = 2000, ops = 125) {
  const dir = mkdtempSync(join(tmpdir(), 'sba-'));
  const logger = createLogger({ app: 'bench-append', level: 'warn', format: 'json' });
  const transport = new IpcTransport({ socketDir: join(dir, 'run'), dataDir: join(dir, 'data'), logger });
  const bus = new Bus({ app: 'broadcaster', catalogue, transport, logger });
  await bus.serve({ floor: 0 });
  const times = [];
  for (let b = 0; b < blocks; b++) {
    const batch = [];
    for (let i = 0; i < ops; i++) batch.push({ name: 'comment', payload: makeEvent(b * ops + i), position: (b + 1) * 1_000_000 + i });
    const t = now();
    await bus.publishBatch(batch);
    times.push(now() - t);
  }
  await bus.close();
  rmSync(dir, { recursive: true, force: true });
  times.sort((a, b) => a - b);
  return { blocks, ops, median: percentile(times, 50), p99: percentile(times, 99) };
}

module.exports = { measureAppend };
