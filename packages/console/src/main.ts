import { runApp } from '@steem-bot/bus';

import { listPm2Apps } from './pm2';
import { startConsole } from './server';

runApp({
  app: 'console',
  sections: ['console', 'clock', 'store'],
  start: async (ctx) => {
    const running = await startConsole({ config: ctx.config, logger: ctx.logger, bus: ctx.bus, listApps: listPm2Apps });
    ctx.logger.info(`console on ${running.url} (/metrics for Prometheus)`);
    return running;
  },
});
