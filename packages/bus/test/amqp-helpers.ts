import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

import { connect } from 'amqplib';

import { amqpNames, AmqpTransport, type AmqpTransportOptions } from '../src';
import { memoryLogger } from './helpers';

/** The broker of the RabbitMQ suites, or undefined: then they are skipped, with one line saying so. */
export const AMQP_URL = process.env.TEST_AMQP_URL;

/** `describe`, or `describe.skip` with one visible line when TEST_AMQP_URL is not set. */
export function describeAmqp(file: string): jest.Describe {
  if (AMQP_URL) return describe;
  process.stdout.write(`${file}: TEST_AMQP_URL is not set; the RabbitMQ tests are skipped\n`);
  return describe.skip;
}

/**
 * A private namespace on the test broker: every queue and exchange a transport made with it
 * declares starts with its own prefix, and `cleanup()` deletes them.
 */
export function amqpScope(url = AMQP_URL as string): {
  prefix: string;
  transport(options?: Partial<AmqpTransportOptions>): AmqpTransport;
  cleanup(apps: readonly string[]): Promise<void>;
} {
  const prefix = `t-${process.pid}-${randomBytes(4).toString('hex')}`;
  const made: AmqpTransport[] = [];
  return {
    prefix,
    transport(options = {}) {
      const t = new AmqpTransport({
        urls: [url],
        logger: memoryLogger('amqp').logger,
        prefix,
        brokerWaitMs: 10_000,
        ...options,
      });
      made.push(t);
      return t;
    },
    async cleanup(apps) {
      await Promise.all(made.map((t) => t.close().catch(() => undefined)));
      const conn = await connect(url);
      const ch = await conn.createChannel();
      const n = amqpNames(prefix);
      for (const app of apps) {
        for (const q of [n.stream(app), n.tasks(app), n.dead(app)]) await ch.deleteQueue(q);
      }
      await ch.deleteExchange(n.taskExchange);
      await ch.deleteExchange(n.deadExchange);
      await conn.close();
    },
  };
}

const RABBITMQCTL = '/usr/sbin/rabbitmqctl';

function ctl(...args: string[]): void {
  execFileSync(RABBITMQCTL, args, { stdio: 'ignore', timeout: 60_000 });
}

/**
 * A private virtual host on the local broker (for tests that close connections: they touch only
 * this run's clients). `url` points into it; `cleanup()` deletes it with all it holds.
 */
export function amqpVhost(): { vhost: string; url: string; closeConnections(): void; cleanup(): void } {
  const vhost = `t-${process.pid}-${randomBytes(4).toString('hex')}`;
  ctl('add_vhost', vhost);
  ctl('set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*');
  const base = new URL(AMQP_URL as string);
  base.pathname = `/${encodeURIComponent(vhost)}`;
  return {
    vhost,
    url: base.toString(),
    closeConnections: () => ctl('close_all_connections', '--vhost', vhost, 'test: connection chaos'),
    cleanup: () => ctl('delete_vhost', vhost),
  };
}

/** Stop the broker's application for `ms` and start it again, whatever happens (it is shared). */
export async function brokerDown(ms: number): Promise<void> {
  try {
    ctl('stop_app');
    await new Promise((r) => setTimeout(r, ms));
  } finally {
    ctl('start_app');
  }
}
