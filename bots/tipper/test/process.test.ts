import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { DevNode } from '@steem-bot/devnode';
import { type Proc, projectRootFile, spawnProcess, testSetup, waitFor } from '@steem-bot/testkit';

import { mentions } from '../src';

/** The devnode accounts' documented test key (it guards nothing). */
const TEST_KEY = '5JufocMGFc1KCxbsVba9MHyi5XfFd1CCdzXjFKGvsSstRP6e4h3';

const cleanups: Array<() => unknown> = [];
afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

type Op = { type: string; value: Record<string, unknown> };

test('as a process with devnode, the broadcaster and a live signer: each post mentioning @alice gets one reply on chain, confirmed to the tipper', async () => {
  // Synthetic posts mention a random known account, @alice now and then (every few seconds here).
  const node = await DevNode.start({ intervalMs: 100, initialBlocks: 1000, synthetic: 6000, opsPerBlock: [5, 30], libDistance: 3 });
  cleanups.push(() => node.stop());
  const t = testSetup({ STEEM_NODES: node.url, SIGNER_LIVE: '1', SIGNER_POLL_MS: '200', TIPPER_ACCOUNT: 'alice', LOG_LEVEL: 'info' });
  cleanups.push(t.cleanup);
  const keysFile = join(t.dir, 'keys.json');
  writeFileSync(keysFile, JSON.stringify({ alice: { posting: TEST_KEY } }));
  chmodSync(keysFile, 0o600);
  const start = async (file: string): Promise<Proc> => {
    const proc = await spawnProcess(projectRootFile(file), { env: { ...t.env, SIGNER_KEYS_FILE: keysFile } });
    cleanups.push(() => proc.stop());
    return proc;
  };
  await start('packages/signer/dist/main.js');
  await start('packages/broadcaster/dist/main.js');
  const tipper = await start('bots/tipper/dist/main.js');

  const ops = (pred: (op: Op) => boolean): Array<{ block: number; op: Op }> => {
    const out = [];
    for (let n = 1_000_000; n <= node.chain.head(); n++)
      for (const trx of node.chain.block(n)?.transactions ?? [])
        for (const op of trx.operations as Op[]) if (pred(op)) out.push({ block: n, op });
    return out;
  };
  const replies = (): Array<{ block: number; op: Op }> =>
    ops(
      (op) => op.type === 'comment_operation' && op.value.author === 'alice' && String(op.value.body).startsWith('Thanks for the mention'),
    );
  const confirmedLines = (): string[] => tipper.messagesLogged.filter((m) => m.includes(': confirmed on chain, transaction '));
  await waitFor(() => confirmedLines().length >= 2, 90_000, 'two replies confirmed');

  const got = replies();
  const parents = got.map((r) => `${String(r.op.value.parent_author)}/${String(r.op.value.parent_permlink)}`);
  expect(new Set(parents).size).toBe(parents.length); // one reply per post
  for (const r of got) {
    const [parent] = ops(
      (op) =>
        op.type === 'comment_operation' && op.value.author === r.op.value.parent_author && op.value.permlink === r.op.value.parent_permlink,
    );
    expect(mentions(String(parent?.op.value.body), 'alice')).toBe(true);
  }
  // What the tipper was told is what the chain holds.
  for (const line of confirmedLines().slice(0, 2)) {
    const block = Number(/in block (\d+)$/.exec(line)?.[1]);
    expect(got.some((r) => r.block === block)).toBe(true);
  }
  expect(JSON.stringify(tipper.lines)).not.toContain(TEST_KEY);
}, 120_000);
