#!/usr/bin/env node
// The demo's webhook receiver (as the SMTP sink is its mail server): an HTTP server on
// 127.0.0.1 that answers 204 to every POST, checks its Standard Webhooks signature against the
// secret the demo wrote to DIR/secret, appends it to DIR/deliveries.jsonl and logs one line.
//   node scripts/webhook-sink.js --port 8033 --dir var/demo/webhook-sink
'use strict';
const { appendFileSync, mkdirSync, readFileSync } = require('node:fs');
const { createServer } = require('node:http');
const { join } = require('node:path');
const { parseArgs } = require('node:util');

const { standardSignature } = require('@steem-bot/outbound');

const { values } = parseArgs({
  options: { port: { type: 'string', default: '8033' }, dir: { type: 'string', default: 'var/webhook-sink' } },
});
mkdirSync(values.dir, { recursive: true, mode: 0o700 });
const secret = () => {
  try {
    return readFileSync(join(values.dir, 'secret'), 'utf8').trim();
  } catch {
    return undefined;
  }
};
let count = 0;

const server = createServer((req, res) => {
  let raw = '';
  req.on('data', (c) => (raw += c));
  req.on('end', () => {
    const id = String(req.headers['webhook-id']);
    const timestamp = String(req.headers['webhook-timestamp']);
    const key = secret();
    const expected = key === undefined ? undefined : standardSignature(key, id, timestamp, raw);
    const verified = expected !== undefined && String(req.headers['webhook-signature']).split(' ').includes(expected);
    let body;
    try {
      body = JSON.parse(raw);
    } catch {
      res.writeHead(400).end();
      return;
    }
    appendFileSync(join(values.dir, 'deliveries.jsonl'), `${JSON.stringify({ id, verified, ...body })}\n`);
    count++;
    const d = body.data ?? {};
    const what = body.type === 'transfer' ? `${d.from} -> ${d.to} ${d.amount} (block ${d.block_num})` : JSON.stringify(d).slice(0, 120);
    process.stdout.write(`delivery ${count}: ${body.type} ${what} [${id}, signature ${verified ? 'valid' : 'NOT VALID'}]\n`);
    res.writeHead(204).end();
  });
});
server.listen(Number(values.port), '127.0.0.1', () => {
  process.stdout.write(`webhook sink listening on http://127.0.0.1:${server.address().port}/hook, keeping deliveries in ${values.dir}\n`);
  process.send?.('ready');
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
