import { runApp } from '@steem-bot/bus';

import { startWorker } from './start-worker';

// Below PM2's kill_timeout (15 s for the worker): in-flight sends finish, leases are released.
runApp({ app: 'mailer-worker', sections: ['mailer', 'store'], drainMs: 12_000, start: (ctx) => startWorker(ctx) });
