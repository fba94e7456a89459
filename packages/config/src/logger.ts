import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';

import { maskUrlCredentials, redactSecrets } from './redact';
import { currentTid } from './tid';

export type { Logger } from 'pino';

export interface LoggerOptions {
  /** The app name: every line carries it. */
  app: string;
  level?: string;
  format?: 'pretty' | 'json';
  /** Where lines go; defaults to stdout. */
  destination?: NodeJS.WritableStream;
}

/**
 * The process's root logger: pino, `{ app }` on every line and the current TID where there is one.
 * `pretty` writes one readable line per event (for `pm2 logs`), `json` one JSON object per line.
 */
export function createLogger(options: LoggerOptions): Logger {
  const destination = options.destination ?? process.stdout;
  const stream =
    options.format === 'json'
      ? destination
      : pretty({
          destination,
          sync: true,
          singleLine: true,
          colorize: false,
          translateTime: 'SYS:HH:MM:ss.l',
          ignore: 'pid,hostname,app,component,tid',
          messageFormat: '{app}{if component}/{component}{end}{if tid} [{tid}]{end} {msg}',
        });
  const logger = pino(
    {
      level: options.level ?? 'info',
      base: { app: options.app },
      // Secrets must never reach a log line: secret-named keys at any depth, and URL credentials
      // in any string, in the logged object and in the message.
      formatters: { log: (object) => redactSecrets(object) },
      hooks: {
        logMethod(args: unknown[], method) {
          method.apply(this, args.map((a) => (typeof a === 'string' ? maskUrlCredentials(a) : a)) as Parameters<typeof method>);
        },
      },
      mixin: () => {
        const tid = currentTid();
        return tid === undefined ? {} : { tid };
      },
    },
    stream,
  );
  // pino applies no formatter to a child's bindings; every child inherits this `child` from the root.
  const pinoChild = logger.child;
  logger.child = function (this: Logger, bindings, options) {
    return pinoChild.call(this, redactSecrets(bindings), options);
  } as Logger['child'];
  return logger;
}
