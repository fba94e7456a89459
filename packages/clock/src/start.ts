import { join } from 'node:path';

import type { AppContext, RunningApp } from '@steem-bot/bus';

import { Clock } from './clock';
import { loadSchedules } from './schedules';
import { ClockStore } from './store';

export const clockStoreFile = (dataDir: string): string => join(dataDir, 'clock.sqlite');

/** A clock process: any number may run against the same DATA_DIR. */
export async function startClock({ config, logger, bus }: AppContext<'clock'>): Promise<RunningApp & { clock: Clock }> {
  const schedules = loadSchedules(config.CLOCK_SCHEDULES);
  const store = new ClockStore(clockStoreFile(config.DATA_DIR));
  const clock = new Clock({
    schedules,
    store,
    bus,
    logger,
    staleMs: config.CLOCK_CLAIM_STALE_MS,
    keepMs: config.CLOCK_KEEP_DAYS * 86_400_000,
    ackTimeoutMs: config.BUS_TASK_TIMEOUT_MS,
  });
  clock.start();
  for (const n of clock.next()) logger.info(`schedule ${n.id}: ${n.task}, next at ${n.times[0] ?? 'never'}`);
  return {
    clock,
    async stop() {
      await clock.stop();
      store.close();
    },
  };
}
