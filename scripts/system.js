// The whole system as one PM2 ecosystem: every app of pm2.json pointed at a devnode and an SMTP
// sink, with its own directories. Used by `npm run demo` and `npm run test:chaos`.
'use strict';
const { readFileSync } = require('node:fs');
const { join } = require('node:path');

const ROOT = join(__dirname, '..');

/** The apps of pm2.json, each with `env` merged over its own. */
function projectApps(env) {
  const { apps } = JSON.parse(readFileSync(join(ROOT, 'pm2.json'), 'utf8'));
  return apps.map((app) => ({ ...app, cwd: ROOT, env: { ...app.env, ...env } }));
}

/**
 * @param {object} o
 * @param {string} o.dir            where sockets, data, outbox and the sink's mail go
 * @param {number} o.devnodePort
 * @param {number} o.smtpPort
 * @param {number} o.mailerPort
 * @param {number} [o.webhooksPort] default 8032; 0 picks a free port
 * @param {number} [o.consolePort] default 8031 with the devnode (the demo), else 0 (a free port: tests, chaos)
 * @param {string} o.schedules      the clock's schedule file
 * @param {string[]} [o.devnodeArgs] extra devnode CLI arguments (synthetic blocks, pace)
 * @param {boolean} [o.withDevnode]  run devnode and the SMTP sink under PM2 too (the demo)
 * @param {number} [o.webhookSinkPort] with withDevnode: run the webhook sink (scripts/webhook-sink.js) on this port
 * @param {Record<string,string>} [o.env] more variables for every app
 */
function ecosystem(o) {
  const env = {
    SOCKET_DIR: join(o.dir, 'run'),
    DATA_DIR: join(o.dir, 'data'),
    MAILER_OUTBOX: join(o.dir, 'outbox'),
    STEEM_NODES: `http://127.0.0.1:${o.devnodePort}`,
    STEEM_START_BLOCK: '1000000',
    BROADCASTER_POLL_MS: '500',
    SMTP_URL: `smtp://127.0.0.1:${o.smtpPort}`,
    MAILER_PORT: String(o.mailerPort),
    WEBHOOKS_PORT: String(o.webhooksPort ?? 8032),
    CONSOLE_PORT: String(o.consolePort ?? (o.withDevnode ? 8031 : 0)),
    MAILER_FROM: 'steem-bot@demo.example.com',
    WATCHER_ACCOUNTS: 'alice,bob',
    WATCHER_EMAIL: 'watcher@demo.example.com',
    DIGEST_EMAIL: 'digest@demo.example.com',
    CLOCK_SCHEDULES: o.schedules,
    ...o.env,
  };
  const devnode = join(ROOT, 'packages/devnode/dist/cli.js');
  const tools = o.withDevnode
    ? [
        {
          name: 'devnode',
          script: devnode,
          args: ['--port', String(o.devnodePort), ...(o.devnodeArgs ?? [])],
          cwd: ROOT,
          wait_ready: true,
          listen_timeout: 10_000,
          kill_timeout: 3_000,
        },
        {
          name: 'smtp-sink',
          script: devnode,
          args: ['smtp', '--port', String(o.smtpPort), '--dir', join(o.dir, 'smtp-sink')],
          cwd: ROOT,
          wait_ready: true,
          listen_timeout: 10_000,
          kill_timeout: 3_000,
        },
        ...(o.webhookSinkPort === undefined
          ? []
          : [
              {
                name: 'webhook-sink',
                script: join(ROOT, 'scripts/webhook-sink.js'),
                args: ['--port', String(o.webhookSinkPort), '--dir', join(o.dir, 'webhook-sink')],
                cwd: ROOT,
                wait_ready: true,
                listen_timeout: 10_000,
                kill_timeout: 3_000,
              },
            ]),
      ]
    : [];
  return { apps: [...tools, ...projectApps(env)] };
}

/**
 * The apps of each host when the system runs on two machines (STORE=postgres and
 * BUS_TRANSPORT=rabbitmq): `pm2 start pm2.json --only <the list, comma-separated>` on each. The
 * broadcaster and the signer run on both: one acts, the other waits as its standby (each host then
 * needs the signer's keys). `npm run test:two-hosts`
 * runs exactly these.
 */
const HOST_ROLES = {
  a: ['broadcaster', 'mailer-api', 'clock-1', 'new-posts', 'watcher', 'signer'],
  b: ['broadcaster', 'mailer-worker', 'clock-2', 'digest', 'tipper', 'signer'],
};

module.exports = { HOST_ROLES, ROOT, ecosystem };
