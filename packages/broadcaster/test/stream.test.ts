import { chainOpNames } from '@steem-bot/config';
import { DevNode, type FaultSpec, loadRealBlocks } from '@steem-bot/devnode';

import { APPLIED_INDEX, positionOf } from '../src';
import { keptLogger, observer, startBroadcaster, testConfig, waitFor } from './harness';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function devnode(options: ConstructorParameters<typeof Object>[0] & Parameters<typeof DevNode.start>[0]): Promise<DevNode> {
  const node = await DevNode.start(options);
  cleanups.push(() => node.stop());
  return node;
}

describe('broadcaster against devnode', () => {
  test('the real blocks 1,000,000-1,000,999 produce exactly the op counts per type found in the fixture file', async () => {
    const expected = new Map<string, number>();
    for (const b of loadRealBlocks())
      for (const t of b.transactions)
        for (const op of t.operations) {
          const name = op.type.replace(/_operation$/, '');
          expected.set(name, (expected.get(name) ?? 0) + 1);
        }
    const node = await devnode({ intervalMs: 0, libDistance: 0 });
    const { config, cleanup } = testConfig([node.url], { STEEM_START_BLOCK: '1000000' });
    cleanups.push(cleanup);
    const { logger } = keptLogger('broadcaster');
    const counts = new Map<string, number>();
    const blocks: number[] = [];
    const obs = observer(config, logger);
    cleanups.push(() => obs.close());
    const handlers = Object.fromEntries(chainOpNames.map((n) => [n, () => void counts.set(n, (counts.get(n) ?? 0) + 1)]));
    obs.subscribe(
      'broadcaster',
      { ...handlers, 'block.applied': (p) => void blocks.push(p.block_num) },
      { from: positionOf(999_999, APPLIED_INDEX) },
    );
    const b = await startBroadcaster(config, logger);
    cleanups.push(() => b.stop());
    await waitFor(() => blocks.length === 1000, 30_000, '1000 blocks');
    expect(Object.fromEntries(counts)).toEqual(Object.fromEntries(expected));
    expect(blocks).toEqual(Array.from({ length: 1000 }, (_, i) => 1_000_000 + i));
    const status = await obs.call('broadcaster.status.get', {});
    expect(status).toMatchObject({ mode: 'irreversible', current_block: 1_000_999, irreversible_block: 1_000_999, lag_blocks: 0 });
  });

  test('three devnodes with every fault mode: the published block ids are exactly the chain, no gap, no repeat', async () => {
    const common = { intervalMs: 10, initialBlocks: 1000, synthetic: 600, opsPerBlock: [5, 20] as const, libDistance: 5, seed: 42 };
    const a: FaultSpec[] = [
      { kind: 'http502', rate: 0.15 },
      { kind: 'null-block', rate: 0.02, method: 'get_block' },
      { kind: 'malformed', rate: 0.15 },
    ];
    const b: FaultSpec[] = [
      { kind: 'timeout', rate: 0.1, method: 'get_block' },
      { kind: 'wrong-block', rate: 0.02, method: 'get_block' },
      { kind: 'reset', rate: 0.15 },
      { kind: 'rpc-error', rate: 0.02 },
    ];
    const c: FaultSpec[] = [
      { kind: 'stale', fromBlock: 1_001_100 },
      { kind: 'jussi-error', rate: 0.02 },
      { kind: 'http503', rate: 0.2 },
      { kind: 'latency', ms: 30, rate: 0.3 },
    ];
    const nodes = [
      await devnode({ ...common, faults: a }),
      await devnode({ ...common, faults: b }),
      await devnode({ ...common, faults: c }),
    ];
    const { config, cleanup } = testConfig(
      nodes.map((n) => n.url),
      {
        STEEM_START_BLOCK: '1000000',
        BROADCASTER_RPC_TIMEOUT_MS: '400',
        BROADCASTER_STALE_BLOCKS: '20',
        // A block every 10 ms here: 'not moving for' scaled down like the stale distance (60 s and 30 blocks by default).
        BROADCASTER_STALE_MS: '1000',
        BROADCASTER_BATCH: '20',
      },
    );
    cleanups.push(cleanup);
    const { logger, lines } = keptLogger('broadcaster');
    const seen: Array<[number, string]> = [];
    const obs = observer(config, logger);
    cleanups.push(() => obs.close());
    obs.subscribe(
      'broadcaster',
      { 'block.applied': (p) => void seen.push([p.block_num, p.block_id]) },
      { from: positionOf(999_999, APPLIED_INDEX) },
    );
    const bc = await startBroadcaster(config, logger);
    cleanups.push(() => bc.stop());
    const last = 1_001_400;
    // Slower than before under load: in irreversible mode a second node confirms every block.
    await waitFor(() => (seen.at(-1)?.[0] ?? 0) >= last, 110_000, `block ${last}`);
    const reference = nodes[0]!.chain;
    const upTo = seen.findIndex(([n]) => n === last);
    expect(seen.slice(0, upTo + 1)).toEqual(
      Array.from({ length: last - 1_000_000 + 1 }, (_, i) => [1_000_000 + i, reference.block(1_000_000 + i)?.block_id]),
    );
    expect(lines.some((l) => typeof l.msg === 'string' && /is stale/.test(l.msg))).toBe(true);
    // Every fault was served at least once, and none of them let a wrong block through.
    const served = nodes.map((n) => Object.keys(n.stats.faults).sort());
    expect(served).toEqual(
      [a, b, c].map((faults) =>
        faults
          .map((f) => f.kind)
          .filter((k) => k !== 'stale')
          .sort(),
      ),
    );
  }, 150_000);

  test('head mode: a fork gives block.reverted, then the replacement blocks, ending on the canonical chain', async () => {
    const node = await devnode({ intervalMs: 0, libDistance: 5, faults: [{ kind: 'fork', fromBlock: 1_000_990, depth: 3, forMs: 2500 }] });
    const { config, cleanup } = testConfig([node.url], { STEEM_START_BLOCK: '1000980', STEEM_MODE: 'head' });
    cleanups.push(cleanup);
    const { logger } = keptLogger('broadcaster');
    const applied = new Map<number, string>();
    const reverted: Array<[number, string, string | null]> = [];
    const order: string[] = [];
    const obs = observer(config, logger);
    cleanups.push(() => obs.close());
    obs.subscribe(
      'broadcaster',
      {
        'block.applied': (p) => {
          applied.set(p.block_num, p.block_id);
          order.push(`applied ${p.block_num}`);
        },
        'block.reverted': (p) => {
          reverted.push([p.block_num, p.block_id, p.replaced_by]);
          applied.delete(p.block_num);
          order.push(`reverted ${p.block_num}`);
        },
      },
      { from: positionOf(1_000_979, APPLIED_INDEX) },
    );
    const forked = [1_000_990, 1_000_991, 1_000_992].map((n) => node.chain.block(n)?.block_id);
    const bc = await startBroadcaster(config, logger);
    cleanups.push(() => bc.stop());
    await waitFor(() => applied.get(1_000_999) !== undefined, 30_000, 'block 1000999 after the fork');
    expect(reverted.map(([n, id]) => [n, id])).toEqual([
      [1_000_992, forked[2]],
      [1_000_991, forked[1]],
      [1_000_990, forked[0]],
    ]);
    expect(order.indexOf('reverted 1000990')).toBeGreaterThan(order.indexOf('applied 1000992'));
    for (let n = 1_000_980; n <= 1_000_999; n++) expect([n, applied.get(n)]).toEqual([n, node.chain.block(n)?.block_id]);
  });
});
