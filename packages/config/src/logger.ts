import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';

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

// Secrets must never reach a log line, wherever they sit in a logged object.
const REDACT = ['token', 'password', 'secret', 'authorization', 'wif', 'privateKey', 'postingKey', 'activeKey']
  .flatMap((k) => [k, `*.${k}`, `*.*.${k}`])
  .concat(['headers.authorization', '*.headers.authorization']);

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
  return pino(
    {
      level: options.level ?? 'info',
      base: { app: options.app },
      redact: { paths: REDACT, censor: '[redacted]' },
      mixin: () => {
        const tid = currentTid();
        return tid === undefined ? {} : { tid };
      },
    },
    stream,
  );
}
