import { Bus, MemoryHub, MemoryTransport } from '@steem-bot/bus';
import { type Catalogue, catalogue, type CatalogueShape, type Config, type Logger, positionOf } from '@steem-bot/config';
import { keptLogger, testSetup } from '@steem-bot/testkit';

/** A vote op at `block`/`index`, with its chain metadata. */
export function vote(block: number, index: number, fields: Partial<Record<string, unknown>> = {}): Record<string, unknown> {
  return {
    voter: 'alice',
    author: `author${index % 3}`,
    permlink: `post-${block}-${index}`,
    weight: 10_000,
    block_num: block,
    block_id: block.toString(16).padStart(8, '0') + 'f'.repeat(32),
    timestamp: '2016-04-29T04:00:03',
    trx_id: 'ab'.repeat(20),
    trx_in_block: 0,
    op_in_trx: 0,
    op_in_block: index,
    ...fields,
  };
}

export { positionOf };

/** A broadcaster stand-in on the in-memory transport, and the config/logger for a bot. */
export async function memorySetup(vars: Record<string, string> = {}): Promise<{
  hub: MemoryHub;
  source: Bus<Catalogue>;
  config: Config;
  logger: Logger;
  lines: Array<Record<string, unknown>>;
  /** A bus on the hub; a bot's with its catalogue (`bot.catalogue`). */
  busFor<C extends CatalogueShape = Catalogue>(app: string, own?: C): Bus<C>;
  publishVote(block: number, index: number, fields?: Partial<Record<string, unknown>>): Promise<void>;
  cleanup(): void;
}> {
  const hub = new MemoryHub();
  const { config, cleanup } = testSetup({ BOT_RETRY_BASE_MS: '10', BOT_RETRY_MAX_MS: '40', ...vars });
  const { logger, lines } = keptLogger('test');
  const busFor = <C extends CatalogueShape = Catalogue>(app: string, own?: C): Bus<C> =>
    new Bus({
      app,
      catalogue: own ?? (catalogue as CatalogueShape as C),
      transport: new MemoryTransport(hub),
      logger: logger.child({ app }),
      taskTimeoutMs: 300,
    });
  const source = busFor('broadcaster');
  await source.serve({ floor: 0 });
  return {
    hub,
    source,
    config,
    logger,
    lines,
    busFor,
    publishVote: (block, index, fields) =>
      source.publish('vote', vote(block, index, fields) as never, { position: positionOf(block, index) }),
    cleanup,
  };
}
