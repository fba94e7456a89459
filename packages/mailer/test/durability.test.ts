import fs, { chmodSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

import { testSetup, waitFor } from '@steem-bot/testkit';

import { MailStore, storeFile } from '../src';
import { call, client, mailerEnv, startApi, startMailWorker } from './helpers';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  jest.restoreAllMocks();
  for (const c of cleanups.splice(0).reverse()) await c();
});

const request = (i: number, text = 'x') => ({ to: ['a@example.com'], subject: `m${i}`, text });

describe('mailer durability on disk', () => {
  test('the intake store fsyncs every commit (synchronous=FULL) and the directory of its new file, before a message is acknowledged', () => {
    const t = testSetup();
    cleanups.push(t.cleanup);
    const synced = jest.spyOn(fs, 'fsyncSync');
    const store = new MailStore(storeFile(t.config.DATA_DIR), { checkpoints: false, fsyncCommits: true }); // as openMailerStore(config, 'intake')
    cleanups.push(() => store.close());
    expect(store.db.pragma('synchronous', { simple: true })).toBe(2); // FULL: the WAL is fsynced at each commit
    expect(synced).toHaveBeenCalled(); // the directory entry of the new database file
  });

  test('with no worker checkpointing, the API checkpoints itself once the WAL passes its limit: the WAL stays bounded', () => {
    const t = testSetup();
    cleanups.push(t.cleanup);
    const file = storeFile(t.config.DATA_DIR);
    const store = new MailStore(file, { checkpoints: false, walLimitBytes: 1024 * 1024 });
    cleanups.push(() => store.close());
    const text = 'y'.repeat(20_000);
    let largest = 0;
    for (let i = 0; i < 400; i++) {
      store.enqueue({ client: 'c', key: undefined, request: request(i, text), tid: '0000000000000000', now: Date.now(), domain: 'x.org' });
      largest = Math.max(largest, statSync(`${file}-wal`).size);
    }
    // 400 messages of 20 kB (8 MB) went through a WAL that never passed its limit by much.
    expect(largest).toBeLessThan(3 * 1024 * 1024);
    expect(store.counts()).toEqual({ scheduled: 400 });
  });

  test('MAILER_OUTBOX is created 0700, refused with a clear config error when others can read it, and each .eml is fsynced (file, then directory) before it counts as sent', async () => {
    const refused = mailerEnv({ MAILER_OUTBOX: join('/tmp', `outbox-open-${process.pid}-${Date.now()}`) });
    cleanups.push(() => refused.cleanup());
    mkdirSync(refused.config.MAILER_OUTBOX, { mode: 0o700 });
    chmodSync(refused.config.MAILER_OUTBOX, 0o755);
    cleanups.push(() => fs.rmSync(refused.config.MAILER_OUTBOX, { recursive: true, force: true }));
    await expect(startMailWorker(refused)).rejects.toMatchObject({
      code: 'ERR_CONFIG_INVALID',
      message: expect.stringMatching(
        /MAILER_OUTBOX: expected a directory of this user that group and others cannot read \(mode 700\); got mode 755/,
      ),
    });

    const m = mailerEnv();
    cleanups.push(() => m.cleanup());
    const api = await startApi(m);
    cleanups.push(() => api.stop());
    const worker = await startMailWorker(m);
    cleanups.push(() => worker.stop());
    expect(statSync(m.config.MAILER_OUTBOX).mode & 0o777).toBe(0o700);
    const calls: string[] = [];
    jest.spyOn(fs, 'fsyncSync').mockImplementation(() => void calls.push('fsync'));
    const rename = fs.renameSync.bind(fs);
    jest.spyOn(fs, 'renameSync').mockImplementation((from, to) => {
      calls.push('rename');
      rename(from, to);
    });
    const { token } = client(m, 'app');
    const id = (await call(api.url, token, 'POST', '/v1/messages', { to: 'x@example.com', subject: 'Outbox', text: 'Hi' })).body
      .id as string;
    await waitFor(() => m.store.get(id)?.status === 'sent', 5_000, 'written');
    // The file's data, its name in the directory, then the message is marked sent.
    expect(calls).toEqual(['fsync', 'rename', 'fsync']);
  });
});
