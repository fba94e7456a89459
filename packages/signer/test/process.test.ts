import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { type Bus, createIpcBus } from '@steem-bot/bus';
import { type Catalogue, catalogue } from '@steem-bot/config';
import type { DevNode } from '@steem-bot/devnode';
import { keptLogger, type Proc, projectRootFile, spawnProcess, testSetup, waitFor } from '@steem-bot/testkit';

import { type SignerStore, SqliteSignerStore, storeFile } from '../src';
import { onChain, OTHER_KEY, startNode, TEST_KEY } from './helpers';

const MAIN = projectRootFile('packages/signer/dist/main.js');

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface World {
  node: DevNode;
  env: Record<string, string>;
  bus: Bus<Catalogue>;
  store: () => SignerStore;
  calls: string[];
  start(): Promise<Proc>;
}

async function world(faults: Parameters<typeof startNode>[0], vars: Record<string, string>, key = TEST_KEY): Promise<World> {
  const calls: string[] = [];
  const node = await startNode(faults, (m) => calls.push(m));
  cleanups.push(() => node.stop());
  const t = testSetup({ STEEM_NODES: node.url, SIGNER_POLL_MS: '200', SIGNER_RPC_TIMEOUT_MS: '2000', LOG_LEVEL: 'info', ...vars });
  cleanups.push(t.cleanup);
  const keysFile = join(t.dir, 'keys.json');
  writeFileSync(keysFile, JSON.stringify({ alice: { posting: key, active: key } }));
  chmodSync(keysFile, 0o600);
  const env = { ...t.env, SIGNER_KEYS_FILE: keysFile };
  const bus = createIpcBus('signer-client', catalogue, t.config, keptLogger('signer-client', 'error').logger);
  cleanups.push(() => bus.close());
  let store: SignerStore | undefined;
  cleanups.push(() => store?.close());
  return {
    node,
    env,
    bus,
    calls,
    store: () => (store ??= new SqliteSignerStore(storeFile(t.config.DATA_DIR))),
    async start() {
      const proc = await spawnProcess(MAIN, { env });
      cleanups.push(() => proc.stop());
      return proc;
    },
  };
}

const TRANSFERS = 200;

test('SIGKILL at random points of 200 transfers while devnode resets 20% of broadcast answers after accepting them: every key ends with exactly one transfer on chain', async () => {
  const w = await world([{ kind: 'accept-reset', rate: 0.2 }], {
    SIGNER_LIVE: '1',
    SIGNER_EXPIRATION_S: '120',
    BUS_TASK_TIMEOUT_MS: '2000',
  });
  let proc = await w.start();
  const keys = Array.from({ length: TRANSFERS }, (_, i) => `crash-${i}`);
  let sent = 0;
  const sending = (async () => {
    for (const key of keys) {
      // A sender retries until the signer acknowledges (it may be dead at that moment).
      await w.bus.send(
        'signer.transfer.send',
        { account: 'alice', to: 'carol', amount: '0.001 STEEM', memo: key },
        { idempotencyKey: key, attempts: 30, timeoutMs: 2_000 },
      );
      sent++;
    }
  })();
  let kills = 0;
  const confirmed = async (): Promise<number> => (await w.store().counts()).confirmed ?? 0;
  // Kill at random moments (random points of intake, signing, broadcasting, confirming) until done.
  while (kills < 12 && (kills < 3 || sent < keys.length || (await confirmed()) < keys.length)) {
    await new Promise((r) => setTimeout(r, 300 + Math.random() * 1_200));
    await proc.stop('SIGKILL');
    kills++;
    proc = await w.start();
  }
  await sending;
  await waitFor(async () => (await confirmed()) === keys.length, 60_000, `all ${TRANSFERS} confirmed`);
  const onChainByKey = new Map<string, number>();
  for (const trx of onChain(w.node, (t) => t.ops.some((o) => o.type === 'transfer_operation'))) {
    for (const op of trx.ops) {
      const memo = String(op.value.memo);
      if (memo.startsWith('crash-')) onChainByKey.set(memo, (onChainByKey.get(memo) ?? 0) + 1);
    }
  }
  expect(keys.filter((k) => onChainByKey.get(k) !== 1)).toEqual([]);
  expect(onChainByKey.size).toBe(TRANSFERS);
  expect(kills).toBeGreaterThanOrEqual(3);
  expect(w.node.stats.faults['accept-reset']).toBeGreaterThan(0);
  // What was measured: kills, reset answers, transactions signed in all (> TRANSFERS only after an expiry).
  const signedInAll = (await w.store().all()).reduce((n, a) => n + a.signed, 0);
  process.stdout.write(
    `crash test: ${kills} SIGKILLs, ${w.node.stats.faults['accept-reset']} reset answers, ${signedInAll} transactions signed for ${TRANSFERS} actions\n`,
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
