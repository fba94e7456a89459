import { DevNode, type FaultSpec, parseFault } from '../src';
import { call, rpc } from './helpers';

async function withNode(
  faults: FaultSpec[],
  fn: (node: DevNode) => Promise<void>,
  extra: { now?: () => number; intervalMs?: number; initialBlocks?: number } = {},
): Promise<void> {
  const node = await DevNode.start({ intervalMs: 0, faults, ...extra });
  try {
    await fn(node);
  } finally {
    await node.stop();
  }
}

const getBlock = (n: number): Record<string, unknown> => call('condenser_api.get_block', [n]);

describe('every fault mode, observed from a real HTTP client', () => {
  test('latency delays the answer', () =>
    withNode([{ kind: 'latency', ms: 300 }], async (node) => {
      const started = Date.now();
      expect((await rpc(node.url, getBlock(1_000_000))).status).toBe(200);
      expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    }));

  test('timeout never answers', () =>
    withNode([{ kind: 'timeout' }], async (node) => {
      await expect(
        fetch(node.url, { method: 'POST', body: JSON.stringify(getBlock(1_000_000)), signal: AbortSignal.timeout(500) }),
      ).rejects.toThrow(/abort|timeout/i);
    }));

  test('http502 sends the real Cloudflare HTML page; 503 and 429 (with Retry-After) send HTML too', async () => {
    await withNode([{ kind: 'http502' }], async (node) => {
      const res = await rpc(node.url, getBlock(1_000_000));
      expect(res.status).toBe(502);
      expect(res.text).toMatch(/<html[\s\S]*cloudflare/i);
      expect(res.json).toBeUndefined();
    });
    await withNode([{ kind: 'http503' }], async (node) => expect((await rpc(node.url, getBlock(1_000_000))).status).toBe(503));
    await withNode([{ kind: 'http429' }], async (node) => {
      const res = await fetch(node.url, { method: 'POST', body: JSON.stringify(getBlock(1_000_000)) });
      expect([res.status, res.headers.get('retry-after')]).toEqual([429, '1']);
    });
  });

  test('rpc-error answers -32003 with an FC exception; jussi-error answers 1100', async () => {
    await withNode([{ kind: 'rpc-error' }], async (node) => {
      const res = (await rpc(node.url, getBlock(1_000_000))).json as {
        error: { code: number; data: { stack: Array<{ format: string }> } };
      };
      expect(res.error.code).toBe(-32003);
      expect(res.error.data.stack[0]?.format).toMatch(/lock/);
    });
    await withNode([{ kind: 'jussi-error' }], async (node) => {
      expect((await rpc(node.url, getBlock(1_000_000))).json).toMatchObject({
        error: { code: 1100, message: 'Unable to decode upstream response' },
      });
    });
  });

  test('null-block answers null for a block that exists; wrong-block answers another block', async () => {
    await withNode([{ kind: 'null-block' }], async (node) =>
      expect((await rpc(node.url, getBlock(1_000_000))).json).toMatchObject({ result: null }),
    );
    await withNode([{ kind: 'wrong-block' }], async (node) => {
      const res = (await rpc(node.url, getBlock(1_000_010))).json as { result: { block_id: string } };
      expect(res.result.block_id.slice(0, 8)).toBe((1_000_011).toString(16).padStart(8, '0'));
    });
  });

  test('malformed sends truncated JSON with HTTP 200; reset drops the connection', async () => {
    await withNode([{ kind: 'malformed' }], async (node) => {
      const res = await rpc(node.url, getBlock(1_000_000));
      expect(res.status).toBe(200);
      expect(() => JSON.parse(res.text)).toThrow();
    });
    await withNode([{ kind: 'reset' }], async (node) => {
      await expect(fetch(node.url, { method: 'POST', body: JSON.stringify(getBlock(1_000_000)) })).rejects.toThrow();
    });
  });

  test('stale freezes the head from a block on, for a while, while the chain goes on', async () => {
    let now = 0;
    await withNode(
      [{ kind: 'stale', fromBlock: 1_000_005, forMs: 30_000 }],
      async (node) => {
        const head = async (): Promise<number> =>
          ((await rpc(node.url, call('condenser_api.get_dynamic_global_properties', []))).json as { result: { head_block_number: number } })
            .result.head_block_number;
        expect(await head()).toBe(1_000_000);
        now = 5 * 3000;
        expect(await head()).toBe(1_000_005);
        now = 10 * 3000;
        expect(await head()).toBe(1_000_005);
        expect((await rpc(node.url, getBlock(1_000_006))).json).toMatchObject({ result: null });
        now = 5 * 3000 + 30_000;
        expect(await head()).toBe(1_000_015);
      },
      { now: () => now, intervalMs: 3000, initialBlocks: 1 },
    );
  });

  test('fork serves another branch for a range, with the head at its tip, then the canonical chain', async () => {
    let now = 0;
    await withNode(
      [{ kind: 'fork', fromBlock: 1_000_010, depth: 3, forMs: 10_000 }],
      async (node) => {
        const id = async (n: number): Promise<string | undefined> =>
          ((await rpc(node.url, getBlock(n))).json as { result: { block_id: string; previous: string } | null }).result?.block_id;
        const canonical9 = await id(1_000_009);
        const forked10 = (await rpc(node.url, getBlock(1_000_010))).json as { result: { block_id: string; previous: string } };
        expect(forked10.result.previous).toBe(canonical9);
        expect(node.chain.head()).toBe(1_000_012);
        expect(await id(1_000_013)).toBeUndefined();
        now = 10_000;
        const canonical10 = await id(1_000_010);
        expect(canonical10).not.toBe(forked10.result.block_id);
        expect(canonical10?.slice(0, 8)).toBe(forked10.result.block_id.slice(0, 8));
        expect(await id(1_000_013)).toBeDefined();
      },
      { now: () => now, intervalMs: 0 },
    );
  });

  test('a rate hits about that share of requests, a method filter spares other methods, fromBlock delays it', async () => {
    await withNode([parseFault('http503,rate=0.3,method=get_block')], async (node) => {
      let failed = 0;
      for (let i = 0; i < 200; i++) if ((await rpc(node.url, getBlock(1_000_000))).status === 503) failed++;
      expect(failed).toBeGreaterThan(30);
      expect(failed).toBeLessThan(90);
      for (let i = 0; i < 20; i++) expect((await rpc(node.url, call('condenser_api.get_dynamic_global_properties', []))).status).toBe(200);
    });
    let now = 0;
    await withNode(
      [parseFault('http503,fromBlock=1000002')],
      async (node) => {
        expect((await rpc(node.url, getBlock(1_000_000))).status).toBe(200);
        now = 6000;
        expect((await rpc(node.url, getBlock(1_000_000))).status).toBe(503);
      },
      { now: () => now, intervalMs: 3000 },
    );
    expect(() => parseFault('meteor')).toThrow(/unknown fault "meteor"/);
    expect(() => parseFault('http502,rate=3')).toThrow(/rate must be a number in 0..1/);
  });
});
