import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

import { currentTid, withTid } from '@steem-bot/config';
import { type Proc, spawnProcess } from '@steem-bot/testkit';

import { Bus, IpcTransport } from '../src';
import { memoryLogger, tempDir, type TestCatalogue, testCatalogue, waitFor } from './helpers';

const FIXTURE = join(__dirname, 'fixtures', 'bus-proc.ts');
const PLAIN = join(__dirname, 'fixtures', 'plain-client.cjs');

let tmp: ReturnType<typeof tempDir>;
let procs: Proc[] = [];
let buses: Array<Bus<TestCatalogue>> = [];

beforeEach(() => {
  tmp = tempDir();
  procs = [];
  buses = [];
});
afterEach(async () => {
  await Promise.all(buses.map((b) => b.close()));
  await Promise.all(procs.map((p) => p.stop()));
  tmp.cleanup();
});

function socketDir(): string {
  return join(tmp.dir, 'run');
}

async function proc(role: 'serve' | 'subscribe', env: Record<string, string> = {}): Promise<Proc> {
  const p = await spawnProcess(FIXTURE, { args: [role], env: { SOCKET_DIR: socketDir(), ...env } });
  procs.push(p);
  return p;
}

function localBus(app = 'local'): Bus<TestCatalogue> {
  const { logger } = memoryLogger(app);
  const transport = new IpcTransport({ socketDir: socketDir(), logger });
  const bus = new Bus({ app, catalogue: testCatalogue, transport, logger, taskTimeoutMs: 2000 });
  buses.push(bus);
  return bus;
}

function positions(file: string): { pos: number[]; gaps: string[] } {
  const lines = existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
  return { pos: lines.filter((l) => !l.startsWith('gap')).map(Number), gaps: lines.filter((l) => l.startsWith('gap')) };
}

describe('bus over real node-ipc sockets and processes', () => {
  test('the socket lives in the private socket dir; events arrive in order; the TID follows task -> event', async () => {
    const server = await proc('serve');
    expect(statSync(join(socketDir(), 'app.alpha')).isSocket()).toBe(true);
    expect(statSync(socketDir()).mode & 0o777).toBe(0o700);

    const client = localBus();
    const got: number[] = [];
    const tids: string[] = [];
    client.subscribe(
      'alpha',
      {
        comment: (_p, ctx) => void got.push(ctx.pos),
        'tick.happened': (_p, ctx) => void tids.push(ctx.tid),
      },
      { from: 0 },
    );
    server.send({ cmd: 'publish', from: 0, count: 5000 });
    await waitFor(() => got.length === 5000, 20_000, '5000 events');
    expect(got).toEqual(Array.from({ length: 5000 }, (_, i) => i + 1));

    const reply = await withTid('0123456789abcdef', () => client.call('alpha.job.run', { n: 6000 }));
    expect(reply).toEqual({ doubled: 12000 });
    await waitFor(() => tids.length === 1);
    expect(tids).toEqual(['0123456789abcdef']);
    expect(currentTid()).toBeUndefined();
  });

  test('a plain node-ipc client in its own process gets chain-op fields at the top level of data', async () => {
    const server = await proc('serve');
    const plain = await spawnProcess(PLAIN, { env: { SOCKET_DIR: socketDir() } });
    procs.push(plain);
    server.send({ cmd: 'publish', from: 0, count: 3 });
    const first = await plain.message<Record<string, unknown>>((m) => typeof m === 'object' && m !== null && 'author' in m);
    expect(first).toEqual({ author: 'alice', permlink: 'p1', parent_author: '' });
    await waitFor(() => plain.messages.length === 4); // 'ready' + 3 comments
  });

  test('a SIGKILLed subscriber restarted from its checkpoint misses nothing', async () => {
    const server = await proc('serve');
    const out = join(tmp.dir, 'sub.log');
    const first = await proc('subscribe', { OUT: out, FROM: '0' });
    server.send({ cmd: 'publish', from: 0, count: 20_000 });
    await first.message((m) => typeof m === 'object' && m !== null && (m as { count: number }).count >= 3000);
    await first.stop('SIGKILL');
    const seen = positions(out).pos;
    const checkpoint = seen[seen.length - 1] as number;
    expect(checkpoint).toBeLessThan(20_000);
    procs.push(await proc('subscribe', { OUT: out, FROM: String(checkpoint) }));
    await waitFor(() => positions(out).pos.at(-1) === 20_000, 30_000, 'the subscriber to reach 20000');
    const all = positions(out);
    expect(all.gaps).toEqual([]);
    expect(new Set(all.pos).size).toBe(20_000);
    expect(all.pos).toEqual(Array.from({ length: 20_000 }, (_, i) => i + 1));
  });

  test('a server restart loses no subscription: the client reconnects and resumes after its position', async () => {
    let server = await proc('serve');
    const client = localBus();
    const got: number[] = [];
    const gaps: unknown[] = [];
    client.subscribe('alpha', { comment: (_p, ctx) => void got.push(ctx.pos) }, { from: 0, onGap: (...g) => void gaps.push(g) });
    server.send({ cmd: 'publish', from: 0, count: 1000 });
    await waitFor(() => got.length === 1000);
    await server.stop('SIGKILL');
    server = await proc('serve', { FLOOR: '1000' });
    // Published at once, before the client has reconnected: it resubscribes by itself (with
    // backoff) from position 1000 and gets them from the new server's replay window.
    server.send({ cmd: 'publish', from: 1000, count: 1000 });
    await waitFor(() => got.length === 2000, 20_000, '2000 events');
    expect(got).toEqual(Array.from({ length: 2000 }, (_, i) => i + 1));
    expect(gaps).toEqual([]);
  });

  test('a stalled subscriber is cut off with bounded server memory, others keep going, and it resumes', async () => {
    const server = await proc('serve', { PAD: '200' });
    const baseline = await server.peakRssMb();
    const fastOut = join(tmp.dir, 'fast.log');
    const stalledOut = join(tmp.dir, 'stalled.log');
    const fast = await proc('subscribe', { OUT: fastOut, FROM: '0' });
    const stalled = await proc('subscribe', { OUT: stalledOut, FROM: '0' });
    stalled.child.kill('SIGSTOP');
    server.send({ cmd: 'publish', from: 0, count: 100_000 });
    await server.message((m) => typeof m === 'object' && m !== null && 'published' in m, 60_000);
    await waitFor(() => positions(fastOut).pos.length === 100_000, 30_000, 'the fast subscriber');
    expect(server.lines.some((l) => typeof l.msg === 'string' && l.msg.startsWith('cut off a slow subscriber'))).toBe(true);
    // The fixture runs under ts-node (the TypeScript compiler alone is ~100 MB), so bound the
    // growth: replay window (16 MiB) + subscriber buffers (4 MiB each) + slack. bench:bus measures
    // the absolute RSS of a compiled server.
    const growth = (await server.peakRssMb()) - baseline;
    expect(growth).toBeLessThan(80);
    void fast;

    stalled.child.kill('SIGCONT');
    await waitFor(() => positions(stalledOut).pos.at(-1) === 100_000, 30_000, 'the stalled subscriber to resume');
    const { pos, gaps } = positions(stalledOut);
    // What it missed beyond the replay window is announced as a gap; nothing else is missing.
    const missing = gaps.reduce((n, g) => {
      const [, after, resumeAt] = g.split(' ').map(Number) as [number, number, number];
      return n + (resumeAt - after);
    }, 0);
    expect(new Set(pos).size + missing).toBe(100_000);
    expect(pos).toEqual([...pos].sort((a, b) => a - b));
  });
});
