import { randomBytes } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';

import { Postgres } from '@steem-bot/store';
import { keptLogger, waitFor } from '@steem-bot/testkit';

import { PostgresBotStore } from '../src';
import { CheckpointWriter } from '../src/checkpoint';

// PostgreSQL out of reach: the store says so with ERR_BOT_STORE_UNAVAILABLE (which the bot retries
// and never dead-letters), not with a driver error; once it is back, the store works again.
const url = process.env.TEST_DATABASE_URL;
if (!url) process.stdout.write('bot/store outage: TEST_DATABASE_URL is not set; skipped\n');
const testPg = url ? test : test.skip;

/** A TCP proxy on 127.0.0.1 to PostgreSQL that can be cut (every connection reset, new ones refused). */
async function proxy(target: URL): Promise<{ url: string; cut(): Promise<void>; restore(): Promise<void>; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let port = 0;
  const listen = () =>
    new Promise<void>((resolve) => {
      server = createServer((client) => {
        const upstream = connect(Number(target.port || 5432), target.hostname);
        for (const s of [client, upstream]) {
          sockets.add(s);
          s.on('error', () => undefined);
          s.on('close', () => sockets.delete(s));
        }
        client.pipe(upstream).pipe(client);
      });
      server.listen(port, '127.0.0.1', () => {
        port = (server?.address() as { port: number }).port;
        resolve();
      });
    });
  const stop = () => {
    for (const s of sockets) s.resetAndDestroy();
    return new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  };
  await listen();
  const via = new URL(target.href);
  via.hostname = '127.0.0.1';
  via.port = String(port);
  return { url: via.href, cut: stop, restore: listen, close: stop };
}

testPg('PostgreSQL cut off: ERR_BOT_STORE_UNAVAILABLE (retryable) from reads and updates; back: the store works again', async () => {
  const schema = `sbt_botout_${process.pid}_${randomBytes(3).toString('hex')}`;
  const link = await proxy(new URL(url as string));
  const store = await PostgresBotStore.open({ url: link.url, schema, bot: 'digest' });
  try {
    await store.set('n', 1);
    await link.cut();
    const unavailable = { code: 'ERR_BOT_STORE_UNAVAILABLE', retryable: true };
    await expect(store.get('n')).rejects.toMatchObject(unavailable);
    await expect(store.update<number>('n', (n) => (n ?? 0) + 1)).rejects.toMatchObject(unavailable);
    await expect(store.saveCheckpoint(5)).rejects.toMatchObject(unavailable);
    // A bot's own error in an update is still its own.
    await link.restore();
    await expect(
      store.update('n', () => {
        throw new Error('mine');
      }),
    ).rejects.toThrow('mine');
    expect(await store.update<number>('n', (n) => (n ?? 0) + 1)).toBe(2);
  } finally {
    await store.close();
    await link.close();
    const admin = await Postgres.open({ url: url as string, schema, name: 'admin', poolSize: 1 });
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin.close();
  }
});

testPg('the checkpoint while PostgreSQL is cut off: one warning, then written by itself once it is back, never backwards', async () => {
  const schema = `sbt_botout_${process.pid}_${randomBytes(3).toString('hex')}`;
  const link = await proxy(new URL(url as string));
  const store = await PostgresBotStore.open({ url: link.url, schema, bot: 'watcher' });
  const { logger, lines } = keptLogger('watcher', 'info');
  try {
    const writer = new CheckpointWriter(store, null, logger, 100);
    writer.save(10);
    await writer.flush();
    expect(writer.position).toBe(10);
    await link.cut();
    for (const p of [11, 12, 13]) writer.save(p);
    await waitFor(() => lines.some((l) => String(l.msg).startsWith('checkpoint')), 5_000, 'the warning');
    writer.save(14);
    await new Promise((r) => setTimeout(r, 350)); // a few retries while it is still cut off
    expect(writer.position).toBe(10);
    expect(lines.filter((l) => String(l.msg).includes('not saved'))).toHaveLength(1);
    await link.restore();
    await waitFor(() => writer.position === 14, 5_000, 'the checkpoint written after the outage'); // no new save needed
    expect(await store.checkpoint()).toBe(14);
    expect(lines.some((l) => l.msg === 'checkpoint 14 saved again')).toBe(true);
    writer.save(12); // never backwards
    await writer.flush();
    expect(await store.checkpoint()).toBe(14);
  } finally {
    await store.close();
    await link.close();
    const admin = await Postgres.open({ url: url as string, schema, name: 'admin', poolSize: 1 });
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin.close();
  }
});
