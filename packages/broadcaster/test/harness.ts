import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { createIpcBus } from '@steem-bot/bus';
import { catalogue, type Config, loadConfig, type Logger } from '@steem-bot/config';

import { type Broadcaster, createBroadcaster } from '../src';

/** A temp SOCKET_DIR/DATA_DIR and the config of a broadcaster pointed at `nodes`. */
export function testConfig(nodes: string[], env: Record<string, string> = {}): { config: Config; dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'sbb-'));
  const config = loadConfig({
    dotenvPath: false,
    env: {
      SOCKET_DIR: join(dir, 'run'),
      DATA_DIR: join(dir, 'data'),
      STEEM_NODES: nodes.join(','),
      BROADCASTER_POLL_MS: '200',
      BROADCASTER_RPC_TIMEOUT_MS: '1000',
      LOG_LEVEL: 'warn',
      ...env,
    },
  });
  return { config, dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A broadcaster in this process, on a real node-ipc socket. */
export async function startBroadcaster(config: Config, logger: Logger): Promise<{ broadcaster: Broadcaster; stop(): Promise<void> }> {
  const bus = createIpcBus('broadcaster', catalogue, config, logger);
  const broadcaster = createBroadcaster(config, logger, bus, join(config.DATA_DIR, 'broadcaster.checkpoint.json'));
  await broadcaster.start();
  return {
    broadcaster,
    stop: async () => {
      await broadcaster.stop();
      await bus.close();
    },
  };
}

/** A bus client of this process (app name `observer`). */
export function observer(config: Config, logger: Logger): ReturnType<typeof createIpcBus<typeof catalogue>> {
  return createIpcBus('observer', catalogue, config, logger);
}

export { keptLogger, waitFor } from '@steem-bot/testkit';
