import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { DEFAULT_MAX_RESPONSE_BYTES, NodeFailure, NodePool, rpcBatch } from '../src';
import { keptLogger } from './harness';

const TOTAL = 400 * 1024 * 1024;

/** A node whose every answer is a 400 MB body, produced lazily (64 KB at a time, honouring backpressure). */
async function hugeNode(): Promise<{ url: string; sent: () => number; server: Server }> {
  const chunk = Buffer.alloc(64 * 1024, 0x20);
  let sent = 0;
  const server = createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('[{"jsonrpc":"2.0","id":1,"result":"');
    let written = 0;
    const pump = (): void => {
      while (written < TOTAL) {
        written += chunk.length;
        sent += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      res.end('"}]');
    };
    res.on('close', () => (written = TOTAL + 1));
    pump();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, sent: () => sent, server };
}

test('a node streaming a 400 MB body is a too-large failure of that node, and RSS stays bounded', async () => {
  const node = await hugeNode();
  const { logger } = keptLogger('broadcaster');
  const before = process.memoryUsage().rss;
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
  try {
    const err = await rpcBatch(node.url, [{ method: 'condenser_api.get_block', params: [1] }], 60_000).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NodeFailure);
    expect([(err as NodeFailure).kind, (err as NodeFailure).message]).toEqual(['too-large', expect.stringMatching(/larger than 33554432/)]);
    // Through the pool: counted against the node like any other failure.
    const pool = new NodePool([node.url], { timeoutMs: 60_000, staleBlocks: 10, staleMs: 10_000, maxResponseBytes: 1024 * 1024, logger });
    await expect(pool.request([{ method: 'condenser_api.get_block', params: [1] }], (r) => r)).rejects.toThrow(/larger than 1048576/);
    expect(pool.health()[0]).toMatchObject({ failures: 1, lastError: expect.stringMatching(/larger than/) });
    peak = Math.max(peak, process.memoryUsage().rss);
    // The body was abandoned early, not read to its end.
    expect(node.sent()).toBeLessThan(TOTAL / 2);
    expect(peak - before).toBeLessThan(DEFAULT_MAX_RESPONSE_BYTES * 3);
  } finally {
    clearInterval(sampler);
    node.server.closeAllConnections();
    await new Promise((r) => node.server.close(r));
  }
}, 60_000);
