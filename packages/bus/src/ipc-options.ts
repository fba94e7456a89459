import type { Logger } from '@steem-bot/config';

/** Settings of the node-ipc transport (the bus's part of the Config, plus the logger). */
export interface IpcOptions {
  socketDir: string;
  /** Prefix of every socket file; node-ipc's default, so plain clients need only `socketRoot`. */
  appspace: string;
  maxMessageBytes: number;
  bufferBytes: number;
  replayBytes: number;
  maxConnections: number;
  /** How long a publisher waits for full subscribers to drain before it goes on regardless. */
  stallMs: number;
  /** Once one subscriber has drained, how much longer the others are waited for (see IpcServer.pace). */
  graceMs: number;
  logger: Logger;
}
