import { AppError, currentTid, extendCatalogue } from '@steem-bot/config';
import { z } from 'zod';

import { Bus, type Transport } from '../src';
import { memoryLogger, type TestCatalogue, testCatalogue, waitFor } from './helpers';

/** How a transport under test is made: one per app (sharing what they must), and torn down. */
export interface ContractSetup {
  transport(app: string): Transport;
  /** Called after each test with the apps it made. */
  cleanup(apps: readonly string[]): Promise<void>;
  /** What sending to an app that never served gives: a timeout, or a fast failure. */
  unserved: 'ERR_BUS_TIMEOUT' | 'ERR_BUS_UNKNOWN_APP';
  /** A task timeout that a first answer reliably beats, for the retry test. */
  slowMs: number;
}

/**
 * The contract every transport keeps, as the Bus sees it: ordering, resume by position, tasks
 * acknowledged with their reply, dedupe by key, TIDs, clear errors. Run by memory-bus.test.ts and
 * amqp-bus.test.ts (the node-ipc transport has its own process-level suite, ipc-bus.test.ts).
 */
export function transportContract(setup: () => ContractSetup): void {
  let s: ContractSetup;
  let buses: Array<Bus<TestCatalogue>> = [];

  beforeEach(() => {
    s = setup();
    buses = [];
  });
  afterEach(async () => {
    await Promise.all(buses.map((b) => b.close()));
    await s.cleanup(buses.map((b) => b.app));
  });

  function bus(app: string, logger = memoryLogger(app).logger): Bus<TestCatalogue> {
    const b = new Bus({ app, catalogue: testCatalogue, transport: s.transport(app), logger, taskTimeoutMs: 2_000 });
    buses.push(b);
    return b;
  }

  test('events reach subscribers in order with their envelope', async () => {
    const alpha = bus('alpha');
    const client = bus('client');
    await alpha.serve({ floor: 0 });
    const got: Array<[number, number]> = [];
    await client.subscribe('alpha', { 'tick.happened': (p, ctx) => void got.push([p.n, ctx.pos]) }, { from: 0 }).ready;
    for (let n = 1; n <= 100; n++) await alpha.publish('tick.happened', { n }, { position: n * 10 });
    await waitFor(() => got.length === 100);
    expect(got).toEqual(Array.from({ length: 100 }, (_, i) => [i + 1, (i + 1) * 10]));
  });

  test('a subscriber resuming with `from` gets only what came after it, then live events', async () => {
    const alpha = bus('alpha');
    const client = bus('client');
    await alpha.serve({ floor: 0 });
    for (let n = 1; n <= 10; n++) await alpha.publish('tick.happened', { n }, { position: n });
    const got: number[] = [];
    await client.subscribe('alpha', { 'tick.happened': (p) => void got.push(p.n) }, { from: 6 }).ready;
    await alpha.publish('tick.happened', { n: 11 }, { position: 11 });
    await waitFor(() => got.length === 5);
    expect(got).toEqual([7, 8, 9, 10, 11]);
  });

  test('a publisher refuses positions at or below its head, all or none', async () => {
    const alpha = bus('alpha');
    await alpha.serve({ floor: 5 });
    const code = (p: Promise<unknown>): Promise<unknown> =>
      p.then(
        () => 'resolved',
        (e: AppError) => e.code,
      );
    await expect(code(alpha.publish('tick.happened', { n: 1 }, { position: 5 }))).resolves.toBe('ERR_BUS_POSITION');
    await alpha.publish('tick.happened', { n: 1 }, { position: 6 });
    await expect(
      code(
        alpha.publishBatch([
          { name: 'tick.happened', payload: { n: 2 }, position: 7 },
          { name: 'tick.happened', payload: { n: 3 }, position: 7 },
        ]),
      ),
    ).resolves.toBe('ERR_BUS_POSITION');
    expect(alpha.head).toBe(6);
  });

  test('an empty batch (a block whose events are all in the stream already) resolves at once and appends nothing', async () => {
    const alpha = bus('alpha');
    await alpha.serve({ floor: 0 });
    await alpha.publish('tick.happened', { n: 1 }, { position: 1 });
    const hung = new Promise((resolve) => setTimeout(() => resolve('no answer in 3 s'), 3_000).unref());
    await expect(Promise.race([alpha.publishBatch([]).then(() => 'appended'), hung])).resolves.toBe('appended');
    expect(alpha.head).toBe(1);
    await alpha.publish('tick.happened', { n: 2 }, { position: 2 });
    expect(alpha.head).toBe(2);
  });

  test('tasks are acknowledged with the reply, deduplicated by idempotency key, and carry the TID', async () => {
    const alpha = bus('alpha');
    const client = bus('client');
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
    const alpha = bus('alpha');
    const client = bus('client');
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
    await expect(code(client.call('beta.job.run', { n: 1 }, { timeoutMs: 300 }))).resolves.toBe(s.unserved);
    expect(() => client.handle('alpha.job.run', () => ({ doubled: 0 }))).toThrow(/cannot handle/);
    expect(() => client.subscribe('alpha', { ['tick.vanished' as 'comment']: () => undefined })).toThrow(/unknown event/);
  });

  test("a task sent by name, outside the sender's catalogue, is checked by the receiver against its own", async () => {
    // gamma declares its own task (as a bot does in its package); the client's catalogue lacks it.
    const own = extendCatalogue(testCatalogue, 'gamma', {
      tasks: { 'gamma.sum.get': { payload: z.object({ a: z.number(), b: z.number() }), reply: z.object({ sum: z.number() }) } },
    });
    const gamma = new Bus({ app: 'gamma', catalogue: own, transport: s.transport('gamma'), logger: memoryLogger('gamma').logger });
    buses.push(gamma as unknown as Bus<TestCatalogue>);
    gamma.handle('gamma.sum.get', ({ a, b }) => ({ sum: a + b }));
    await gamma.serve();
    const client = bus('client');
    const failure = (p: Promise<unknown>): Promise<unknown> =>
      p.then(
        () => 'resolved',
        (e: AppError) => [e.code, e.message],
      );
    await expect(client.sendByName('gamma.sum.get', { a: 1, b: 2 }, { idempotencyKey: 'k1' })).resolves.toEqual({ sum: 3 });
    await expect(failure(client.sendByName('gamma.sum.get', { a: 'one', b: 2 }))).resolves.toEqual([
      'ERR_BUS_INVALID_PAYLOAD',
      expect.stringMatching(/^gamma\.sum\.get: .*"a"/s),
    ]);
    await expect(failure(client.sendByName('gamma.nope.get', {}))).resolves.toEqual([
      'ERR_BUS_UNKNOWN_NAME',
      `gamma has no task "gamma.nope.get" (it is not in gamma's catalogue)`,
    ]);
    // Not a task name, or a catalogue task with a bad payload: refused before it leaves.
    await expect(failure(client.sendByName('gamma', {}))).resolves.toEqual([
      'ERR_BUS_UNKNOWN_NAME',
      expect.stringMatching(/not a task name/),
    ]);
    await expect(failure(client.sendByName('alpha.job.run', { n: 'x' }))).resolves.toEqual([
      'ERR_BUS_INVALID_PAYLOAD',
      expect.stringMatching(/^alpha\.job\.run: /),
    ]);
    // @ts-expect-error `send` takes only the catalogue's names
    await expect(failure(client.send('gamma.sum.get', { a: 1, b: 2 }))).resolves.toEqual([
      'ERR_BUS_UNKNOWN_NAME',
      'unknown task "gamma.sum.get"',
    ]);
  });

  test('send retries a task that timed out, with the same key, and the receiver runs it once', async () => {
    const alpha = bus('alpha');
    const client = bus('client');
    let runs = 0;
    alpha.handle('alpha.job.run', async (p) => {
      runs++;
      if (runs === 1) await new Promise((r) => setTimeout(r, s.slowMs * 3)); // first ack comes too late
      return { doubled: p.n };
    });
    await alpha.serve();
    await client.send('alpha.job.run', { n: 1 }, { idempotencyKey: 'slow', timeoutMs: s.slowMs, attempts: 8 });
    expect(runs).toBe(1);
  });

  test('a failing subscriber handler is logged with the TID and later events still arrive', async () => {
    const { logger, lines } = memoryLogger();
    const alpha = bus('alpha', logger);
    const client = bus('client', logger);
    await alpha.serve({ floor: 0 });
    const got: number[] = [];
    await client.subscribe(
      'alpha',
      {
        'tick.happened': (p) => {
          if (p.n === 2) throw new Error('boom');
          got.push(p.n);
        },
      },
      { from: 0 },
    ).ready;
    for (let n = 1; n <= 3; n++) await alpha.publish('tick.happened', { n }, { position: n, tid: `tid-${n}` });
    await waitFor(() => got.length === 2);
    expect(got).toEqual([1, 3]);
    expect(lines.find((l) => l.level === 50)).toMatchObject({ tid: 'tid-2', event: 'tick.happened' });
  });
}
