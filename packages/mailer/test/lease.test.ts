import { keptLogger, waitFor } from '@steem-bot/testkit';

import { type Delivery, MailStore, type Message, SqliteMailerStore, storeFile, Worker } from '../src';
import { mailerEnv } from './helpers';

/** A delivery that holds every send until `release` is called, and counts them. */
function heldDelivery(): Delivery & { sent: string[]; release: () => void } {
  let release = (): void => undefined;
  const held = new Promise<void>((r) => (release = r));
  const sent: string[] = [];
  return {
    description: 'held',
    sent,
    release: () => release(),
    async send(message: Message) {
      sent.push(message.id);
      await held;
    },
    close: () => undefined,
  };
}

// Give a worker's loop a chance to run after a wake-up (we wait for something NOT to happen).
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 300));

test('a delivery that outlasts its lease is not sent twice: the live worker renews its lease and never claims what it holds (injectable clock)', async () => {
  const m = mailerEnv({ MAILER_LEASE_MS: '2000' });
  let now = Date.parse('2027-03-01T12:00:00Z');
  const clock = (): number => now;
  const delivery = heldDelivery();
  const start = async (app: string): Promise<{ worker: Worker; stop: () => Promise<void> }> => {
    const store = new MailStore(storeFile(m.config.DATA_DIR));
    const bus = m.busFor(app);
    const worker = new Worker({
      store: new SqliteMailerStore(store),
      delivery,
      bus,
      config: m.config,
      logger: keptLogger(app).logger,
      now: clock,
    });
    await worker.start();
    return { worker, stop: () => worker.stop().then(() => (store.close(), bus.close())) };
  };
  const a = await start('mailer-worker');
  let b: Awaited<ReturnType<typeof start>> | undefined;
  try {
    const request = { to: ['bob@example.com'], subject: 'Slow', text: 'x' };
    const message = m.store.enqueue({ client: 'app', key: undefined, request, tid: '0000000000000000', now, domain: 'x.org' })
      .message as Message;
    a.worker.wake();
    await waitFor(() => delivery.sent.length === 1, 5_000, 'the first send');

    // The send is still in flight long after the lease would have run out.
    for (let i = 0; i < 3; i++) {
      now += 10 * 2000;
      a.worker.wake();
      await settle();
      expect(m.store.get(message.id)?.lease_until).toBeGreaterThan(now);
    }
    expect(delivery.sent).toEqual([message.id]);

    // Another worker does not take it over either: the lease is alive.
    b = await start('mailer-worker-2');
    b.worker.wake();
    await settle();
    expect(delivery.sent).toEqual([message.id]);

    delivery.release();
    await waitFor(() => m.store.get(message.id)?.status === 'sent', 5_000, 'sent');
    expect(m.store.attempts(message.seq).map((x) => x.outcome)).toEqual(['sent']);
    expect(delivery.sent).toEqual([message.id]);
  } finally {
    delivery.release();
    await a.stop();
    await b?.stop();
    m.cleanup();
  }
});
