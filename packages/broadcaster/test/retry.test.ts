import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Bus, MemoryHub, MemoryTransport } from '@steem-bot/bus';
import { AppError, type Catalogue, catalogue } from '@steem-bot/config';
import { DevNode } from '@steem-bot/devnode';

import { APPLIED_INDEX, BlockFetcher, Broadcaster, CheckpointFile, NodePool, positionOf } from '../src';
import { keptLogger, waitFor } from './harness';

/** A bus whose publishBatch fails once, at the Nth block (as if a payload had been refused). */
class FlakyBus extends Bus<Catalogue> {
  calls = 0;
  constructor(
    options: ConstructorParameters<typeof Bus<Catalogue>>[0],
    private readonly failAt: number,
  ) {
    super(options);
  }
  override publishBatch(...args: Parameters<Bus<Catalogue>['publishBatch']>): Promise<void> {
    if (++this.calls === this.failAt) return Promise.reject(new AppError('ERR_BUS_INVALID_PAYLOAD', 'refused once, for the test'));
    return super.publishBatch(...args);
  }
}

test('a block interrupted by a publish error is retried without repeating or losing an op', async () => {
  const node = await DevNode.start({ intervalMs: 0, synthetic: 30, opsPerBlock: [10, 10], libDistance: 0 });
  const dir = mkdtempSync(join(tmpdir(), 'sbr-'));
  const { logger, lines } = keptLogger('broadcaster');
  const hub = new MemoryHub();
  const bus = new FlakyBus({ app: 'broadcaster', catalogue, transport: new MemoryTransport(hub), logger }, 3); // block 1001002
  const pool = new NodePool([node.url], { timeoutMs: 1000, staleBlocks: 10, staleMs: 10_000, logger });
  const fetcher = new BlockFetcher(pool, { batch: 10, ahead: 20, logger, retryDelay: () => 10 });
  const checkpoint = new CheckpointFile(join(dir, 'cp.json'));
  const broadcaster = new Broadcaster({ bus, pool, fetcher, checkpoint, mode: 'irreversible', startBlock: 1_001_000, pollMs: 100, logger });
  const seen: number[] = [];
  const observer = new Bus({ app: 'observer', catalogue, transport: new MemoryTransport(hub), logger });
  observer.subscribe(
    'broadcaster',
    {
      vote: (_p, c) => void seen.push(c.pos),
      comment: (_p, c) => void seen.push(c.pos),
      custom_json: (_p, c) => void seen.push(c.pos),
      transfer: (_p, c) => void seen.push(c.pos),
      'block.applied': (_p, c) => void seen.push(c.pos),
    },
    { from: positionOf(1_000_999, APPLIED_INDEX) },
  );
  try {
    await broadcaster.start();
    await waitFor(() => seen.includes(positionOf(1_001_029, APPLIED_INDEX)), 20_000, 'block 1001029');
    expect(lines.some((l) => l.level === 50 && /streaming failed at block 1001002/.test(String(l.msg)))).toBe(true);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    for (let n = 1_001_000; n <= 1_001_029; n++) expect(seen).toContain(positionOf(n, APPLIED_INDEX));
    expect(checkpoint.load()?.block_num).toBe(1_001_029);
  } finally {
    await broadcaster.stop();
    await node.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
