import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { type Proc, spawnProcess } from '@steem-bot/testkit';

import { readStreams } from '../src';
import { tempDir, waitFor } from './helpers';

// The stream and its cursors with real processes, sockets and SQLite files, at small scale and
// with exact counts: every position received once, in order.
const FIXTURE = join(__dirname, 'fixtures', 'bus-proc.ts');
const PLAIN = join(__dirname, 'fixtures', 'plain-client.cjs');

let tmp: ReturnType<typeof tempDir>;
let procs: Proc[] = [];

beforeEach(() => {
  tmp = tempDir();
  procs = [];
});
afterEach(async () => {
  for (const p of procs) if (p.child.signalCode === null && p.child.exitCode === null) p.child.kill('SIGCONT');
  await Promise.all(procs.map((p) => p.stop()));
  tmp.cleanup();
});

async function proc(role: 'serve' | 'subscribe', env: Record<string, string> = {}): Promise<Proc> {
  const p = await spawnProcess(FIXTURE, {
    args: [role],
    env: { SOCKET_DIR: join(tmp.dir, 'run'), DATA_DIR: join(tmp.dir, 'data'), ...env },
  });
  procs.push(p);
  return p;
}

function read(file: string): { pos: number[]; gaps: Array<[number, number]> } {
  const lines = existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
  return {
    pos: lines.filter((l) => !l.startsWith('gap')).map(Number),
    gaps: lines.filter((l) => l.startsWith('gap')).map((l) => l.split(' ').slice(1).map(Number) as [number, number]),
  };
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const lastPos = (file: string): number | undefined => read(file).pos.at(-1);
const isMsg =
  (key: string) =>
  (m: unknown): boolean =>
    typeof m === 'object' && m !== null && key in m;

describe('the stream over real processes', () => {
  test('a burst to 4 subscribers: a stalled one catches up from the log, a slow one gets everything, the fast ones do not wait', async () => {
    const N = 20_000;
    const server = await proc('serve', { PAD: '200', CACHE_BYTES: String(256 * 1024) });
    const out = (name: string): string => join(tmp.dir, `${name}.log`);
    await proc('subscribe', { OUT: out('fast1'), FROM: '0' });
    await proc('subscribe', { OUT: out('fast2'), FROM: '0' });
    const stalled = await proc('subscribe', { OUT: out('stalled'), FROM: '0' });
    // 1 ms per event for its first 2,000: at least 2 s behind the others.
    await proc('subscribe', { OUT: out('slow'), FROM: '0', SLOW_MS: '1', SLOW_COUNT: '2000' });
    stalled.child.kill('SIGSTOP');
    server.send({ cmd: 'publish', to: N, batch: 100 });
    await server.message(isMsg('published'), 60_000);
    await waitFor(() => lastPos(out('fast1')) === N && lastPos(out('fast2')) === N, 60_000, 'the fast subscribers');
    // The fast ones are done while the slow one is still in its slow part: nobody waited for it.
    expect(read(out('slow')).pos.length).toBeLessThan(N);
    // The operator sees the stream and the stalled cursor's lag (npm run status reads the same).
    await waitFor(() => readStreams(join(tmp.dir, 'data'))[0]?.subscribers.filter((s) => s.lag > 0).length === 2, 5000, 'the cursors');
    const [stream] = readStreams(join(tmp.dir, 'data'));
    expect(stream).toMatchObject({ app: 'alpha', head: N, floor: 0 });
    expect(stream?.subscribers.filter((s) => s.names?.join() === 'comment')).toHaveLength(4);
    stalled.child.kill('SIGCONT');
    await waitFor(() => lastPos(out('stalled')) === N && lastPos(out('slow')) === N, 60_000, 'the stalled and slow subscribers');
    for (const name of ['fast1', 'fast2', 'stalled', 'slow']) {
      const { pos, gaps } = read(out(name));
      expect([name, gaps]).toEqual([name, []]);
      expect(pos).toEqual(range(1, N));
    }
    expect(server.messagesLogged.filter((m) => /cut off|gap/.test(m))).toEqual([]);
  });

  test('publisher SIGKILL + restart mid-stream, with a subscriber down meanwhile: no gap, no backfill', async () => {
    const N = 30_000;
    let server = await proc('serve', { BACKFILL: '1' });
    const out = join(tmp.dir, 'sub.log');
    const sub = await proc('subscribe', { OUT: out, FROM: '0' });
    server.send({ cmd: 'publish', to: N, batch: 50 });
    await sub.message((m) => isMsg('count')(m) && (m as { count: number }).count >= 3000);
    await sub.stop('SIGKILL');
    await server.stop('SIGKILL');
    const checkpoint = lastPos(out) as number;
    server = await proc('serve', { BACKFILL: '1' });
    const { head } = await server.message<{ head: number }>(isMsg('head'));
    // Killed mid-stream, at a batch boundary: what was appended is all there.
    expect(head).toBeGreaterThan(checkpoint);
    expect(head).toBeLessThan(N);
    expect(head % 50).toBe(0);
    server.send({ cmd: 'publish', to: N, batch: 50 });
    await proc('subscribe', { OUT: out, FROM: String(checkpoint) });
    await waitFor(() => lastPos(out) === N, 60_000, 'the subscriber to reach the end');
    const { pos, gaps } = read(out);
    expect(gaps).toEqual([]);
    expect(pos).toEqual(range(1, N));
    expect(server.messages.filter(isMsg('backfill'))).toEqual([]);
  });

  test('retention prunes under load; a stalled subscriber gets the exact missing range as a gap, or the backfill', async () => {
    const N = 20_000;
    for (const backfill of ['0', '1']) {
      const dir = join(tmp.dir, `case${backfill}`);
      const server = await proc('serve', {
        SOCKET_DIR: join(dir, 'run'),
        DATA_DIR: dir,
        PAD: '200',
        RETENTION_BYTES: String(512 * 1024),
        PRUNE_MS: '20',
        CACHE_BYTES: String(64 * 1024),
        BACKFILL: backfill,
      });
      const fastOut = join(dir, 'fast.log');
      const stalledOut = join(dir, 'stalled.log');
      await proc('subscribe', { SOCKET_DIR: join(dir, 'run'), OUT: fastOut, FROM: '0' });
      const stalled = await proc('subscribe', { SOCKET_DIR: join(dir, 'run'), OUT: stalledOut, FROM: '0' });
      stalled.child.kill('SIGSTOP');
      // In steps the live subscriber keeps up with even on a loaded machine (a step is well under
      // the ~2,600 events the byte bound keeps): it is the stalled one that falls below the floor.
      let done: { info: { head: number; floor: number; bytes: number } } | undefined;
      for (let to = 1000; to <= N; to += 1000) {
        server.send({ cmd: 'publish', to, batch: 20 });
        done = await server.message<{ published: number; info: { head: number; floor: number; bytes: number } }>(
          (m) => isMsg('published')(m) && (m as { published: number }).published === to,
          60_000,
        );
        await waitFor(() => lastPos(fastOut) === to, 60_000, 'the fast subscriber');
      }
      expect(read(fastOut)).toEqual({ pos: range(1, N), gaps: [] });
      // Pruned while appending: the stream keeps about its byte bound (one pruning step of slack).
      await waitFor(
        () => {
          server.send({ cmd: 'info' });
          const info = server.messages.filter(isMsg('info')).at(-1) as { info: { bytes: number } } | undefined;
          return (info?.info.bytes ?? Infinity) <= 512 * 1024;
        },
        10_000,
        'the stream to be pruned to its bound',
      );
      expect(done?.info.head).toBe(N);
      stalled.child.kill('SIGCONT');
      await waitFor(() => lastPos(stalledOut) === N, 60_000, 'the stalled subscriber');
      const { pos, gaps } = read(stalledOut);
      if (backfill === '1') {
        expect(gaps).toEqual([]);
        expect(pos).toEqual(range(1, N));
        expect(server.messages.filter(isMsg('backfill')).length).toBeGreaterThan(0);
      } else {
        // What it got and what it was told is gone cover every position exactly once, in order.
        expect(gaps.length).toBeGreaterThan(0);
        const covered = [...pos];
        for (const [after, resumeAt] of gaps) covered.push(...range(after + 1, resumeAt));
        expect(covered.sort((a, b) => a - b)).toEqual(range(1, N));
        expect(pos).toEqual([...pos].sort((a, b) => a - b));
      }
    }
  });

  test('a plain node-ipc client that falls behind while connected is served from the log', async () => {
    const N = 20_000;
    const server = await proc('serve', { PAD: '200', CACHE_BYTES: String(64 * 1024) });
    const plain = await spawnProcess(PLAIN, { env: { SOCKET_DIR: join(tmp.dir, 'run'), EXPECT: String(N) } });
    procs.push(plain);
    plain.child.kill('SIGSTOP');
    server.send({ cmd: 'publish', to: N, batch: 100 });
    await server.message(isMsg('published'), 60_000);
    plain.child.kill('SIGCONT');
    const result = await plain.message<{ count: number; inOrder: boolean; first: unknown }>(isMsg('count'), 60_000);
    expect(result).toEqual({ count: N, inOrder: true, first: { author: 'alice', permlink: 'p1', parent_author: '' } });
  });
});
