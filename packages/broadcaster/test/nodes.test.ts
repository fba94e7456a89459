import { DevNode } from '@steem-bot/devnode';

import { AllNodesFailed, confirmedValue, NodeFailure, NodePool, rpcBatch } from '../src';
import { keptLogger } from './harness';

const nodes: DevNode[] = [];
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.stop()));
});
async function node(options: Parameters<typeof DevNode.start>[0]): Promise<DevNode> {
  const n = await DevNode.start(options);
  nodes.push(n);
  return n;
}
const getBlock = (n: number): { method: string; params: unknown } => ({ method: 'condenser_api.get_block', params: [n] });

describe('rpcBatch', () => {
  test('turns every way a node fails into a NodeFailure of the right kind', async () => {
    const kinds: Array<[Parameters<typeof DevNode.start>[0], string, RegExp]> = [
      [{ faults: [{ kind: 'http502' }] }, 'http', /HTTP 502 \(HTML page\)/],
      [{ faults: [{ kind: 'malformed' }] }, 'json', /invalid JSON/],
      [{ faults: [{ kind: 'timeout' }] }, 'timeout', /no answer within 300 ms/],
      [{ faults: [{ kind: 'reset' }] }, 'network', /./],
      [{ faults: [{ kind: 'rpc-error' }] }, 'rpc', /-32003/],
    ];
    for (const [options, kind, message] of kinds) {
      const n = await node({ intervalMs: 0, ...options });
      const err = await rpcBatch(n.url, [getBlock(1_000_000)], 300).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NodeFailure);
      expect([kind, (err as NodeFailure).kind, (err as NodeFailure).message]).toEqual([kind, kind, expect.stringMatching(message)]);
    }
  });

  test('a batch with some failed calls keeps the good results and marks the others', async () => {
    const n = await node({ intervalMs: 0 });
    const results = await rpcBatch(n.url, [getBlock(1_000_000), { method: 'nope.nope', params: [] }], 1000);
    expect((results[0] as { block_id: string }).block_id.startsWith('000f4240')).toBe(true);
    expect(results[1]).toBeInstanceOf(NodeFailure);
  });
});

describe('NodePool', () => {
  test('opens a failing node after 3 failures, uses the next one, and says so once each way', async () => {
    const bad = await node({ intervalMs: 0, faults: [{ kind: 'http503', forMs: 300 }] });
    const good = await node({ intervalMs: 0 });
    const { logger, lines } = keptLogger('broadcaster');
    const pool = new NodePool([bad.url, good.url], { timeoutMs: 500, staleBlocks: 10, staleMs: 10_000, cooldownMs: 400, logger });
    const accept = (_r: unknown[], url: string): { url: string } => ({ url }); // a string would mean 'unusable'
    for (let i = 0; i < 5; i++) expect(await pool.request([getBlock(1_000_000)], accept)).toEqual({ url: good.url });
    expect(pool.health()[0]).toMatchObject({ state: 'open', failures: 3, lastError: 'HTTP 503 (HTML page)' });
    await new Promise((r) => setTimeout(r, 700)); // cool-down over, and the node is fine again
    expect(await pool.request([getBlock(1_000_000)], accept)).toEqual({ url: bad.url });
    const changes = lines.filter((l) => l.component === 'nodes').map((l) => l.msg);
    expect(changes).toEqual([expect.stringMatching(/failing \(HTTP 503.*leaving it for 0 s/), expect.stringMatching(/recovered/)]);
  });

  test('leaves a node whose head is behind or frozen as stale, and takes it back when it catches up', async () => {
    let now = 0;
    const clock = (): number => now;
    const fresh = await node({ intervalMs: 1000, initialBlocks: 100, now: clock });
    const frozen = await node({ intervalMs: 1000, initialBlocks: 100, now: clock, faults: [{ kind: 'stale', forMs: 30_000 }] });
    const { logger } = keptLogger('broadcaster');
    const pool = new NodePool([frozen.url, fresh.url], { timeoutMs: 500, staleBlocks: 10, staleMs: 60_000, logger, now: clock });
    await pool.pollHeads();
    expect(pool.health().map((h) => h.state)).toEqual(['healthy', 'healthy']);
    now = 20_000;
    await pool.pollHeads();
    // Two nodes 20 blocks apart, no majority: the one ahead cannot move the head alone (it might be lying).
    expect(pool.health().map((h) => [h.state, h.head])).toEqual([
      ['healthy', 1_000_099],
      ['healthy', 1_000_119],
    ]);
    expect(pool.best()).toEqual({ head: 1_000_099, lib: 1_000_084 });
    now = 31_000;
    await pool.pollHeads();
    expect(pool.health().map((h) => h.state)).toEqual(['healthy', 'healthy']);
  });

  test('three nodes: one far ahead is suspect and moves nothing; one behind, or frozen while the others move, is stale', async () => {
    let now = 0;
    const clock = (): number => now;
    const a = await node({ intervalMs: 1000, initialBlocks: 100, now: clock });
    const b = await node({ intervalMs: 1000, initialBlocks: 100, now: clock });
    const frozen = await node({ intervalMs: 1000, initialBlocks: 100, now: clock, faults: [{ kind: 'stale' }] });
    const { logger, lines } = keptLogger('broadcaster');
    const pool = new NodePool([a.url, b.url, frozen.url], { timeoutMs: 500, staleBlocks: 10, staleMs: 5_000, logger, now: clock });
    await pool.pollHeads();
    now = 8_000; // frozen has not moved for 8 s while a and b did, by 8 blocks (within staleBlocks)
    await pool.pollHeads();
    expect(pool.health().map((h) => [h.state, h.head])).toEqual([
      ['healthy', 1_000_107],
      ['healthy', 1_000_107],
      ['stale', 1_000_099],
    ]);
    expect(lines.some((l) => /is stale \(head 1000099, agreed head 1000107\)/.test(String(l.msg)))).toBe(true);
    expect(pool.best()).toEqual({ head: 1_000_107, lib: 1_000_092 });
  });

  test('the agreed value is the highest a second node confirms', () => {
    expect(confirmedValue([])).toBeUndefined();
    expect(confirmedValue([5])).toBe(5);
    expect(confirmedValue([5, 1005])).toBe(5);
    expect(confirmedValue([100, 1100, 99])).toBe(100);
    expect(confirmedValue([100, 100, 1100, 99])).toBe(100);
  });

  test('when every node fails, says which failed how', async () => {
    const a = await node({ intervalMs: 0, faults: [{ kind: 'http502' }] });
    const b = await node({ intervalMs: 0, faults: [{ kind: 'null-block' }] });
    const { logger } = keptLogger('broadcaster');
    const pool = new NodePool([a.url, b.url], { timeoutMs: 500, staleBlocks: 10, staleMs: 10_000, logger });
    const err = await pool.request([getBlock(1_000_000)], (r) => (r[0] === null ? 'null block' : r)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AllNodesFailed);
    expect((err as AllNodesFailed).reasons).toEqual([expect.stringMatching(/HTTP 502/), expect.stringMatching(/null block/)]);
  });
});
