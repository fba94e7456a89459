import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { DevNode } from '@steem-bot/devnode';

import { APPLIED_INDEX, positionOf } from '../src';
import { keptLogger, observer, startBroadcaster, testConfig, waitFor } from './harness';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

test('head mode, restarted on a forked checkpoint: block.reverted for the orphaned blocks, then the canonical ones', async () => {
  // The node serves another branch for blocks 1000990-1000992 during its first 3 s, then the canonical chain.
  const node = await DevNode.start({
    intervalMs: 0,
    libDistance: 5,
    faults: [{ kind: 'fork', fromBlock: 1_000_990, depth: 3, forMs: 3000 }],
  });
  cleanups.push(() => node.stop());
  const { config, cleanup } = testConfig([node.url], { STEEM_START_BLOCK: '1000980', STEEM_MODE: 'head' });
  cleanups.push(cleanup);
  const { logger, lines } = keptLogger('broadcaster');
  const applied = new Map<number, string>();
  const reverted: Array<[number, string]> = [];
  const obs = observer(config, logger);
  cleanups.push(() => obs.close());
  obs.subscribe(
    'broadcaster',
    {
      'block.applied': (p) => void applied.set(p.block_num, p.block_id),
      'block.reverted': (p) => {
        reverted.push([p.block_num, p.block_id]);
        applied.delete(p.block_num);
      },
    },
    { from: positionOf(1_000_979, APPLIED_INDEX) },
  );
  const forked = [1_000_990, 1_000_991, 1_000_992].map((n) => node.chain.block(n)?.block_id);
  const first = await startBroadcaster(config, logger);
  await waitFor(() => applied.get(1_000_992) === forked[2], 10_000, 'the forked block 1000992');
  await first.stop();
  // The checkpoint remembers the ids of the last blocks, not only the last one.
  const saved = JSON.parse(readFileSync(join(config.DATA_DIR, 'broadcaster.checkpoint.json'), 'utf8')) as { recent: string[] };
  expect(saved.recent.slice(-3)).toEqual(forked);
  await waitFor(() => node.chain.head() === 1_000_999, 10_000, 'the end of the fork');
  const second = await startBroadcaster(config, logger);
  cleanups.push(() => second.stop());
  await waitFor(() => applied.get(1_000_999) !== undefined, 15_000, 'block 1000999 after the restart');
  expect(reverted).toEqual([
    [1_000_992, forked[2]],
    [1_000_991, forked[1]],
    [1_000_990, forked[0]],
  ]);
  for (let n = 1_000_980; n <= 1_000_999; n++) expect([n, applied.get(n)]).toEqual([n, node.chain.block(n)?.block_id]);
  expect(lines.some((l) => /fork: block 1000990 reverted/.test(String(l.msg)))).toBe(true);
}, 40_000);
