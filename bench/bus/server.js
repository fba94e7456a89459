'use strict';
// Benchmark publisher: KIND=bus (the project's bus: a SQLite stream served over node-ipc) or
// KIND=raw (node:net NDJSON, paced with drain); KIND=amqp (the bus on RabbitMQ) or KIND=amqpraw
// (amqplib alone on a stream queue, with confirms). Waits for SUBS subscribers, then publishes on the parent's command.
const net = require('node:net');
const { catalogue, createLogger } = require('@steem-bot/config');
const { AmqpTransport, Bus, IpcTransport } = require('@steem-bot/bus');
const { makeEvent, drive, now, peakRssMb } = require('./common');

const { KIND, SOCKET_DIR, DATA_DIR } = process.env;

async function busServer() {
  const logger = createLogger({ app: 'bench-server', level: 'warn', format: 'json' });
  // The stream in a real SQLite file, as in production.
  const transport =
    KIND === 'amqp'
      ? new AmqpTransport({ urls: [process.env.AMQP_URL], prefix: process.env.AMQP_PREFIX, logger })
      : new IpcTransport({ socketDir: SOCKET_DIR, dataDir: DATA_DIR, logger });
  const bus = new Bus({ app: 'broadcaster', catalogue, transport, logger });
  await bus.serve({ floor: 0 });
  // As the broadcaster does: one append (one transaction) per block; makeEvent puts 64 ops in a
  // block. The last event of a block (or of the run) appends the block and waits for it.
  const COUNT = Number(process.env.COUNT);
  let block = [];
  return (i) => {
    block.push({ name: 'comment', payload: makeEvent(i), position: i + 1 });
    if ((i & 63) !== 63 && i !== COUNT - 1) return undefined;
    const batch = block;
    block = [];
    // Latency runs from the publish call: the block's events are published together, as the
    // broadcaster publishes a block's ops (not from when the benchmark made the first of them).
    const sent = now();
    for (const e of batch) e.payload.sent = sent;
    return bus.publishBatch(batch);
  };
}

async function rawServer() {
  const sockets = new Set();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
  });
  await new Promise((r) => server.listen(`${SOCKET_DIR}/raw.sock`, r));
  return (i) => {
    const line = JSON.stringify({ type: 'comment', data: makeEvent(i) }) + '\n';
    const full = [];
    for (const s of sockets) if (!s.write(line)) full.push(s);
    return full.length > 0 ? Promise.all(full.map(drainOrClose)) : undefined;
  };
}

function drainOrClose(socket) {
  return new Promise((resolve) => {
    const done = () => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}

/** The baseline of the RabbitMQ transport: amqplib alone, one stream queue, confirms per block of 64. */
async function amqpRawServer() {
  const amqp = require('amqplib');
  const conn = await amqp.connect(process.env.AMQP_URL);
  const ch = await conn.createConfirmChannel();
  const queue = `${process.env.AMQP_PREFIX}.raw`;
  await ch.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'stream' } });
  const COUNT = Number(process.env.COUNT);
  return (i) => {
    ch.sendToQueue(queue, Buffer.from(JSON.stringify({ type: 'comment', data: makeEvent(i) })), { persistent: true });
    return (i & 63) === 63 || i === COUNT - 1 ? ch.waitForConfirms() : undefined;
  };
}

(KIND === 'bus' || KIND === 'amqp' ? busServer() : KIND === 'amqpraw' ? amqpRawServer() : rawServer()).then((publish) => {
  process.on('message', (msg) => {
    if (msg.cmd === 'run') {
      drive(msg.count, msg.rate, publish).then((ms) => process.send({ done: true, ms, rssMb: peakRssMb() }));
    }
  });
  process.send('ready');
});
