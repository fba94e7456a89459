import type { FaultSpec } from '@steem-bot/devnode';
import { spawnProcess, waitFor } from '@steem-bot/testkit';

import { MAIN, OTHER_KEY, sendTransfers, signedInAll, signerWorld, TEST_KEY, transfersByMemo } from './helpers';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const world = (faults: FaultSpec[], vars: Record<string, string>, key?: string): ReturnType<typeof signerWorld> =>
  signerWorld(cleanups, faults, vars, key);

const TRANSFERS = 200;

test('SIGKILL at random points of 200 transfers while devnode resets 20% of broadcast answers after accepting them: every key ends with exactly one transfer on chain', async () => {
  const w = await world([{ kind: 'accept-reset', rate: 0.2 }], {
    SIGNER_LIVE: '1',
    SIGNER_EXPIRATION_S: '120',
    BUS_TASK_TIMEOUT_MS: '2000',
  });
  let proc = await w.start();
  const keys = Array.from({ length: TRANSFERS }, (_, i) => `crash-${i}`);
  const sending = sendTransfers(w.bus, keys);
  let kills = 0;
  const confirmed = async (): Promise<number> => (await (await w.store()).counts()).confirmed ?? 0;
  // Kill at random moments (random points of intake, signing, broadcasting, confirming) until done.
  while (kills < 12 && (kills < 3 || sending.sent < keys.length || (await confirmed()) < keys.length)) {
    await new Promise((r) => setTimeout(r, 300 + Math.random() * 1_200));
    await proc.stop('SIGKILL');
    kills++;
    proc = await w.start();
  }
  await sending.done;
  await waitFor(async () => (await confirmed()) === keys.length, 60_000, `all ${TRANSFERS} confirmed`);
  const onChainByKey = transfersByMemo(w.node, 'crash-');
  expect(keys.filter((k) => onChainByKey.get(k) !== 1)).toEqual([]);
  expect(onChainByKey.size).toBe(TRANSFERS);
  expect(kills).toBeGreaterThanOrEqual(3);
  expect(w.node.stats.faults['accept-reset']).toBeGreaterThan(0);
  // What was measured: kills, reset answers, transactions signed in all (> TRANSFERS only after an expiry).
  const signed = await signedInAll(await w.store());
  process.stdout.write(
    `crash test: ${kills} SIGKILLs, ${w.node.stats.faults['accept-reset']} reset answers, ${signed} transactions signed for ${TRANSFERS} actions\n`,
  );
}, 240_000);

test('dry run (the default) as a process: the exact transaction in the log, state dry-run through signer.action.get, nothing broadcast', async () => {
  const w = await world([], {});
  const proc = await w.start();
  const reply = await w.bus.send(
    'signer.vote.cast',
    { account: 'alice', author: 'carol', permlink: 'a-post', weight: 10000 },
    { idempotencyKey: 'dry-1' },
  );
  expect(reply.state).toBe('pending');
  await waitFor(() => proc.lines.some((l) => String(l.msg).startsWith('dry run: would broadcast')), 20_000, 'the dry-run line');
  const line = proc.lines.find((l) => String(l.msg).startsWith('dry run: would broadcast')) as {
    trx: { operations: unknown[] };
    msg: string;
  };
  expect(line.trx.operations).toEqual([['vote', { voter: 'alice', author: 'carol', permlink: 'a-post', weight: 10000 }]]);
  expect(await w.bus.call('signer.action.get', { key: 'dry-1' })).toMatchObject({
    action_id: reply.action_id,
    state: 'dry-run',
    trx_id: null,
  });
  await expect(w.bus.call('signer.action.get', { key: 'nope' })).rejects.toMatchObject({ code: 'ERR_SIGNER_NOT_FOUND' });
  // Retry over the bus: a dry-run action is not failed; an unknown id is not found.
  await expect(w.bus.call('signer.action.retry', { action_id: reply.action_id })).rejects.toMatchObject({
    code: 'ERR_SIGNER_NOT_RETRYABLE',
    message: expect.stringMatching(/is dry-run, not failed/),
  });
  await expect(w.bus.call('signer.action.retry', { action_id: 'nope' })).rejects.toMatchObject({ code: 'ERR_SIGNER_NOT_FOUND' });
  await expect(
    w.bus.send('signer.vote.cast', { account: 'zed', author: 'carol', permlink: 'p', weight: 1 }, { idempotencyKey: 'k' }),
  ).rejects.toMatchObject({
    code: 'ERR_SIGNER_NO_KEY',
  });
  expect(w.calls.filter((m) => m.includes('broadcast'))).toEqual([]);
  expect(JSON.stringify(proc.lines)).not.toContain(TEST_KEY);
});

test('live mode refuses to start (exit 78) when a key is not an authority of its account on chain', async () => {
  const w = await world([], { SIGNER_LIVE: '1' }, OTHER_KEY);
  const proc = await spawnProcess(MAIN, { env: w.env, ready: false, stderr: 'pipe' });
  cleanups.push(() => proc.stop());
  expect(await proc.exited).toBe(78);
  expect(proc.messagesLogged.join('\n')).toMatch(/the posting key given for @alice is not a posting authority of it/);
  expect(JSON.stringify(proc.lines)).not.toContain(OTHER_KEY);
});

test('keys from the environment (SIGNER_ACCOUNT + SIGNER_POSTING_KEY): listed by signer.key.list without keys, never logged; a bad one exits 78 naming the variable', async () => {
  const w = await world([], { SIGNER_ACCOUNT: 'bob', SIGNER_POSTING_KEY: TEST_KEY, LOG_LEVEL: 'debug' });
  const proc = await w.start();
  expect(await w.bus.call('signer.key.list', {})).toEqual({ live: false, accounts: { bob: ['posting'] } });
  // The environment's account replaces the keys file (which holds alice).
  await expect(
    w.bus.send('signer.vote.cast', { account: 'alice', author: 'carol', permlink: 'p', weight: 1 }, { idempotencyKey: 'k' }),
  ).rejects.toMatchObject({ code: 'ERR_SIGNER_NO_KEY' });
  await proc.stop('SIGINT');
  expect(JSON.stringify(proc.lines)).not.toContain(TEST_KEY);

  const bad = await spawnProcess(MAIN, {
    env: { ...w.env, SIGNER_POSTING_KEY: `${TEST_KEY.slice(0, -1)}x` },
    ready: false,
    stderr: 'pipe',
  });
  cleanups.push(() => bad.stop());
  let stderr = '';
  bad.child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  expect(await bad.exited).toBe(78);
  expect(`${stderr}${bad.messagesLogged.join('\n')}`).toMatch(/SIGNER_POSTING_KEY is not a valid private key \(WIF\)/);
  expect(`${stderr}${JSON.stringify(bad.lines)}`).not.toContain(TEST_KEY.slice(0, 20));
});
