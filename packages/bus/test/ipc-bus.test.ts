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
  const p = await spawnProcess(FIXTURE, { args: [role], env: { SOCKET_DIR: socketDir(), DATA_DIR: join(tmp.dir, 'data'), ...env } });
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
    server.send({ cmd: 'publish', to: 5000 });
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
    server.send({ cmd: 'publish', to: 3 });
    const first = await plain.message<Record<string, unknown>>((m) => typeof m === 'object' && m !== null && 'author' in m);
    expect(first).toEqual({ author: 'alice', permlink: 'p1', parent_author: '' });
    await waitFor(() => plain.messages.length === 4); // 'ready' + 3 comments
  });

  test('a SIGKILLed subscriber restarted from its checkpoint misses nothing', async () => {
    const server = await proc('serve');
    const out = join(tmp.dir, 'sub.log');
    const first = await proc('subscribe', { OUT: out, FROM: '0' });
    server.send({ cmd: 'publish', to: 20_000, batch: 100 });
    await first.message((m) => typeof m === 'object' && m !== null && (m as { count: number }).count >= 3000);
    await first.stop('SIGKILL');
    const seen = positions(out).pos;
    const checkpoint = seen[seen.length - 1] as number;
    expect(checkpoint).toBeLessThan(20_000);
    procs.push(await proc('subscribe', { OUT: out, FROM: String(checkpoint) }));
    await waitFor(() => positions(out).pos.at(-1) === 20_000, 60_000, 'the subscriber to reach 20000');
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
    server.send({ cmd: 'publish', to: 1000 });
    await waitFor(() => got.length === 1000);
    await server.stop('SIGKILL');
    server = await proc('serve');
    // The new server opens the same stream: its head is where the old one stopped.
    expect(await server.message((m) => typeof m === 'object' && m !== null && 'head' in m)).toEqual({ head: 1000 });
    // Published at once, before the client has reconnected: it resubscribes by itself (with
    // backoff) from position 1000 and reads them from the stream.
    server.send({ cmd: 'publish', to: 2000 });
    await waitFor(() => got.length === 2000, 20_000, '2000 events');
    expect(got).toEqual(Array.from({ length: 2000 }, (_, i) => i + 1));
    expect(gaps).toEqual([]);
  });
});
