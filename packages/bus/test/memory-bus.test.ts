import { AppError, currentTid } from '@steem-bot/config';

import { Bus, MemoryHub, MemoryTransport } from '../src';
import { memoryLogger, type TestCatalogue, testCatalogue, waitFor } from './helpers';

function pair(replayBytes?: number): { hub: MemoryHub; alpha: Bus<TestCatalogue>; client: Bus<TestCatalogue> } {
  const hub = new MemoryHub();
  const { logger } = memoryLogger();
  const make = (app: string): Bus<TestCatalogue> =>
    new Bus({ app, catalogue: testCatalogue, transport: new MemoryTransport(hub, replayBytes), logger, taskTimeoutMs: 200 });
  return { hub, alpha: make('alpha'), client: make('client') };
}

describe('bus over the in-memory transport', () => {
  test('events reach subscribers in order with their envelope', async () => {
    const { alpha, client } = pair();
    await alpha.serve({ floor: 0 });
    const got: Array<[number, number]> = [];
    client.subscribe('alpha', { 'tick.happened': (p, ctx) => void got.push([p.n, ctx.pos]) }, { from: 0 });
    for (let n = 1; n <= 100; n++) await alpha.publish('tick.happened', { n }, { position: n * 10 });
    await waitFor(() => got.length === 100);
    expect(got).toEqual(Array.from({ length: 100 }, (_, i) => [i + 1, (i + 1) * 10]));
  });

  test('a subscriber resuming with `from` gets only what came after it, then live events', async () => {
    const { alpha, client } = pair();
    await alpha.serve({ floor: 0 });
    for (let n = 1; n <= 10; n++) await alpha.publish('tick.happened', { n }, { position: n });
    const got: number[] = [];
    client.subscribe('alpha', { 'tick.happened': (p) => void got.push(p.n) }, { from: 6 });
    await alpha.publish('tick.happened', { n: 11 }, { position: 11 });
    await waitFor(() => got.length === 5);
    expect(got).toEqual([7, 8, 9, 10, 11]);
  });

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

  test('tasks are acknowledged with the reply, deduplicated by idempotency key, and carry the TID', async () => {
    const { alpha, client } = pair();
    let runs = 0;
    const tids: Array<string | undefined> = [];
    alpha.handle('alpha.job.run', (p, ctx) => {
      runs++;
      tids.push(ctx.tid, currentTid());
      return { doubled: p.n * 2 };
    });
    await alpha.serve();
    await expect(client.call('alpha.job.run', { n: 21 })).resolves.toEqual({ doubled: 42 });
    await client.send('alpha.job.run', { n: 1 }, { idempotencyKey: 'k1' });
    await client.send('alpha.job.run', { n: 1 }, { idempotencyKey: 'k1' });
    expect(runs).toBe(2);
    expect(tids[0]).toMatch(/^[0-9a-f]{16}$/);
    expect(tids[0]).toBe(tids[1]);
  });

  test('bad names and payloads are refused with stable codes', async () => {
    const { alpha, client } = pair();
    alpha.handle('alpha.job.run', (p) => ({ doubled: p.n }));
    await alpha.serve();
    const code = (p: Promise<unknown>): Promise<unknown> =>
      p.then(
        () => 'resolved',
        (e: AppError) => e.code,
      );
    // @ts-expect-error an unknown task name does not compile
    await expect(code(client.call('alpha.nope.run', {}))).resolves.toBe('ERR_BUS_UNKNOWN_NAME');
    // @ts-expect-error a wrong payload does not compile
    await expect(code(client.call('alpha.job.run', { n: 'x' }))).resolves.toBe('ERR_BUS_INVALID_PAYLOAD');
    // @ts-expect-error an unknown event name does not compile
    await expect(code(alpha.publish('tick.vanished', {}))).resolves.toBe('ERR_BUS_UNKNOWN_NAME');
    await expect(code(client.call('beta.job.run', { n: 1 }, { timeoutMs: 50 }))).resolves.toBe('ERR_BUS_TIMEOUT');
    expect(() => client.handle('alpha.job.run', () => ({ doubled: 0 }))).toThrow(/cannot handle/);
    expect(() => client.subscribe('alpha', { ['tick.vanished' as 'comment']: () => undefined })).toThrow(/unknown event/);
  });

  test('send retries a task that timed out, with the same key, and the receiver runs it once', async () => {
    const { alpha, client } = pair();
    let runs = 0;
    alpha.handle('alpha.job.run', async (p) => {
      runs++;
      if (runs === 1) await new Promise((r) => setTimeout(r, 300)); // first ack comes too late
      return { doubled: p.n };
    });
    await alpha.serve();
    await client.send('alpha.job.run', { n: 1 }, { idempotencyKey: 'slow', timeoutMs: 100, attempts: 5 });
    expect(runs).toBe(1);
  });

  test('a failing subscriber handler is logged with the TID and later events still arrive', async () => {
    const hub = new MemoryHub();
    const { logger, lines } = memoryLogger();
    const alpha = new Bus({ app: 'alpha', catalogue: testCatalogue, transport: new MemoryTransport(hub), logger });
    const client = new Bus({ app: 'client', catalogue: testCatalogue, transport: new MemoryTransport(hub), logger });
    await alpha.serve({ floor: 0 });
    const got: number[] = [];
    client.subscribe(
      'alpha',
      {
        'tick.happened': (p) => {
          if (p.n === 2) throw new Error('boom');
          got.push(p.n);
        },
      },
      { from: 0 },
    );
    for (let n = 1; n <= 3; n++) await alpha.publish('tick.happened', { n }, { position: n, tid: `tid-${n}` });
    await waitFor(() => got.length === 2);
    expect(got).toEqual([1, 3]);
    expect(lines.find((l) => l.level === 50)).toMatchObject({ tid: 'tid-2', event: 'tick.happened' });
  });
});
