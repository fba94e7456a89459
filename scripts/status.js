#!/usr/bin/env node
// `npm run status [-- --json]`: the one status module of packages/console (the same object the
// console page renders), as a text screen or as JSON. Directories come from the running apps'
// environment (the demo's differ from the defaults).
'use strict';
const { collectStatus, formatStatus, listPm2Apps } = require('@steem-bot/console');
const { createIpcBus } = require('@steem-bot/bus');
const { catalogue, createLogger, loadConfig } = require('@steem-bot/config');

async function main() {
  const apps = await listPm2Apps().catch(() => []);
  const appEnv = apps.find((a) => a.name === 'broadcaster')?.env ?? {};
  const env = { ...process.env };
  for (const k of [
    'SOCKET_DIR',
    'DATA_DIR',
    'CLOCK_SCHEDULES',
    'STORE',
    'DATABASE_URL',
    'DATABASE_SCHEMA',
    'BUS_TRANSPORT',
    'BUS_AMQP_URLS',
  ])
    if (typeof appEnv[k] === 'string') env[k] = appEnv[k];
  const config = loadConfig({ env });
  const bus = createIpcBus('status', catalogue, config, createLogger({ app: 'status', level: 'silent' }));
  let status;
  try {
    status = await collectStatus({ config, bus, apps });
  } finally {
    await bus.close();
  }
  process.stdout.write(process.argv.includes('--json') ? `${JSON.stringify(status, null, 2)}\n` : formatStatus(status));
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`status: ${err.message}\n`);
    process.exit(1);
  },
);
