'use strict';
// Shared by the bus benchmark's processes: the event, wall-clock time in ms with µs resolution,
// and percentiles.

const now = () => performance.timeOrigin + performance.now();

/** A comment op as the broadcaster publishes it (~300 bytes on the wire). */
function makeEvent(i) {
  return {
    parent_author: '',
    parent_permlink: 'steem',
    author: 'alice',
    permlink: `post-${i}`,
    title: 'A title',
    body: 'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.',
    json_metadata: '{}',
    block_num: 1000000 + (i >> 6),
    block_id: '000f4240dffb1c93d21d0f3a4d1f6c06ea0b8fb7',
    timestamp: '2016-04-29T04:00:03',
    trx_id: '6f2b1c0e2d4a5b7c8d9e0f1a2b3c4d5e6f708192',
    trx_in_block: 0,
    op_in_trx: 0,
    op_in_block: i & 63,
    sent: now(),
  };
}

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function peakRssMb(pid = process.pid) {
  const status = require('node:fs').readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+)/.exec(status)[1]) / 1024;
}

/** Publish `count` events through `publish(i)`, bursting or at `rate` per second. */
async function drive(count, rate, publish) {
  const started = now();
  for (let i = 0; i < count; i++) {
    if (rate > 0) {
      const due = started + (i * 1000) / rate;
      const wait = due - now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    }
    const p = publish(i);
    if (p !== undefined) await p;
  }
  return now() - started;
}

module.exports = { now, makeEvent, percentile, peakRssMb, drive };
