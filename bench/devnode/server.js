'use strict';
// Benchmark server: KIND=devnode (synthetic chain, rendered on demand) or KIND=static (one
// pre-rendered block for every request: the cost of HTTP and JSON alone, the baseline).
const http = require('node:http');
const { DevNode } = require('@steem-bot/devnode');

(async () => {
  if (process.env.KIND === 'devnode') {
    const node = await DevNode.start({ intervalMs: 0, synthetic: Number(process.env.BLOCKS), opsPerBlock: [50, 200], seed: 3 });
    process.send({ url: node.url });
    return;
  }
  const probe = await DevNode.start({ intervalMs: 0, synthetic: 10, opsPerBlock: [125, 125], seed: 3 });
  const res = await fetch(probe.url, {
    method: 'POST',
    body: JSON.stringify({ jsonrpc: '2.0', method: 'condenser_api.get_block', params: [1001005], id: 1 }),
  });
  const block = JSON.stringify((await res.json()).result);
  await probe.stop();
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString());
      const one = (r) => `{"jsonrpc":"2.0","result":${block},"id":${JSON.stringify(r.id)}}`;
      const out = Array.isArray(body) ? `[${body.map(one).join(',')}]` : one(body);
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(out) });
      res.end(out);
    });
  });
  server.keepAliveTimeout = 30_000;
  server.listen(0, '127.0.0.1', () => process.send({ url: `http://127.0.0.1:${server.address().port}` }));
})();
