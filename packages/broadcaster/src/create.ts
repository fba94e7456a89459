import { backoffDelay, type Bus } from '@steem-bot/bus';
import type { Catalogue, Config, Logger } from '@steem-bot/config';

import { Broadcaster } from './broadcaster';
import { CheckpointFile } from './checkpoint';
import { BlockFetcher } from './fetcher';
import { NodePool } from './nodes';

/** Wire a broadcaster from the validated config. */
export function createBroadcaster(
  config: Config<'chain' | 'broadcaster'>,
  logger: Logger,
  bus: Bus<Catalogue>,
  checkpointPath: string,
  hooks: { onHalt?: (reason: string) => void } = {},
): Broadcaster {
  const pool = new NodePool(config.STEEM_NODES, {
    timeoutMs: config.BROADCASTER_RPC_TIMEOUT_MS,
    maxResponseBytes: config.BROADCASTER_MAX_REPLY_BYTES,
    staleBlocks: config.BROADCASTER_STALE_BLOCKS,
    staleMs: config.BROADCASTER_STALE_MS,
    logger,
  });
  const fetcher = new BlockFetcher(pool, {
    batch: config.BROADCASTER_BATCH,
    ahead: config.BROADCASTER_AHEAD_BLOCKS,
    logger,
    retryDelay: (attempt) => backoffDelay(attempt, 250, 30_000),
    // What is published in irreversible mode is final: a second node must confirm every block.
    confirm: config.STEEM_MODE === 'irreversible' && config.STEEM_NODES.length >= 2,
  });
  return new Broadcaster({
    bus,
    pool,
    fetcher,
    checkpoint: new CheckpointFile(checkpointPath),
    mode: config.STEEM_MODE,
    startBlock: config.STEEM_START_BLOCK,
    pollMs: config.BROADCASTER_POLL_MS,
    backfills: config.BROADCASTER_BACKFILLS,
    logger,
    ...hooks,
  });
}
