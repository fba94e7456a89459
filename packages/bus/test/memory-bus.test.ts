import { Bus, MemoryHub, MemoryTransport } from '../src';
import { transportContract } from './contract';
import { memoryLogger, type TestCatalogue, testCatalogue, waitFor } from './helpers';

function pair(replayBytes?: number): { hub: MemoryHub; alpha: Bus<TestCatalogue>; client: Bus<TestCatalogue> } {
  const hub = new MemoryHub();
  const { logger } = memoryLogger();
  const make = (app: string): Bus<TestCatalogue> =>
    new Bus({ app, catalogue: testCatalogue, transport: new MemoryTransport(hub, replayBytes), logger, taskTimeoutMs: 200 });
  return { hub, alpha: make('alpha'), client: make('client') };
}

describe('the transport contract in memory', () => {
  transportContract(() => {
    const hub = new MemoryHub();
    return { transport: () => new MemoryTransport(hub), cleanup: () => Promise.resolve(), unserved: 'ERR_BUS_TIMEOUT', slowMs: 100 };
  });
});

describe('bus over the in-memory transport', () => {
  test('resuming from before the window gives a gap signal, or backfill when the app has a source', async () => {
    const { alpha, client } = pair(200); // room for a few events only
    await alpha.serve({ floor: 0 });
    for (let n = 1; n <= 20; n++) await alpha.publish('tick.happened', { n }, { position: n });
    const gaps: Array<[number | null, number]> = [];
    const got: number[] = [];
    client.subscribe('alpha', { 'tick.happened': (p) => void got.push(p.n) }, { from: 2, onGap: (a, r) => void gaps.push([a, r]) });
    await waitFor(() => got.includes(20));
    expect(gaps).toHaveLength(1);
    const [after, resumeAt] = gaps[0] as [number, number];
    expect(after).toBe(2);
    expect(got[0]).toBe(resumeAt + 1);
    expect(got).toEqual(Array.from({ length: 20 - resumeAt }, (_, i) => resumeAt + 1 + i));

    const hub2 = new MemoryHub();
    const { logger } = memoryLogger();
    const beta = new Bus({ app: 'beta', catalogue: testCatalogue, transport: new MemoryTransport(hub2, 200), logger });
    await beta.serve({
      floor: 0,
      backfill: async function* (after, until) {
        for (let n = after + 1; n <= until; n++) yield { name: 'tick.happened', payload: { n }, tid: 'refetched', pos: n, ts: 0 };
      },
    });
    for (let n = 1; n <= 20; n++) await beta.publish('tick.happened', { n }, { position: n });
    const all: number[] = [];
    new Bus({ app: 'c', catalogue: testCatalogue, transport: new MemoryTransport(hub2), logger }).subscribe(
      'beta',
      { 'tick.happened': (p) => void all.push(p.n) },
      { from: 2 },
    );
    await waitFor(() => all.includes(20));
    expect(all).toEqual(Array.from({ length: 18 }, (_, i) => i + 3));
  });
});
