import type { Logger } from '@steem-bot/config';

/** Settings of the node-ipc transport (the bus's part of the Config, plus the logger). */
export interface IpcOptions {
  socketDir: string;
  /**
   * Directory of the streams (`<dataDir>/streams/<app>.sqlite`). Without it a stream lives in an
   * in-memory database and dies with the process (tests only).
   */
  dataDir?: string;
  /** Prefix of every socket file; node-ipc's default, so plain clients need only `socketRoot`. */
  appspace: string;
  maxMessageBytes: number;
  maxConnections: number;
  /** Retention of a stream: events older than this many hours are pruned (BUS_RETENTION_HOURS). */
  retentionHours: number;
  /** Retention of a stream: the oldest events are pruned past this many bytes (BUS_RETENTION_BYTES). */
  retentionBytes: number;
  /** Bytes of the newest frames each stream keeps in memory. */
  cacheBytes: number;
  /** Unsent bytes a cursor may leave in its socket before it waits for the socket to drain. */
  sendBytes: number;
  /** How often a stream checks its retention. */
  pruneIntervalMs: number;
  logger: Logger;
}

/** What `new IpcTransport()` needs: where and how to log; everything else has a default. */
export type IpcTransportOptions = Pick<IpcOptions, 'socketDir' | 'logger'> & Partial<IpcOptions>;

/** The defaults (the same as the config's defaults for the BUS_* variables). */
export const IPC_DEFAULTS: Omit<IpcOptions, 'socketDir' | 'logger' | 'dataDir'> = {
  appspace: 'app.',
  maxMessageBytes: 1024 * 1024,
  maxConnections: 256,
  retentionHours: 168,
  retentionBytes: 8 * 1024 ** 3,
  // ~12,000 ops of ~340 B: minutes of full Steem blocks; a subscriber further behind reads the
  // log's segments (one row per block) from SQLite.
  cacheBytes: 4 * 1024 * 1024,
  sendBytes: 128 * 1024,
  pruneIntervalMs: 1_000,
};
