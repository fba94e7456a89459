'use strict';
// Tasks acknowledged per second on a transport: `count` sends (each with its own idempotency key,
// `concurrency` in flight) from one process's bus to another's, the handler doing nothing.
const { createLogger, defineCatalogue } = require('@steem-bot/config');
const { Bus } = require('@steem-bot/bus');
const { z } = require('zod');

const catalogue = defineCatalogue({
  events: {},
  tasks: { 'worker.job.run': { payload: z.object({ n: z.number().int() }), reply: z.object({ n: z.number() }) } },
});

async function measureTasks(makeTransport, count = 5_000, concurrency = 64) {
  const logger = createLogger({ app: 'bench-tasks', level: 'warn', format: 'json' });
  const worker = new Bus({ app: 'worker', catalogue, transport: makeTransport(), logger });
  worker.handle('worker.job.run', (p) => ({ n: p.n }));
  await worker.serve();
  const client = new Bus({ app: 'client', catalogue, transport: makeTransport(), logger, taskTimeoutMs: 10_000 });
  await client.send('worker.job.run', { n: -1 }); // connected and warm
  let next = 0;
  let failed = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const n = next++;
        await client.send('worker.job.run', { n }).catch(() => failed++);
      }
    }),
  );
  const ms = performance.now() - started;
  await client.close();
  await worker.close();
  return { count, concurrency, perSec: (count / ms) * 1000, failed };
}

module.exports = { measureTasks };
