import { type Proc, projectRootFile, spawnProcess, testSetup } from '@steem-bot/testkit';

// `npm start` on a fresh clone has no .env: the digest must stay online (not red in `pm2 list`)
// and say, once, what to set.
test('with no DIGEST_EMAIL the process signals ready, logs one line saying what to set, and stays up', async () => {
  // Empty values override anything a developer's .env holds (empty = unset).
  const t = testSetup({ DIGEST_EMAIL: '' });
  let proc: Proc | undefined;
  try {
    proc = await spawnProcess(projectRootFile('bots/digest/dist/main.js'), { env: t.env });
    const exited = await Promise.race([proc.exited, new Promise((r) => setTimeout(() => r('running'), 1_500))]);
    expect(exited).toBe('running');
    const idle = proc.lines.filter((l) => String(l.msg).startsWith('idle'));
    expect(idle).toEqual([
      expect.objectContaining({
        level: 40,
        msg: expect.stringMatching(/until DIGEST_EMAIL is set in \.env or the environment \(then: npx pm2 restart digest\)/),
      }),
    ]);
    expect(await proc.stop('SIGINT')).toBe(0);
  } finally {
    await proc?.stop();
    t.cleanup();
  }
});
