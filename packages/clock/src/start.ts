import { join } from 'node:path';

import type { AppContext, RunningApp } from '@steem-bot/bus';
import { AppError, type Config } from '@steem-bot/config';

import { Clock } from './clock';
import { loadSchedules, targetOf } from './schedules';
import { type ClockStore, SqliteClockStore } from './store';
import { PostgresClockStore } from './store-postgres';

export const clockStoreFile = (dataDir: string): string => join(dataDir, 'clock.sqlite');

/** The configured store: the SQLite file under DATA_DIR, or PostgreSQL with STORE=postgres. */
export async function openClockStore(config: Config<'store'>): Promise<ClockStore> {
  if (config.STORE === 'sqlite') return new SqliteClockStore(clockStoreFile(config.DATA_DIR));
  if (!config.DATABASE_URL)
    throw new AppError('ERR_CONFIG_INVALID', 'STORE=postgres needs DATABASE_URL (postgres://user:pass@host:5432/db)');
  return PostgresClockStore.open({ url: config.DATABASE_URL, schema: config.DATABASE_SCHEMA });
}

/** A clock process: any number may run against the same store. */
export async function startClock({ config, logger, bus }: AppContext<'clock' | 'store'>): Promise<RunningApp & { clock: Clock }> {
  const schedules = loadSchedules(config.CLOCK_SCHEDULES);
  const store = await openClockStore(config);
  const clock = new Clock({
    schedules,
    store,
    bus,
    logger,
    staleMs: config.CLOCK_CLAIM_STALE_MS,
    keepMs: config.CLOCK_KEEP_DAYS * 86_400_000,
    ackTimeoutMs: config.BUS_TASK_TIMEOUT_MS,
  });
  await clock.start();
  for (const n of clock.next()) logger.info(`schedule ${n.id}: ${n.task}, next at ${n.times[0] ?? 'never'}`);
  for (const s of schedules.filter((x) => !x.catalogued))
    logger.info(`schedule ${s.id}: ${s.task} is ${targetOf(s)}'s own task: ${targetOf(s)} checks its payload when a tick arrives`);
  return {
    clock,
    async stop() {
      await clock.stop();
      await store.close();
    },
  };
}
