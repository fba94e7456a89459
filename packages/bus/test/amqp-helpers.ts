import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

import { connect } from 'amqplib';

import { amqpNames, AmqpTransport,type AmqpTransportOptions } from '../src';
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
export function amqpScope(): {
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
        urls: [AMQP_URL as string],
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
      const conn = await connect(AMQP_URL as string);
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

/** Close every client connection to the local broker (as an operator or a network blip would). */
export function closeAllConnections(): void {
  execFileSync('/usr/sbin/rabbitmqctl', ['close_all_connections', '--global', 'test: connection chaos'], { stdio: 'ignore' });
}
