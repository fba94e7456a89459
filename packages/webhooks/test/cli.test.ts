import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

import { testSetup } from '@steem-bot/testkit';

import { authenticate, SqliteWebhookStore, storeFile } from '../src';

const CLI = join(__dirname, '..', 'dist', 'cli.js');

describe('npm run webhooks -- clients', () => {
  test('add prints the token once; list shows posted types and granted tasks, never a token; grant, own and revoke', async () => {
    const t = testSetup();
    try {
      const run = (...args: string[]) =>
        spawnSync(process.execPath, [CLI, ...args], { env: { ...process.env, ...t.env }, encoding: 'utf8' });
      const added = run('clients', 'add', 'shop', '--events', 'shop.order_paid');
      expect(added.status).toBe(0);
      const token = /^\s+(shop\.\S+)$/m.exec(added.stdout)?.[1] as string;
      expect(token).toMatch(/^shop\.[A-Za-z0-9_-]{43}$/);
      expect(run('clients', 'grant', 'shop', 'digest.report.send').status).toBe(0);
      expect(run('clients', 'own', 'shop', 'shop.refunded').status).toBe(0);
      const badTask = run('clients', 'grant', 'shop', 'no.such.task');
      expect([badTask.status, badTask.stderr]).toEqual([1, expect.stringContaining('not a catalogue task')]);
      expect(run('clients', 'own', 'shop', 'transfer').status).toBe(1);
      expect(run('clients', 'add', 'other', '--events', 'shop.order_paid').status).toBe(0);
      expect(run('clients', 'own', 'other', 'shop.refunded').stderr).toContain('owned by another client');
      const list = run('clients', 'list');
      expect(list.stdout).toContain('events: shop.order_paid,shop.refunded  tasks: digest.report.send');
      expect(list.stdout).not.toContain(token.split('.')[1]);
      const store = new SqliteWebhookStore(storeFile(t.config.DATA_DIR));
      try {
        expect((await authenticate(store, `Bearer ${token}`))?.name).toBe('shop');
        expect(run('clients', 'revoke', 'shop').status).toBe(0);
        expect(await authenticate(store, `Bearer ${token}`)).toBeUndefined();
      } finally {
        await store.close();
      }
      expect(run('clients', 'add', 'shop').stderr).toContain('never reused');
      expect(run('clients', 'frobnicate').status).toBe(64);
    } finally {
      t.cleanup();
    }
  });
});
