'use strict';
// The benchmark's receiver, in its own process: answers 200 to every POST, counts them, and for
// bodies whose data carries `t` (the sender's clock, ms with fractions) records the latency.
const { createServer } = require('node:http');

let count = 0;
let latencies = [];
const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    count++;
    const now = performance.timeOrigin + performance.now();
    try {
      const t = JSON.parse(Buffer.concat(chunks).toString()).data?.t;
      if (typeof t === 'number') latencies.push(now - t);
    } catch {
      // not JSON: counted all the same
    }
    res.writeHead(200).end();
  });
});
server.keepAliveTimeout = 5_000;
server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
process.on('message', (m) => {
  if (m === 'count') process.send({ count });
  if (m === 'latencies') {
    process.send({ latencies });
    latencies = [];
  }
});
