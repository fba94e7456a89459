import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

import { DevNode } from '@steem-bot/devnode';

import { keptLogger, observer, startBroadcaster, testConfig, waitFor } from './harness';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('backfills belong to their subscriber', () => {
  test('from 0: starts at block 1 (never 0), counts nothing against the node, at most BROADCASTER_BACKFILLS at once, stops when the subscriber leaves', async () => {
    const asked: number[] = []; // blocks asked for below the devnode's first block (1000000)
    const node = await DevNode.start({
      intervalMs: 0,
      libDistance: 0,
      onCall: (method, params) => {
        const n = (params as number[])[0];
        if (method.includes('get_block') && typeof n === 'number' && n < 1_000_000) asked.push(n);
      },
    });
    cleanups.push(() => node.stop());
    const { config, cleanup } = testConfig([node.url], { STEEM_START_BLOCK: '1000990', BROADCASTER_BACKFILLS: '1' });
    cleanups.push(cleanup);
    const { logger } = keptLogger('broadcaster');
    const b = await startBroadcaster(config, logger);
    cleanups.push(() => b.stop());
    const obs = observer(config, logger);
    cleanups.push(() => obs.close());
    await waitFor(() => b.broadcaster.status().current_block === 1_000_999, 10_000, 'block 1000999');
    // Three subscribers resume from 0: the chain (as this node has it) has no such blocks.
    const subs = [1, 2, 3].map(() => obs.subscribe('broadcaster', { 'block.applied': () => undefined }, { from: 0 }));
    await waitFor(() => asked.length >= 5, 10_000, 'backfill requests');
    expect(asked).not.toContain(0);
    expect(asked[0]).toBe(1);
    await waitFor(() => b.broadcaster.backfills.counts.waiting === 2, 5000, 'all three subscribers');
    expect(b.broadcaster.backfills.counts).toEqual({ running: 1, waiting: 2 });
    await new Promise((r) => setTimeout(r, 1500));
    const status = b.broadcaster.status();
    expect(status.nodes).toEqual([expect.objectContaining({ state: 'healthy', failures: 0 })]);
    expect(status.problem).toBeNull();
    for (const s of subs) s.close();
    await waitFor(
      () => b.broadcaster.backfills.counts.running === 0 && b.broadcaster.backfills.counts.waiting === 0,
      5000,
      'the backfills to stop',
    );
    const after = asked.length;
    await new Promise((r) => setTimeout(r, 1500));
    expect(asked.length).toBe(after);
  }, 30_000);
});

describe('status when no node answers', () => {
  test('the broadcaster serves at once and its status names each node with its state and last error', async () => {
    const html = createServer((_req, res) => {
      res.writeHead(502, { 'content-type': 'text/html' });
      res.end('<html><body>502 Bad Gateway</body></html>');
    });
    await new Promise<void>((r) => html.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => html.close(() => r())));
    const refused = createServer();
    await new Promise<void>((r) => refused.listen(0, '127.0.0.1', r));
    const refusedUrl = `http://127.0.0.1:${(refused.address() as AddressInfo).port}`;
    await new Promise((r) => refused.close(r)); // nothing listens there any more
    const htmlUrl = `http://127.0.0.1:${(html.address() as AddressInfo).port}`;
    const { config, cleanup } = testConfig([refusedUrl, htmlUrl]); // no checkpoint, STEEM_START_BLOCK=irreversible
    cleanups.push(cleanup);
    const { logger } = keptLogger('broadcaster');
    const b = await startBroadcaster(config, logger);
    cleanups.push(() => b.stop());
    const obs = observer(config, logger);
    cleanups.push(() => obs.close());
    await waitFor(() => b.broadcaster.status().nodes.every((n) => n.lastError !== null), 5000, 'every node to have failed');
    const status = await obs.call('broadcaster.status.get', {}, { timeoutMs: 2000 });
    expect(status).toMatchObject({ current_block: null, head_block: null });
    expect(status.problem).toMatch(/^waiting for a node to resolve STEEM_START_BLOCK=irreversible; no healthy node: /);
    expect(status.problem).toContain(
      `${refusedUrl} healthy (ECONNREFUSED)`.replace(' healthy', status.nodes[0]!.state === 'open' ? ' open' : ' healthy'),
    );
    expect(status.problem).toMatch(/HTTP 502 \(HTML page\)/);
    expect(status.nodes.map((n) => [n.url, n.lastError])).toEqual([
      [refusedUrl, 'ECONNREFUSED'],
      [htmlUrl, 'HTTP 502 (HTML page)'],
    ]);
  }, 20_000);
});
