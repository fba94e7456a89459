import { join } from 'node:path';

import { testSetup } from '@steem-bot/testkit';

import { MailStore } from '../src';

test('purge deletes finished messages past the keep time and never a pending one', () => {
  const t = testSetup();
  const store = new MailStore(join(t.config.DATA_DIR, 'mailer.sqlite'));
  try {
    const day = 86_400_000;
    const now = Date.parse('2027-01-10T00:00:00Z');
    const add = (key: string, sendAt?: string) =>
      store.enqueue({
        client: 'c',
        key,
        request: { to: ['a@example.com'], subject: key, text: 't', ...(sendAt ? { send_at: sendAt } : {}) },
        tid: '0000000000000000',
        now: now - 40 * day,
        domain: 'example.com',
      }).message;
    const old = add('old-sent');
    const recent = add('recent-sent');
    const oldPending = add('old-pending', '2026-12-01T00:00:00Z'); // long overdue, still pending
    const farFuture = add('far-future', '2029-01-01T00:00:00Z');
    const finishedAt = (id: string, at: number, status: string) =>
      store.db.prepare('UPDATE messages SET status = ?, finished_at = ? WHERE id = ?').run(status, at, id);
    finishedAt(old.id, now - 31 * day, 'sent');
    finishedAt(recent.id, now - 2 * day, 'dead');
    expect(store.purge(now, 30 * day)).toBe(1);
    expect(store.get(old.id)).toBeUndefined();
    expect([recent, oldPending, farFuture].map((m) => store.get(m.id)?.request.subject)).toEqual([
      'recent-sent',
      'old-pending',
      'far-future',
    ]);
  } finally {
    store.close();
    t.cleanup();
  }
});
