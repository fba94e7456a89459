// The RabbitMQ variant of `npm run test:chaos` (`-- --rabbitmq` or CHAOS_BUS=rabbitmq): the apps
// run with BUS_TRANSPORT=rabbitmq on a private vhost of the broker of TEST_AMQP_URL (made and
// deleted with the local rabbitmqctl), and every other kill round also closes all of that vhost's
// connections. Kept apart from chaos.js so that the main run's file changes little.
'use strict';
const { execFileSync } = require('node:child_process');
const { randomBytes } = require('node:crypto');

const RABBITMQCTL = process.env.RABBITMQCTL ?? '/usr/sbin/rabbitmqctl';
const ctl = (...args) => execFileSync(RABBITMQCTL, args, { stdio: 'ignore', timeout: 60_000 });

function setup(on) {
  if (!on) return { on: false, env: {}, chaos() {}, cleanup() {} };
  const base = process.env.TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
  const vhost = `chaos-${process.pid}-${randomBytes(3).toString('hex')}`;
  ctl('add_vhost', vhost);
  ctl('set_permissions', '-p', vhost, new URL(base).username || 'guest', '.*', '.*', '.*');
  const url = new URL(base);
  url.pathname = `/${vhost}`;
  let round = 0;
  const state = {
    on: true,
    vhost,
    closes: 0,
    env: { BUS_TRANSPORT: 'rabbitmq', BUS_AMQP_URLS: url.toString() },
    chaos() {
      if (++round % 2 !== 0) return;
      try {
        ctl('close_all_connections', '--vhost', vhost, 'chaos: connections closed');
        state.closes++;
      } catch {
        // no connection to close yet
      }
    },
    cleanup() {
      try {
        ctl('delete_vhost', vhost);
      } catch {
        // already gone
      }
    },
  };
  return state;
}

module.exports = { setup };
