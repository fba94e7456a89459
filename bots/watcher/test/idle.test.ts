import { type Proc, projectRootFile, spawnProcess, testSetup } from '@steem-bot/testkit';

// `npm start` on a fresh clone has no .env: the watcher must stay online (not red in `pm2 list`)
// and say, once, what to set.
test('with no WATCHER_ACCOUNTS/WATCHER_EMAIL the process signals ready, logs one line saying what to set, and stays up', async () => {
  // Empty values override anything a developer's .env holds (empty = unset).
  const t = testSetup({ WATCHER_ACCOUNTS: '', WATCHER_EMAIL: '' });
  let proc: Proc | undefined;
  try {
    proc = await spawnProcess(projectRootFile('bots/watcher/dist/main.js'), { env: t.env });
    const exited = await Promise.race([proc.exited, new Promise((r) => setTimeout(() => r('running'), 1_500))]);
    expect(exited).toBe('running');
    const idle = proc.lines.filter((l) => String(l.msg).startsWith('idle'));
    expect(idle).toEqual([
      expect.objectContaining({
        level: 40,
        msg: expect.stringMatching(
          /until WATCHER_ACCOUNTS and WATCHER_EMAIL are set in \.env or the environment \(then: npx pm2 restart watcher\)/,
        ),
      }),
    ]);
    expect(await proc.stop('SIGINT')).toBe(0);
  } finally {
    await proc?.stop();
    t.cleanup();
  }
});

test('an invalid WATCHER_* value is a config error: the problem list on stderr and exit code 78 (PM2 does not restart it)', async () => {
  const t = testSetup({ WATCHER_ACCOUNTS: 'alice', WATCHER_EMAIL: 'nobody' });
  try {
    const proc = await spawnProcess(projectRootFile('bots/watcher/dist/main.js'), { env: t.env, ready: false, stderr: 'pipe' });
    let stderr = '';
    proc.child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    expect(await proc.exited).toBe(78);
    expect(stderr).toMatch(/^invalid configuration:\n {2}WATCHER_EMAIL: expected an email address \(name@example\.com\); got "nobody"\n/);
  } finally {
    t.cleanup();
  }
});
