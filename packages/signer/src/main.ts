import { runApp } from '@steem-bot/bus';
import { becomeActive } from '@steem-bot/store';

import { startSigner } from './app';

// Below PM2's kill_timeout: a pass in flight (a broadcast, a lookup) finishes; all state is in the store.
runApp({
  app: 'signer',
  sections: ['chain', 'signer', 'store'],
  drainMs: 8_000,
  async start(ctx) {
    // STORE=postgres: one signer acts; a standby waits here (not ready, serving no task) until the active one dies.
    const active = await becomeActive(ctx.config, ctx.logger, 'signer', (err) => {
      // Another signer may already be signing from the same record: stop at once, PM2 restarts this one as a standby.
      ctx.logger.fatal({ err }, 'lost the connection holding the active-signer lock; exiting at once');
      process.exit(1);
    });
    const signer = await startSigner(ctx);
    return {
      async stop() {
        await signer.stop();
        // Given up after the last pass, so that a standby takes over at once.
        await active?.release();
      },
    };
  },
});
