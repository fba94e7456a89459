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

/** What `new IpcTransport()` needs: where and how to log; everything else has a default. */
export type IpcTransportOptions = Pick<IpcOptions, 'socketDir' | 'logger'> & Partial<IpcOptions>;

/** The defaults (the same as the config's defaults for the BUS_* variables). */
export const IPC_DEFAULTS: Omit<IpcOptions, 'socketDir' | 'logger'> = {
  appspace: 'app.',
  maxMessageBytes: 1024 * 1024,
  bufferBytes: 4 * 1024 * 1024,
  replayBytes: 16 * 1024 * 1024,
  maxConnections: 256,
  stallMs: 1_000,
  graceMs: 25,
};
