import { testSetup } from '@steem-bot/testkit';

import { addClient, authenticate, MailStore, SqliteMailerStore, storeFile } from '../src';

describe('REST clients', () => {
  test('a revoked client name is never reused: a new holder cannot get the old messages or idempotency keys', async () => {
    const t = testSetup();
    const store = new MailStore(storeFile(t.config.DATA_DIR));
    const mailer = new SqliteMailerStore(store);
    try {
      const old = await addClient(mailer, 'shop', undefined);
      const request = { to: ['bob@example.com'], subject: 'Order 7', text: 'shipped' };
      const sent = store.enqueue({ client: 'shop', key: 'order-7', request, tid: '0000000000000000', now: Date.now(), domain: 'x.org' });
      expect(store.revokeClient('shop', Date.now())).toBe(true);
      await expect(addClient(mailer, 'shop', undefined)).rejects.toThrow(
        expect.objectContaining({ code: 'ERR_MAILER_CONFLICT', message: expect.stringMatching(/revoked; a revoked name is never reused/) }),
      );
      expect(await authenticate(mailer, `Bearer ${old.token}`)).toBeUndefined();
      expect(store.client('shop')?.revoked_at).not.toBeNull();
      expect(store.list('shop', { limit: 10 }).map((m) => m.id)).toEqual([sent.id]);
    } finally {
      store.close();
      t.cleanup();
    }
  });
});
