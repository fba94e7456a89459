import steem from 'steem';

import { condenserBlock, DevNode } from '../src';

describe('steem-js (as bots use it) against devnode', () => {
  let node: DevNode;
  const requested: number[] = [];
  beforeAll(async () => {
    // The head starts at the last real block and moves on into synthetic blocks every 50 ms.
    node = await DevNode.start({
      intervalMs: 50,
      initialBlocks: 995,
      synthetic: 400,
      opsPerBlock: [2, 5],
      onCall: (method, params) => {
        if (method === 'condenser_api.get_block') requested.push((params as number[])[0] as number);
      },
    });
    steem.api.setOptions({ url: node.url });
  });
  afterAll(() => node.stop());

  test('getDynamicGlobalProperties, getBlock and getOpsInBlock read what devnode serves', async () => {
    const props = await steem.api.getDynamicGlobalPropertiesAsync();
    expect(props.head_block_number).toBeGreaterThanOrEqual(1_000_994);
    const block = await steem.api.getBlockAsync(1_000_012);
    expect(block).toEqual(condenserBlock(node.chain.block(1_000_012) as never));
    const ops = (await steem.api.getOpsInBlockAsync(1_000_012, false)) as Array<{ op: [string, unknown] }>;
    expect(ops.map((o) => o.op)).toEqual(condenserBlock(node.chain.block(1_000_012) as never).transactions.flatMap((t) => t.operations));
  });

  test('streamOperations delivers exactly the ops of the blocks it fetched', async () => {
    requested.length = 0;
    const streamed: string[] = [];
    const release = steem.api.streamOperations('head', (err, op) => {
      if (!err) streamed.push(JSON.stringify(op));
    });
    await new Promise((r) => setTimeout(r, 2500));
    release();
    await new Promise((r) => setTimeout(r, 300)); // let fetches in flight land
    const blocks = [...new Set(requested)].sort((a, b) => a - b);
    expect(blocks.length).toBeGreaterThan(20);
    expect(blocks[blocks.length - 1]! - blocks[0]! + 1).toBe(blocks.length); // contiguous
    expect(blocks.some((n) => n > 1_000_999)).toBe(true); // into the synthetic blocks
    const expected = blocks.flatMap((n) =>
      condenserBlock(node.chain.block(n) as never).transactions.flatMap((t) => t.operations.map((op) => JSON.stringify(op))),
    );
    expect(streamed.length).toBeGreaterThan(40);
    expect([...streamed].sort()).toEqual([...expected].sort());
  });
});
