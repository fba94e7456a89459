import { DevNode } from '../src';
import { call, rpc } from './helpers';

let node: DevNode;
beforeAll(async () => (node = await DevNode.start({ intervalMs: 0 })));
afterAll(() => node.stop());

describe('JSON-RPC protocol', () => {
  test('both request forms and every method answer', async () => {
    const modern = await rpc(node.url, call('condenser_api.get_block', [1_000_000]));
    const legacy = await rpc(node.url, { jsonrpc: '2.0', method: 'call', params: ['condenser_api', 'get_block', [1_000_000]], id: 1 });
    expect(legacy.json).toEqual(modern.json);
    const header = (await rpc(node.url, call('condenser_api.get_block_header', [1_000_000]))).json as { result: Record<string, unknown> };
    expect(Object.keys(header.result).sort()).toEqual(['extensions', 'previous', 'timestamp', 'transaction_merkle_root', 'witness']);
    const ops = (await rpc(node.url, call('condenser_api.get_ops_in_block', [1_000_012, false]))).json as { result: unknown[] };
    expect(ops.result.length).toBeGreaterThan(0);
    expect((await rpc(node.url, call('condenser_api.get_ops_in_block', [1_000_012, true]))).json).toMatchObject({ result: [] });
    const api = (await rpc(node.url, call('block_api.get_block', { block_num: 1_000_001 }))).json as {
      result: { block: { block_id: string } };
    };
    expect(api.result.block.block_id.startsWith('000f4241')).toBe(true);
    const db = (await rpc(node.url, call('database_api.get_dynamic_global_properties', {}))).json as { result: Record<string, unknown> };
    expect(db.result.current_supply).toEqual({ amount: expect.any(String), precision: 3, nai: '@@000000021' });
  });

  test('batches up to 50 answer in order; beyond that, jussi-style error; an empty batch is an error', async () => {
    const batch = Array.from({ length: 50 }, (_, i) => call('condenser_api.get_block', [1_000_000 + i], i));
    const res = (await rpc(node.url, batch)).json as Array<{ id: number; result: { block_id: string } }>;
    expect(res.map((r) => r.id)).toEqual(batch.map((b) => b.id));
    expect(res[49]?.result.block_id.startsWith((1_000_049).toString(16).padStart(8, '0'))).toBe(true);
    expect((await rpc(node.url, [...batch, call('condenser_api.get_block', [1])])).json).toMatchObject({
      error: { code: -32600, data: { message: /batch size is too large: 51 > 50/ } },
    });
    expect((await rpc(node.url, [])).json).toMatchObject({ error: { code: -32600 } });
  });

  test('bad requests get JSON-RPC errors, never a crash', async () => {
    const cases: Array<[unknown, number]> = [
      ['{"jsonrpc": "2.0", "method": ', -32700],
      ['not json at all', -32700],
      [call('condenser_api.nope', []), -32601],
      [call('condenser_api.get_block', ['abc']), -32000],
      [call('condenser_api.get_block', [-1]), -32000],
      [call('condenser_api.get_block', { n: 1 }), -32602],
      [call('condenser_api.get_block', []), -32602],
      [call('condenser_api.get_ops_in_block', [1_000_000, 'yes']), -32602],
      [call('block_api.get_block', [1]), -32602],
      [{ jsonrpc: '2.0', method: 42, id: 1 }, -32600],
      [{ jsonrpc: '2.0', method: 'call', params: 'x', id: 1 }, -32602],
      ['7', -32600],
      ['[1, 2]', -32600],
      [call('condenser_api.get_block', [JSON.parse('['.repeat(1000) + ']'.repeat(1000))]), -32000],
      ['['.repeat(100_000) + ']'.repeat(100_000), -32600],
    ];
    for (const [body, code] of cases) {
      const res = await rpc(node.url, body);
      const error = (Array.isArray(res.json) ? res.json[0] : res.json) as { error?: { code: number } };
      expect([typeof body === 'string' ? body.slice(0, 40) : JSON.stringify(body).slice(0, 60), error.error?.code]).toEqual([
        typeof body === 'string' ? body.slice(0, 40) : JSON.stringify(body).slice(0, 60),
        code,
      ]);
    }
    const huge = await rpc(node.url, JSON.stringify(call('condenser_api.get_block', ['x'.repeat(2 * 1024 * 1024)])));
    expect(huge.status).toBe(413);
    expect(huge.json).toMatchObject({ error: { code: -32600 } });
    expect((await rpc(node.url, call('condenser_api.get_block', [1_000_000]))).status).toBe(200);
  });
});
