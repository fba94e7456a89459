import { runApp } from '@steem-bot/bus';
import { AppError } from '@steem-bot/config';

import { startClock } from './start';

runApp({
  app: 'clock',
  start: (ctx) =>
    startClock(ctx).catch((err: unknown) => {
      // An invalid schedule file is a configuration error: say every problem and exit 78.
      if (err instanceof AppError && err.code === 'ERR_CLOCK_SCHEDULES_INVALID') {
        process.stderr.write(`${err.message}\n`);
        process.exit(78);
      }
      throw err;
    }),
});
