import { join } from 'node:path';

import { Bus, IpcTransport, MAX_KEY_LENGTH } from '../src';
import { memoryLogger, tempDir, type TestCatalogue, testCatalogue } from './helpers';

// The receiver's dedupe of idempotency keys is durable: in its stream's SQLite file, not a map
// that a restart forgets.
let tmp: ReturnType<typeof tempDir>;
const buses: Array<Bus<TestCatalogue>> = [];
beforeEach(() => (tmp = tempDir()));
afterEach(async () => {
  for (const b of buses.splice(0)) await b.close();
  tmp.cleanup();
});

function bus(app: string): Bus<TestCatalogue> {
  const { logger } = memoryLogger(app);
  const transport = new IpcTransport({ socketDir: join(tmp.dir, 'run'), dataDir: join(tmp.dir, 'data'), logger });
  const b = new Bus({ app, catalogue: testCatalogue, transport, logger, taskTimeoutMs: 2000 });
  buses.push(b);
  return b;
}

async function receiver(counter: { runs: number }): Promise<Bus<TestCatalogue>> {
  const alpha = bus('alpha');
  alpha.handle('alpha.job.run', (p) => {
    counter.runs++;
    return { doubled: p.n * 2 };
  });
  await alpha.serve();
  return alpha;
}

test('a task key accepted before a restart of the receiver is not run again after it; its stream is still there', async () => {
  const first = { runs: 0 };
  const alpha = await receiver(first);
  const client = bus('client');
  await expect(client.send('alpha.job.run', { n: 2 }, { idempotencyKey: 'order-1' })).resolves.toEqual({ doubled: 4 });
  await expect(client.send('alpha.job.run', { n: 2 }, { idempotencyKey: 'order-1' })).resolves.toEqual({ doubled: 4 });
  expect(first.runs).toBe(1);
  // Served without a floor, its stream survives the restart too (default positions, time-based).
  await alpha.publish('tick.happened', { n: 1 });
  const head = alpha.head;
  await alpha.close();

  const second = { runs: 0 };
  const again = await receiver(second);
  expect(again.head).toBe(head);
  expect(again.streamInfo()).toMatchObject({ floor: 0 });
  await expect(client.send('alpha.job.run', { n: 2 }, { idempotencyKey: 'order-1' })).resolves.toEqual({ doubled: 4 });
  expect(second.runs).toBe(0);
  await expect(client.send('alpha.job.run', { n: 3 }, { idempotencyKey: 'order-2' })).resolves.toEqual({ doubled: 6 });
  expect(second.runs).toBe(1);
});

test('keys longer than MAX_KEY_LENGTH are refused by the sender and by the receiver', async () => {
  const counter = { runs: 0 };
  await receiver(counter);
  const client = bus('client');
  const long = 'k'.repeat(MAX_KEY_LENGTH + 1);
  await expect(client.send('alpha.job.run', { n: 1 }, { idempotencyKey: long })).rejects.toMatchObject({ code: 'ERR_BUS_INVALID_PAYLOAD' });
  // A sender that skips the check (another language, an old version) is refused by the receiver.
  const transport = new IpcTransport({ socketDir: join(tmp.dir, 'run'), logger: memoryLogger('raw').logger });
  const reply = transport.request('alpha', { name: 'alpha.job.run', payload: { n: 1 }, tid: 't', key: long }, 2000);
  await expect(reply).rejects.toMatchObject({ code: 'ERR_BUS_INVALID_PAYLOAD' });
  await transport.close();
  expect(counter.runs).toBe(0);
});
