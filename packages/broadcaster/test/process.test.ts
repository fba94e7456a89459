import { type ChildProcess, fork } from 'node:child_process';
import { join } from 'node:path';

import { chainOpNames } from '@steem-bot/config';
import { DevNode } from '@steem-bot/devnode';

import { APPLIED_INDEX, blockOfPosition, positionOf } from '../src';
import { keptLogger, observer, testConfig, waitFor } from './harness';

const MAIN = join(__dirname, '..', 'dist', 'main.js');
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** The real broadcaster process (compiled main.js), as PM2 runs it. */
function startProcess(env: Record<string, string>, file = MAIN): Promise<ChildProcess> {
  const child = fork(file, [], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  cleanups.push(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return new Promise((resolve, reject) => {
    child.once('message', (m) => (m === 'ready' ? resolve(child) : reject(new Error(String(m)))));
    child.once('exit', (code) => reject(new Error(`exited with ${code}`)));
  });
}

/** The environment of a broadcaster process with `config`'s directories, reading `node`. */
function appEnv(config: { SOCKET_DIR: string; DATA_DIR: string }, node: DevNode, extra: Record<string, string>): Record<string, string> {
  return { SOCKET_DIR: config.SOCKET_DIR, DATA_DIR: config.DATA_DIR, STEEM_NODES: node.url, LOG_LEVEL: 'warn', ...extra };
}

async function synthetic(
  blocks: number,
  seed = 5,
  timing: { intervalMs: number; initialBlocks?: number } = { intervalMs: 0 },
): Promise<DevNode> {
  const node = await DevNode.start({ ...timing, synthetic: blocks, opsPerBlock: [20, 40], libDistance: 0, seed });
  cleanups.push(() => node.stop());
  return node;
}

describe('the broadcaster process', () => {
  test('SIGKILLed mid-stream and restarted: no block missing, none published twice', async () => {
    const node = await synthetic(3000);
    const { config, cleanup } = testConfig([node.url]);
    cleanups.push(cleanup);
    const env = appEnv(config, node, { STEEM_START_BLOCK: '1000000' });
    const { logger } = keptLogger('observer');
    const blocks: number[] = [];
    const obs = observer(config, logger);
    cleanups.push(() => obs.close());
    obs.subscribe('broadcaster', { 'block.applied': (p) => void blocks.push(p.block_num) }, { from: positionOf(999_999, APPLIED_INDEX) });
    const first = await startProcess(env);
    await waitFor(() => blocks.length >= 800, 30_000, '800 blocks');
    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));
    const atKill = blocks.length;
    await startProcess(env);
    await waitFor(() => blocks.at(-1) === 1_003_999, 60_000, 'block 1003999');
    expect(atKill).toBeLessThan(4000);
    expect(blocks).toEqual(Array.from({ length: 4000 }, (_, i) => 1_000_000 + i));
  });

  test('a seed-style plain node-ipc client gets comment ops with their fields at the top level', async () => {
    // The chain grows by a block every 50 ms from block 1001000 on.
    const node = await synthetic(2000, 5, { intervalMs: 50, initialBlocks: 1001 });
    const { config, cleanup } = testConfig([node.url]);
    cleanups.push(cleanup);
    const env = appEnv(config, node, { STEEM_START_BLOCK: '1001000' });
    // Plain clients get live events only: it connects once the broadcaster serves, and gets the
    // comments of the blocks that come after.
    const bot = fork(join(__dirname, 'fixtures', 'seed-bot.cjs'), [], {
      env: { ...process.env, SOCKET_DIR: config.SOCKET_DIR },
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    cleanups.push(() => void bot.kill('SIGKILL'));
    const got: Array<Record<string, unknown>> = [];
    bot.on('message', (m) => {
      if (typeof m === 'object') got.push(m as Record<string, unknown>);
    });
    const ready = new Promise((r) => bot.once('message', r));
    await startProcess(env);
    await ready;
    await waitFor(() => got.length > 0, 30_000, 'comments');
    for (const c of got) {
      expect(c).toEqual({
        author: expect.any(String),
        permlink: expect.any(String),
        parent_author: expect.any(String),
        block_num: expect.any(Number),
      });
    }
  });

  test('a subscriber down for 500 blocks resumes with `from` and gets every op it missed, in order', async () => {
    const node = await synthetic(1500, 9);
    // A tiny retention: what it missed comes from the stream or, once pruned, from the chain (backfill).
    const { config, cleanup } = testConfig([node.url], { BUS_RETENTION_BYTES: '65536' });
    cleanups.push(cleanup);
    const env = appEnv(config, node, { STEEM_START_BLOCK: '1000000', BUS_RETENTION_BYTES: '65536' });
    const { logger } = keptLogger('observer');
    const seen: number[] = [];
    const record = (_p: unknown, ctx: { pos: number }): void => void seen.push(ctx.pos);
    const handlers = Object.fromEntries(chainOpNames.map((n) => [n, record]));
    const obs = observer(config, logger);
    cleanups.push(() => obs.close());
    const sub = obs.subscribe('broadcaster', handlers, { from: positionOf(999_999, APPLIED_INDEX) });
    await startProcess(env);
    await waitFor(() => seen.some((p) => p >= positionOf(1_001_000, 0)), 30_000, 'block 1001000');
    sub.close();
    const checkpoint = seen.at(-1) as number;
    // The broadcaster goes on without it for 500 blocks or more.
    // (Status calls went unanswered here now and then, 20 s and more: a cursor spun on a socket
    // destroyed before its close event, starving the event loop; fixed in the bus's pump.)
    const status = (): ReturnType<typeof obs.call<'broadcaster.status.get'>> =>
      obs.call('broadcaster.status.get', {}, { timeoutMs: 5_000 });
    for (let s = await status(); (s.current_block ?? 0) < blockOfPosition(checkpoint) + 500;) {
      await new Promise((r) => setTimeout(r, 50));
      s = await status();
    }
    const resumed: number[] = [];
    const again = observer(config, logger);
    cleanups.push(() => again.close());
    again.subscribe(
      'broadcaster',
      Object.fromEntries(chainOpNames.map((n) => [n, (_p: unknown, ctx: { pos: number }) => void resumed.push(ctx.pos)])),
      { from: checkpoint },
    );
    await waitFor(() => resumed.some((p) => p >= positionOf(1_002_499, 0)), 60_000, 'block 1002499');
    const expected: number[] = [];
    for (let n = blockOfPosition(checkpoint); n <= 1_002_499; n++) {
      let i = 0;
      for (const t of node.chain.block(n)?.transactions ?? []) for (const _op of t.operations) expected.push(positionOf(n, i++));
    }
    const upTo = resumed.indexOf(expected.at(-1) as number);
    expect(resumed.slice(0, upTo + 1)).toEqual(expected.filter((p) => p > checkpoint));
  });
});
