import { runApp } from '@steem-bot/bus';

import { startClock } from './start';

runApp({ app: 'clock', sections: ['clock', 'store'], start: (ctx) => startClock(ctx) });
