import { join } from 'node:path';

import { testSetup } from '@steem-bot/testkit';

import { MailStore, type Message } from '../src';

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
      }).message as Message;
    const old = add('old-sent');
    const recent = add('recent-sent');
    const oldPending = add('old-pending', '2026-12-01T00:00:00Z'); // long overdue, still pending
    const farFuture = add('far-future', '2029-01-01T00:00:00Z');
    const finishedAt = (id: string, at: number, status: string) =>
      store.db.prepare('UPDATE messages SET status = ?, finished_at = ? WHERE id = ?').run(status, at, id);
    finishedAt(old.id, now - 31 * day, 'sent');
    finishedAt(recent.id, now - 2 * day, 'dead');
    expect(store.purge(now, 30 * day).messages).toBe(1);
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

test('idempotency keys outlive their messages: a replay after the purge gets the same id and last status, another body still conflicts, until MAILER_KEY_KEEP_DAYS', () => {
  const t = testSetup();
  const store = new MailStore(join(t.config.DATA_DIR, 'mailer.sqlite'));
  try {
    const day = 86_400_000;
    const start = Date.parse('2027-01-10T00:00:00Z');
    const request = { to: ['a@example.com'], subject: 'op 42', text: 't' };
    const enqueue = (now: number, subject = request.subject) =>
      store.enqueue({
        client: 'bus',
        key: 'watcher:42:0',
        request: { ...request, subject },
        tid: '0000000000000000',
        now,
        domain: 'x.org',
      });
    const first = enqueue(start);
    store.db.prepare("UPDATE messages SET status = 'sent', finished_at = ? WHERE id = ?").run(start, first.id);
    expect(store.purge(start + 31 * day, 30 * day, 400 * day)).toEqual({ messages: 1, keys: 0 });
    expect(store.get(first.id)).toBeUndefined();

    // A bot replays the op a year later: recognised, not sent again.
    expect(enqueue(start + 365 * day)).toEqual({ id: first.id, status: 'sent', created: false, message: undefined });
    expect(() => enqueue(start + 365 * day, 'other')).toThrow(expect.objectContaining({ code: 'ERR_MAILER_CONFLICT' }));
    expect(store.db.prepare('SELECT COUNT(*) FROM messages').pluck().get()).toBe(0);

    // Past the key's own keep time it is forgotten (a small row, kept MAILER_KEY_KEEP_DAYS).
    expect(store.purge(start + 401 * day, 30 * day, 400 * day)).toEqual({ messages: 0, keys: 1 });
    expect(enqueue(start + 401 * day).created).toBe(true);
  } finally {
    store.close();
    t.cleanup();
  }
});
