import { fork } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { createIpcBus } from '@steem-bot/bus';
import { catalogue } from '@steem-bot/config';
import { DevNode } from '@steem-bot/devnode';

import { APPLIED_INDEX, createBroadcaster, EXIT_OFF_CHAIN, positionOf } from '../src';
import { keptLogger, observer, startBroadcaster, testConfig, waitFor } from './harness';
import { type Lies, lyingNode } from './lying-node';

const MAIN = join(__dirname, '..', 'dist', 'main.js');
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Two honest devnodes on the same chain (1,000,000-1,000,999, a block every 20 ms, LIB 10 behind). */
async function honestNodes(): Promise<DevNode[]> {
  const nodes = [];
  for (let i = 0; i < 2; i++) {
    const node = await DevNode.start({ intervalMs: 20, initialBlocks: 800, libDistance: 10 });
    cleanups.push(() => node.stop());
    nodes.push(node);
  }
  return nodes;
}

/**
 * A broadcaster (irreversible mode) reading a lying node listed first and two honest devnodes;
 * checks that every published block is the honest one, at or below the honest LIB, and that the
 * stream reaches the honest LIB.
 */
async function streamNextToLiar(lies: Lies): Promise<{ states: () => Promise<string[]>; lines: Array<Record<string, unknown>> }> {
  const honest = await honestNodes();
  const liar = await lyingNode(honest[0]!.url, lies);
  cleanups.push(() => liar.stop());
  const { config, cleanup } = testConfig([liar.url, ...honest.map((n) => n.url)], { STEEM_START_BLOCK: '1000000' });
  cleanups.push(cleanup);
  const { logger, lines } = keptLogger('broadcaster');
  const published: Array<[number, string]> = [];
  const aboveLib: number[] = [];
  const obs = observer(config, logger);
  cleanups.push(() => obs.close());
  obs.subscribe(
    'broadcaster',
    {
      'block.applied': (p) => {
        published.push([p.block_num, p.block_id]);
        if (p.block_num > Math.max(...honest.map((n) => n.chain.lib()))) aboveLib.push(p.block_num);
      },
    },
    { from: positionOf(999_999, APPLIED_INDEX) },
  );
  const b = await startBroadcaster(config, logger);
  cleanups.push(() => b.stop());
  const last = 1_000_989; // the honest nodes' final LIB
  await waitFor(() => (published.at(-1)?.[0] ?? 0) >= last || aboveLib.length > 0, 30_000, `block ${last}`);
  expect(aboveLib).toEqual([]);
  const chain = honest[0]!.chain;
  expect(published.slice(0, last - 1_000_000 + 1)).toEqual(
    Array.from({ length: last - 1_000_000 + 1 }, (_, i) => [1_000_000 + i, chain.block(1_000_000 + i)?.block_id]),
  );
  return { states: async () => (await obs.call('broadcaster.status.get', {})).nodes.map((n) => n.state), lines };
}

describe('no single node decides (irreversible mode, a lying node next to two honest ones)', () => {
  test('a node reporting head and LIB far ahead is suspect; the others are not stale; nothing above the honest LIB is published', async () => {
    const { states } = await streamNextToLiar({ headAhead: 1000 });
    expect(await states()).toEqual(['suspect', 'healthy', 'healthy']);
  }, 60_000);

  test('a node reporting LIB = head on a fork of its own: none of its blocks is published', async () => {
    await streamNextToLiar({ libAtHead: true, forkFrom: 1_000_900 });
  }, 60_000);

  test('a node serving a different block at given heights: none is published, the stream goes on', async () => {
    const { lines } = await streamNextToLiar({ replace: (n) => n % 10 === 7 });
    expect(lines.some((l) => /contradict|disagree/.test(String(l.msg)))).toBe(true);
  }, 60_000);
});

describe('start-up and halting', () => {
  test('with one node configured, says so in the log at start-up', async () => {
    const node = await DevNode.start({ intervalMs: 0 });
    cleanups.push(() => node.stop());
    const { config, cleanup } = testConfig([node.url], { STEEM_START_BLOCK: '1000990' });
    cleanups.push(cleanup);
    const { logger, lines } = keptLogger('broadcaster');
    const b = await startBroadcaster(config, logger);
    cleanups.push(() => b.stop());
    expect(lines.some((l) => l.level === 40 && /one Steem node configured/.test(String(l.msg)))).toBe(true);
  });

  /** A checkpoint saying block 1000500 was published with an id the chain does not have. */
  function offChainCheckpoint(dataDir: string): void {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    const forgedId = `000f4434${'ab'.repeat(16)}`;
    writeFileSync(
      join(dataDir, 'broadcaster.checkpoint.json'),
      JSON.stringify({ block_num: 1_000_500, block_id: forgedId, position: positionOf(1_000_500, APPLIED_INDEX) }),
    );
  }

  test('a published block found off the canonical chain halts the stream: status and log say so, no refetch loop', async () => {
    const honest = await honestNodes();
    const { config, cleanup } = testConfig(honest.map((n) => n.url));
    cleanups.push(cleanup);
    offChainCheckpoint(config.DATA_DIR);
    const { logger, lines } = keptLogger('broadcaster');
    const bus = createIpcBus('broadcaster', catalogue, config, logger);
    let halted: string | undefined;
    const broadcaster = createBroadcaster(config, logger, bus, join(config.DATA_DIR, 'broadcaster.checkpoint.json'), {
      onHalt: (reason) => (halted = reason),
    });
    await broadcaster.start();
    cleanups.push(async () => {
      await broadcaster.stop();
      await bus.close();
    });
    await waitFor(() => halted !== undefined, 15_000, 'the halt');
    expect(halted).toMatch(/block 1000500 .* is not on the chain the nodes serve/);
    expect(broadcaster.status().problem).toMatch(/^halted: block 1000500/);
    expect(lines.some((l) => l.level === 60 && /stream halted/.test(String(l.msg)))).toBe(true);
  }, 30_000);

  test('the broadcaster process exits with EXIT_OFF_CHAIN (65), which pm2.json does not restart', async () => {
    const honest = await honestNodes();
    const { config, cleanup } = testConfig(honest.map((n) => n.url));
    cleanups.push(cleanup);
    offChainCheckpoint(config.DATA_DIR);
    const child = fork(MAIN, [], {
      env: {
        ...process.env,
        SOCKET_DIR: config.SOCKET_DIR,
        DATA_DIR: config.DATA_DIR,
        STEEM_NODES: honest.map((n) => n.url).join(','),
        LOG_LEVEL: 'silent',
      },
      stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
    });
    cleanups.push(() => void child.kill('SIGKILL'));
    const code = await new Promise((r) => child.once('exit', r));
    expect(code).toBe(EXIT_OFF_CHAIN);
    const pm2 = JSON.parse(readFileSync(join(__dirname, '..', '..', '..', 'pm2.json'), 'utf8')) as {
      apps: Array<{ name: string; stop_exit_codes: number[] }>;
    };
    expect(pm2.apps.find((a) => a.name === 'broadcaster')?.stop_exit_codes).toContain(EXIT_OFF_CHAIN);
  }, 30_000);
});
