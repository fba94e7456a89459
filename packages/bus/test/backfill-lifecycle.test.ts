import { join } from 'node:path';

import type { WireEvent } from '../src';
import { Bus, IpcTransport, MemoryTransport } from '../src';
import { memoryLogger, tempDir, type TestCatalogue, testCatalogue, waitFor } from './helpers';

let tmp: ReturnType<typeof tempDir>;
let buses: Array<Bus<TestCatalogue>> = [];
beforeEach(() => {
  tmp = tempDir();
  buses = [];
});
afterEach(async () => {
  await Promise.all(buses.map((b) => b.close()));
  tmp.cleanup();
});

function bus(app: string, kind: 'ipc' | 'memory', hub?: MemoryTransport['hub']): Bus<TestCatalogue> {
  const { logger } = memoryLogger(app);
  const transport = kind === 'ipc' ? new IpcTransport({ socketDir: join(tmp.dir, 'run'), logger }) : new MemoryTransport(hub);
  const b = new Bus({ app, catalogue: testCatalogue, transport, logger, taskTimeoutMs: 2000 });
  buses.push(b);
  return b;
}

/**
 * A backfill that gives one event, then waits like a fetcher retrying a block no node has: it
 * ends only when its signal aborts.
 */
function stuckBackfill(state: { started: number; ended: number; aborted: number }) {
  return async function* (after: number, _until: number, _names: ReadonlySet<string>, signal?: AbortSignal): AsyncGenerator<WireEvent> {
    state.started++;
    try {
      yield { name: 'tick.happened', payload: { n: after + 1 }, tid: 't', pos: after + 1, ts: 0 };
      await new Promise<void>((resolve) => signal?.addEventListener('abort', () => resolve(), { once: true }));
      if (signal?.aborted) state.aborted++;
    } finally {
      state.ended++;
    }
  };
}

describe.each(['ipc', 'memory'] as const)('backfills over the %s transport', (kind) => {
  test('a subscriber that leaves during its backfill stops it (the signal aborts), each time it comes and goes', async () => {
    const transport = new MemoryTransport();
    const alpha = bus('alpha', kind, transport.hub);
    const state = { started: 0, ended: 0, aborted: 0 };
    await alpha.serve({ floor: 1000, backfill: stuckBackfill(state) });
    for (let i = 1; i <= 3; i++) {
      const got: number[] = [];
      const client = bus(`client${i}`, kind, transport.hub);
      const sub = client.subscribe('alpha', { 'tick.happened': (p) => void got.push(p.n) }, { from: 0 });
      await waitFor(() => got.length === 1, 5000, 'the first backfilled event');
      sub.close();
      await client.close();
      await waitFor(() => state.ended === i, 5000, `backfill ${i} to end`);
    }
    expect(state).toEqual({ started: 3, ended: 3, aborted: 3 });
  });

  test('a subscriber resuming before the floor is known waits for it, then gets backfill and live events', async () => {
    const transport = new MemoryTransport();
    const alpha = bus('alpha', kind, transport.hub);
    let settle: (floor: number) => void = () => undefined;
    const floor = new Promise<number>((r) => (settle = r));
    await alpha.serve({
      floor,
      backfill: async function* (after, until) {
        for (let n = after + 1; n <= until; n++) yield { name: 'tick.happened', payload: { n }, tid: 'refetched', pos: n, ts: 0 };
      },
    });
    const got: number[] = [];
    bus('client', kind, transport.hub).subscribe('alpha', { 'tick.happened': (p) => void got.push(p.n) }, { from: 5 });
    await new Promise((r) => setTimeout(r, 200));
    expect(got).toEqual([]);
    settle(10);
    await floor;
    for (let n = 11; n <= 12; n++) await alpha.publish('tick.happened', { n }, { position: n });
    await waitFor(() => got.length === 7, 5000, '7 events');
    expect(got).toEqual([6, 7, 8, 9, 10, 11, 12]);
  });
});
