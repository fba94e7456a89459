import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Bus, EventLog, MemoryHub, MemoryTransport } from '@steem-bot/bus';
import { AppError, catalogue } from '@steem-bot/config';
import { keptLogger, type Proc, spawnProcess, waitFor } from '@steem-bot/testkit';

import { SqliteMailerStore } from '../src';
import { relay, stopRelays } from '../src/relay';
import { MailStore } from '../src/store';

// The outbox: an email.* event is written in the same transaction as the state change that
// causes it and relayed to the stream after, so a SIGKILL at any point neither loses nor
// invents one: every committed change has exactly one event, none comes without a change.
const LOOP = join(__dirname, 'fixtures', 'outbox-loop.ts');

let dir: string;
const procs: Proc[] = [];
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'sbo-'))));
afterEach(async () => {
  await Promise.all(procs.splice(0).map((p) => p.stop()));
  rmSync(dir, { recursive: true, force: true });
});

test('SIGKILL at random points of a loop of state changes: every committed change has exactly one event', async () => {
  const env = { STORE: join(dir, 'mailer.sqlite'), SOCKET_DIR: join(dir, 'run'), DATA_DIR: join(dir, 'data') };
  const store = new MailStore(env.STORE);
  try {
    for (let round = 0; round < 6; round++) {
      const loop = await spawnProcess(LOOP, { env });
      procs.push(loop);
      const sentBefore = store.counts().sent ?? 0;
      await waitFor(() => (store.counts().sent ?? 0) > sentBefore, 20_000, 'state changes');
      await new Promise((r) => setTimeout(r, 50 + Math.random() * 250));
      await loop.stop('SIGKILL');
    }
    const drain = await spawnProcess(LOOP, { args: ['drain'], env, ready: false });
    procs.push(drain);
    await drain.message((m) => typeof m === 'object' && m !== null && 'drained' in m);
    await drain.stop('SIGKILL');

    const sent = (store.db.prepare("SELECT id FROM messages WHERE status = 'sent'").pluck().all() as string[]).sort();
    const log = new EventLog(join(env.DATA_DIR, 'streams', 'mailer-worker.sqlite'));
    const events = log.read(0, 1_000_000).map((e) => {
      const frame = JSON.parse(e.frame.toString('utf8').slice(0, -1)) as { type: string; data: { id: string } };
      return { name: frame.type, id: frame.data.id };
    });
    log.close();
    expect(sent.length).toBeGreaterThan(6);
    expect(events.every((e) => e.name === 'email.sent')).toBe(true);
    expect(events.map((e) => e.id).sort()).toEqual(sent);
    expect(store.outbox('mailer-worker').pending()).toEqual([]);
  } finally {
    store.close();
  }
});

test('a relay that fails (the stream unreachable) is tried again by itself: the event does not wait for the next state change', async () => {
  const store = new SqliteMailerStore(new MailStore(join(dir, 'mailer.sqlite')));
  const { logger, lines } = keptLogger('mailer', 'debug');
  const bus = new Bus({ app: 'mailer', catalogue, transport: new MemoryTransport(new MemoryHub()), logger });
  await bus.serve();
  try {
    await store.enqueue({
      client: 'shop',
      key: undefined,
      request: { to: ['bob@example.com'], subject: 's', text: 't' },
      tid: 'tid-1',
      now: Date.now(),
      domain: 'x.org',
    });
    const publishBatch = bus.publishBatch.bind(bus);
    let failures = 0;
    bus.publishBatch = (...a) =>
      failures++ === 0 ? Promise.reject(new AppError('ERR_BUS_UNAVAILABLE', 'no broker reachable')) : publishBatch(...a);
    relay(store, 'mailer', bus, logger);
    await waitFor(() => lines.some((l) => String(l.msg).includes('will retry')), 2_000, 'the failed relay');
    await waitFor(async () => (await store.pendingEvents('mailer')).length === 0, 3_000, 'the retried relay');
    expect(bus.streamInfo()?.head).toBeGreaterThan(0);
  } finally {
    await stopRelays(store);
    await bus.close();
    await store.close();
  }
});
