import { join } from 'node:path';

import { runApp } from '@steem-bot/bus';

import { createBroadcaster } from './create';

runApp({
  app: 'broadcaster',
  sections: ['chain', 'broadcaster'],
  drainMs: 8_000,
  async start({ config, logger, bus }) {
    const broadcaster = createBroadcaster(config, logger, bus, join(config.DATA_DIR, 'broadcaster.checkpoint.json'));
    await broadcaster.start();
    return broadcaster;
  },
});
