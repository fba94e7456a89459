import { catalogue, defineCatalogue } from '@steem-bot/config';
import { z } from 'zod';

import { Bus, MemoryHub, MemoryTransport } from '../src';
import { memoryLogger } from './helpers';

// The catalogue says which app publishes each event: a subscription to the wrong app, or a
// publish by the wrong app, fails to compile (checked by `tsc -p tsconfig.test.json`, which
// fails if an @ts-expect-error below stops being an error) and is refused at run time.
describe('the catalogue names the publisher of each event', () => {
  const hub = new MemoryHub();
  const { logger } = memoryLogger();
  const bus = (app: string): Bus<typeof catalogue> => new Bus({ app, catalogue, transport: new MemoryTransport(hub), logger });

  test('subscribing to an event at an app that does not publish it does not compile, and is refused', () => {
    const client = bus('client');
    const sub = client.subscribe('mailer-worker', { 'email.sent': () => undefined });
    sub.close();
    expect(() =>
      // @ts-expect-error email.sent is published by mailer-worker, not mailer
      client.subscribe('mailer', { 'email.sent': () => undefined }),
    ).toThrow(expect.objectContaining({ code: 'ERR_BUS_WRONG_APP', message: 'email.sent is published by mailer-worker, not mailer' }));
    // @ts-expect-error the broadcaster publishes chain ops, not email events
    expect(() => client.subscribe('broadcaster', { comment: () => undefined, 'email.queued': () => undefined })).toThrow(
      expect.objectContaining({ code: 'ERR_BUS_WRONG_APP' }),
    );
  });

  test('publishing an event another app owns is refused', async () => {
    const mailer = bus('mailer');
    await mailer.serve();
    await expect(mailer.publish('email.sent', { id: 'm1', client: 'c', message_id: 'x', attempts: 1 })).rejects.toMatchObject({
      code: 'ERR_BUS_WRONG_APP',
    });
    await expect(mailer.publish('email.queued', { id: 'm1', client: 'c', send_at: 'now' })).resolves.toBeUndefined();
    await mailer.close();
  });

  test('a catalogue whose publishers name unknown events, share one, or leave one out is refused', () => {
    const events = { 'a.happened': z.object({}), 'b.happened': z.object({}) };
    expect(() => defineCatalogue({ events, tasks: {}, publishers: { x: ['a.happened', 'c.happened'], y: ['a.happened'] } })).toThrow(
      /publisher x of unknown event "c.happened".*"a.happened" published by both x and y.*"b.happened" has no publisher/,
    );
  });
});
