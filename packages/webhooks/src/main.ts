import { runApp } from '@steem-bot/bus';

import { startWebhooks } from './app';

// Below PM2's kill_timeout (10 s): a delivery in flight is aborted and tried again after the restart.
runApp({ app: 'webhooks', sections: ['webhooks', 'store'], drainMs: 5_000, start: (ctx) => startWebhooks(ctx) });
