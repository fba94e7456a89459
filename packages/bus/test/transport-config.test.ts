import { AppError, type ConfigProblem, loadConfig } from '@steem-bot/config';

import { AmqpTransport, createTransport, IpcTransport } from '../src';
import { memoryLogger, tempDir } from './helpers';

let tmp: ReturnType<typeof tempDir>;
beforeEach(() => (tmp = tempDir()));
afterEach(() => tmp.cleanup());

const base = (): Record<string, string> => ({ SOCKET_DIR: `${tmp.dir}/run`, DATA_DIR: `${tmp.dir}/data` });

function problems(env: Record<string, string>): ConfigProblem[] {
  try {
    loadConfig({ env, dotenvPath: false });
  } catch (err) {
    expect((err as AppError).code).toBe('ERR_CONFIG_INVALID');
    return (err as AppError).data as ConfigProblem[];
  }
  throw new Error('expected the configuration to be refused');
}

describe('BUS_TRANSPORT and BUS_AMQP_URLS', () => {
  test('node-ipc is the default; rabbitmq selects the RabbitMQ transport with every URL of the list', async () => {
    const { logger, lines } = memoryLogger();
    const ipc = createTransport(loadConfig({ env: base(), dotenvPath: false }), logger);
    expect(ipc).toBeInstanceOf(IpcTransport);
    await ipc.close();

    const config = loadConfig({
      env: { ...base(), BUS_TRANSPORT: 'rabbitmq', BUS_AMQP_URLS: ' amqp://u:s3cret@127.0.0.1:1 , amqps://u:s3cret@localhost:1/vh ' },
      dotenvPath: false,
    });
    expect(config.BUS_AMQP_URLS).toEqual(['amqp://u:s3cret@127.0.0.1:1', 'amqps://u:s3cret@localhost:1/vh']);
    const amqp = createTransport(config, logger);
    expect(amqp).toBeInstanceOf(AmqpTransport);
    // Nothing listens there: it tries both, and logs them without the password.
    await new Promise((r) => setTimeout(r, 300));
    await amqp.close();
    const tried = lines.filter((l) => /unreachable/.test(String(l.msg))).map((l) => l.broker);
    expect(tried).toEqual(expect.arrayContaining(['amqp://***@127.0.0.1:1', 'amqps://***@localhost:1/vh']));
    expect(JSON.stringify(lines)).not.toContain('s3cret');
  });

  test('a wrong transport or a non-AMQP URL is refused at start-up with the variable named, the password masked', () => {
    const found = problems({ ...base(), BUS_TRANSPORT: 'kafka', BUS_AMQP_URLS: 'http://u:s3cret@broker.example' });
    expect(found.map((p) => p.variable).sort()).toEqual(['BUS_AMQP_URLS', 'BUS_TRANSPORT']);
    expect(JSON.stringify(found)).not.toContain('s3cret');
    expect(problems({ ...base(), BUS_AMQP_URLS: ' , ' })[0]).toMatchObject({ variable: 'BUS_AMQP_URLS' });
  });
});
