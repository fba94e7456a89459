import {
  AppError,
  type Catalogue,
  catalogue,
  type CatalogueShape,
  type Config,
  createLogger,
  type ErrorCode,
  loadConfigOrExit,
  type Logger,
  type Section,
} from '@steem-bot/config';

import type { Bus } from './bus';
import { createBus } from './create';

const CONFIG_ERRORS = new Set<ErrorCode>([
  'ERR_CONFIG_INVALID',
  'ERR_BOT_KEY_MISSING',
  'ERR_BOT_INVALID',
  'ERR_CLOCK_SCHEDULES_INVALID',
  'ERR_CHECKPOINT_INVALID',
]);

/** What an app's `start` gets: the frozen config (its own sections), the root logger and its bus. */
export interface AppContext<S extends Section = Section, C extends CatalogueShape = Catalogue> {
  config: Config<S>;
  logger: Logger;
  bus: Bus<C>;
}

/** A running app: `stop` stops intake and finishes in-flight work. */
export interface RunningApp {
  stop(): Promise<void>;
}

export interface RunAppOptions<S extends Section, C extends CatalogueShape = Catalogue> {
  app: string;
  /** The configuration sections the app reads besides `shared` and `bus`; only those are validated. */
  sections: readonly S[];
  /**
   * The app's catalogue, when it declares tasks or events of its own (`extendCatalogue` of the
   * project's): its bus validates what it handles and sends against it. Default: the project's.
   */
  catalogue?: C;
  start(ctx: AppContext<S, C>): Promise<RunningApp>;
  /** Upper bound of a graceful stop; keep it below PM2's kill_timeout. Default 5000 ms. */
  drainMs?: number;
}

/**
 * The whole of a `main.ts`: load config, create logger and bus, start the app, tell PM2 it is
 * ready; on the first SIGINT/SIGTERM drain within `drainMs` and exit 0, on the second exit 1.
 */
export async function runApp<S extends Section, C extends CatalogueShape = Catalogue>(options: RunAppOptions<S, C>): Promise<void> {
  const config = loadConfigOrExit({ sections: options.sections, app: options.app });
  const logger = createLogger({ app: options.app, level: config.LOG_LEVEL, format: config.LOG_FORMAT });
  const bus = createBus(options.app, options.catalogue ?? (catalogue as CatalogueShape as C), config, logger);
  const drainMs = options.drainMs ?? 5_000;
  let stopping = false;

  process.on('uncaughtException', (err) => {
    logger.fatal({ err }, 'uncaught exception; exiting so that PM2 restarts the app');
    process.exit(1);
  });
  process.on('unhandledRejection', (err) => {
    logger.fatal({ err }, 'unhandled rejection; exiting so that PM2 restarts the app');
    process.exit(1);
  });

  let running: RunningApp;
  try {
    running = await options.start({ config, logger, bus });
  } catch (err) {
    // A configuration problem will not go away by restarting: say what it is and exit 78
    // (EX_CONFIG), which pm2.json lists in stop_exit_codes so PM2 does not restart-loop.
    if (err instanceof AppError && CONFIG_ERRORS.has(err.code)) {
      logger.fatal(err.message);
      process.stderr.write(`${err.message}\n`);
      process.exit(78);
    }
    logger.fatal({ err }, 'failed to start');
    process.exit(1);
  }

  const shutdown = (signal: string): void => {
    if (stopping) {
      logger.warn(`second ${signal}: exiting now`);
      process.exit(1);
    }
    stopping = true;
    logger.info(`${signal}: draining (at most ${drainMs} ms)`);
    const timer = setTimeout(() => {
      logger.error(`drain took longer than ${drainMs} ms; exiting`);
      process.exit(1);
    }, drainMs);
    timer.unref();
    running
      .stop()
      .then(() => bus.close())
      .then(() => {
        logger.info('stopped cleanly');
        process.exit(0);
      })
      .catch((err: unknown) => {
        logger.error({ err }, 'error while stopping');
        process.exit(1);
      });
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));

  logger.info({ pid: process.pid }, 'ready');
  process.send?.('ready');
}
