'use strict';
// Benchmark subscriber: counts `comment` events, measures latency, reports when COUNT arrived.
const net = require('node:net');
const { catalogue, createLogger } = require('@steem-bot/config');
const { AmqpTransport, Bus, IpcTransport } = require('@steem-bot/bus');
const { now, percentile } = require('./common');

const { KIND, SOCKET_DIR } = process.env;
const COUNT = Number(process.env.COUNT);
const SLOW_MS = Number(process.env.SLOW_MS ?? 0);
const latencies = new Float64Array(COUNT);
let received = 0;
let missed = 0;
let first = 0;

/** `last` is true for the final event (position COUNT on the bus, the COUNT-th line raw). */
function onEvent(data, last) {
  if (SLOW_MS > 0) for (const until = now() + SLOW_MS; now() < until;);
  const t = now();
  if (received === 0) first = t;
  latencies[received++] = t - data.sent;
  if (last) {
    const sorted = Array.from(latencies.subarray(0, received)).sort((a, b) => a - b);
    const msgsPerSec = ((received + missed) / (t - first)) * 1000;
    process.send({ received, missed, msgsPerSec, p50: percentile(sorted, 50), p99: percentile(sorted, 99) });
  }
}

if (KIND === 'bus' || KIND === 'amqp') {
  const logger = createLogger({ app: 'bench-sub', level: 'warn', format: 'json' });
  const transport =
    KIND === 'amqp'
      ? new AmqpTransport({ urls: [process.env.AMQP_URL], prefix: process.env.AMQP_PREFIX, logger })
      : new IpcTransport({ socketDir: SOCKET_DIR, logger });
  const bus = new Bus({ app: `bench-sub-${process.pid}`, catalogue, transport, logger });
  // A gap (events gone past the retention) would be counted as missed; so would a position out of order.
  const onGap = (after, resumeAt) => (missed += resumeAt - (after ?? 0));
  let last = 0;
  const handler = (p, ctx) => {
    if (ctx.pos !== last + 1) missed += Math.abs(ctx.pos - last - 1);
    last = ctx.pos;
    onEvent(p, ctx.pos === COUNT);
  };
  bus.subscribe('broadcaster', { comment: handler }, { from: 0, onGap }).ready.then(() => process.send('ready'));
} else if (KIND === 'amqpraw') {
  // amqplib alone: the stream from its start, a prefetch, one ack per 500 messages.
  (async () => {
    const amqp = require('amqplib');
    const conn = await amqp.connect(process.env.AMQP_URL);
    const ch = await conn.createChannel();
    await ch.prefetch(1000);
    let n = 0;
    await ch.consume(
      `${process.env.AMQP_PREFIX}.raw`,
      (m) => {
        if (++n % 500 === 0) ch.ack(m, true);
        onEvent(JSON.parse(m.content.toString()).data, received + 1 === COUNT);
      },
      { arguments: { 'x-stream-offset': 'first' } },
    );
    process.send('ready');
  })();
} else {
  const socket = net.connect(`${SOCKET_DIR}/raw.sock`, () => process.send('ready'));
  socket.setEncoding('utf8');
  let rest = '';
  socket.on('data', (chunk) => {
    const lines = (rest + chunk).split('\n');
    rest = lines.pop();
    for (const line of lines) onEvent(JSON.parse(line).data, received + 1 === COUNT);
  });
}
