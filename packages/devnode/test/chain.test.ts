import { blockNumFromId, DevNode } from '../src';
import { call, rpc } from './helpers';

describe('chain time and synthetic continuation', () => {
  test('the head advances one block per interval, LIB trails it, and the props match what is served', async () => {
    let now = 1_000_000;
    const node = await DevNode.start({ intervalMs: 3000, libDistance: 15, initialBlocks: 20, now: () => now });
    try {
      const props = async (): Promise<Record<string, unknown>> =>
        (await rpc(node.url, call('condenser_api.get_dynamic_global_properties', []))).json as never;
      let p = (await props()).result as Record<string, unknown>;
      expect(p).toMatchObject({ head_block_number: 1_000_019, last_irreversible_block_num: 1_000_004 });
      now += 3000 * 10;
      p = (await props()).result as Record<string, unknown>;
      expect(p).toMatchObject({ head_block_number: 1_000_029, last_irreversible_block_num: 1_000_014 });
      const head = ((await rpc(node.url, call('condenser_api.get_block', [1_000_029]))).json as { result: Record<string, string> }).result;
      expect(p.head_block_id).toBe(head.block_id);
      expect(p.time).toBe(head.timestamp);
      expect((await rpc(node.url, call('condenser_api.get_block', [1_000_030]))).json).toEqual({ jsonrpc: '2.0', result: null, id: 1 });
      expect((await rpc(node.url, call('block_api.get_block', { block_num: 1_000_030 }))).json).toEqual({
        jsonrpc: '2.0',
        result: {},
        id: 1,
      });
    } finally {
      await node.stop();
    }
  });

  test('an empty tail: after the synthetic blocks the chain goes on, chained, with no ops of its own', async () => {
    const node = await DevNode.start({ intervalMs: 0, synthetic: 5, emptyTail: 4, seed: 3, opsPerBlock: [5, 5] });
    try {
      expect(node.chain.lastWithOps).toBe(1_001_004);
      expect(node.chain.last).toBe(1_001_008);
      expect(node.chain.block(1_001_004)?.transactions.flatMap((t) => t.operations)).toHaveLength(5);
      for (let n = 1_001_005; n <= 1_001_008; n++) {
        const block = node.chain.block(n);
        expect(block?.transactions).toEqual([]);
        expect(block?.previous).toBe(node.chain.block(n - 1)?.block_id);
      }
      expect(node.chain.block(1_001_009)).toBeNull();
    } finally {
      await node.stop();
    }
  });

  test('synthetic blocks are deterministic, chained by previous, numbered by their ids, with the op mix', async () => {
    const a = await DevNode.start({ intervalMs: 0, synthetic: 50, seed: 7, opsPerBlock: [50, 200] });
    const b = await DevNode.start({ intervalMs: 0, synthetic: 50, seed: 7, opsPerBlock: [50, 200] });
    try {
      let previous = (a.chain.block(1_000_999) as { block_id: string }).block_id;
      const types = new Map<string, number>();
      for (let n = 1_001_000; n < 1_001_050; n++) {
        const block = a.chain.block(n);
        expect(block).toEqual(b.chain.block(n));
        expect(blockNumFromId(block?.block_id ?? '')).toBe(n);
        expect(block?.previous).toBe(previous);
        const ops = block?.transactions.reduce((sum, t) => sum + t.operations.length, 0) ?? 0;
        expect(ops).toBeGreaterThanOrEqual(50);
        expect(ops).toBeLessThanOrEqual(200);
        for (const t of block?.transactions ?? []) for (const op of t.operations) types.set(op.type, (types.get(op.type) ?? 0) + 1);
        previous = block?.block_id ?? '';
      }
      for (const kind of ['vote_operation', 'comment_operation', 'custom_json_operation', 'transfer_operation'])
        expect(types.get(kind)).toBeGreaterThan(100);
      expect(a.chain.block(1_001_050)).toBeNull();
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });
});
