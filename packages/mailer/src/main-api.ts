import { runApp } from '@steem-bot/bus';

import { startIntake } from './intake';

runApp({ app: 'mailer', sections: ['mailer', 'store'], drainMs: 5_000, start: (ctx) => startIntake(ctx) });
