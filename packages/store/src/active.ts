import { AppError, type Config, type Logger } from '@steem-bot/config';

import { Postgres } from './postgres';

/** How often a standby asks for the lock: with the time to start, the bound of a takeover. */
export const STANDBY_POLL_MS = 1_000;

/** The lock of the single active instance, held while the app acts. */
export interface ActiveInstance {
  release(): Promise<void>;
}

/**
 * Wait to be the single active instance of `name` (STORE=postgres): a PostgreSQL session
 * advisory lock on a dedicated connection, asked for every STANDBY_POLL_MS. The lock goes with
 * its connection: when the holder dies, its connection ends and a standby (on any host) gets it
 * at its next poll. `onLost` runs at once if the holder's own connection is lost (it no longer
 * holds the lock: another instance may already act), and must stop the process.
 * With STORE=sqlite there is one host and PM2 runs one instance: resolves at once, undefined.
 */
export async function becomeActive(
  config: Config<'store'>,
  logger: Logger,
  name: string,
  onLost: (err: Error) => void,
  pollMs = STANDBY_POLL_MS,
): Promise<ActiveInstance | undefined> {
  if (config.STORE === 'sqlite') return undefined;
  if (!config.DATABASE_URL)
    throw new AppError('ERR_CONFIG_INVALID', 'STORE=postgres needs DATABASE_URL (postgres://user:pass@host:5432/db)');
  const db = await Postgres.open({ url: config.DATABASE_URL, schema: config.DATABASE_SCHEMA, name, poolSize: 1, logger });
  logger.info(`waiting to be the active ${name} (a standby polls every ${pollMs} ms)`);
  const started = Date.now();
  try {
    const lock = await db.acquireLock(name, onLost, { pollMs });
    logger.info(`active ${name} after ${Date.now() - started} ms (lock ${lock.key})`);
    return {
      async release() {
        await lock.release();
        await db.close();
      },
    };
  } catch (err) {
    await db.close();
    throw err;
  }
}
