import { join } from 'node:path';

import { runApp } from '@steem-bot/bus';

import { EXIT_OFF_CHAIN } from './broadcaster';
import { createBroadcaster } from './create';

runApp({
  app: 'broadcaster',
  sections: ['chain', 'broadcaster'],
  drainMs: 8_000,
  async start({ config, logger, bus }) {
    const broadcaster = createBroadcaster(config, logger, bus, join(config.DATA_DIR, 'broadcaster.checkpoint.json'), {
      // Restarting would only publish the same wrong block's successors: exit with a code PM2 does not restart.
      onHalt: () => void bus.close().finally(() => process.exit(EXIT_OFF_CHAIN)),
    });
    await broadcaster.start();
    return broadcaster;
  },
});
