import { join } from 'node:path';

import { runApp } from '@steem-bot/bus';
import { becomeActive } from '@steem-bot/store';

import { EXIT_OFF_CHAIN } from './broadcaster';
import { createBroadcaster } from './create';

runApp({
  app: 'broadcaster',
  sections: ['chain', 'broadcaster', 'store'],
  drainMs: 8_000,
  async start({ config, logger, bus }) {
    // STORE=postgres: one broadcaster acts; a standby waits here (not ready) until the active one dies.
    const active = await becomeActive(config, logger, 'broadcaster', (err) => {
      // Another instance may already publish: stop at once, PM2 restarts this one as a standby.
      logger.fatal({ err }, 'lost the connection holding the active-broadcaster lock; exiting at once');
      process.exit(1);
    });
    const broadcaster = createBroadcaster(config, logger, bus, join(config.DATA_DIR, 'broadcaster.checkpoint.json'), {
      // Restarting would only publish the same wrong block's successors: exit with a code PM2 does not restart.
      onHalt: () => void bus.close().finally(() => process.exit(EXIT_OFF_CHAIN)),
    });
    await broadcaster.start();
    return {
      async stop() {
        await broadcaster.stop();
        // Given up after the last block is published, so that a standby takes over at once.
        await active?.release();
      },
    };
  },
});
