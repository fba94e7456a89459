import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { appliedPosition } from '@steem-bot/config';
import { DevNode } from '@steem-bot/devnode';
import { type Proc, projectRootFile, spawnProcess, testSetup, waitFor } from '@steem-bot/testkit';

import { BotStore } from '../src';

const BROADCASTER = projectRootFile('packages/broadcaster/dist/main.js');
const SIGNER = projectRootFile('packages/signer/dist/main.js');
const ACTOR = join(__dirname, 'fixtures', 'actor.ts');
/** The devnode accounts' documented test key (it guards nothing). */
const TEST_KEY = '5JufocMGFc1KCxbsVba9MHyi5XfFd1CCdzXjFKGvsSstRP6e4h3';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

type Op = { type: string; value: Record<string, unknown> };

interface World {
  node: DevNode;
  env: Record<string, string>;
  dir: string;
  /** Wall-clock time of the first broadcast of each transaction, by the permlink or memo of its op. */
  firstBroadcast: Map<string, number>;
  actor(name: string, vars: Record<string, string>, ready?: boolean): Promise<Proc>;
  /** Ops on devnode's chain matching `pred`, with their block and its chain time. */
  onChain(pred: (op: Op) => boolean): Array<{ block: number; time: number; op: Op }>;
}

/** devnode (a block every 100 ms, LIB 3 behind), the broadcaster and the signer (live, keys of alice and bob) as processes. */
async function world(): Promise<World> {
  const firstBroadcast = new Map<string, number>();
  const node = await DevNode.start({
    intervalMs: 100,
    initialBlocks: 1000,
    synthetic: 6000,
    opsPerBlock: [1, 2],
    libDistance: 3,
    onCall: (method, params) => {
      if (!method.includes('broadcast_transaction')) return;
      const trx = (Array.isArray(params) ? params[0] : (params as { trx: unknown }).trx) as {
        operations: Array<[string, Record<string, unknown>]>;
      };
      const op = trx.operations[0]?.[1] ?? {};
      const tag = String(op.permlink ?? op.memo);
      if (!firstBroadcast.has(tag)) firstBroadcast.set(tag, Date.now());
    },
  });
  cleanups.push(() => node.stop());
  const t = testSetup({
    STEEM_NODES: node.url,
    SIGNER_LIVE: '1',
    SIGNER_POLL_MS: '200',
    SIGNER_RPC_TIMEOUT_MS: '2000',
    LOG_LEVEL: 'info',
  });
  cleanups.push(t.cleanup);
  const keysFile = join(t.dir, 'keys.json');
  writeFileSync(keysFile, JSON.stringify({ alice: { posting: TEST_KEY, active: TEST_KEY }, bob: { posting: TEST_KEY } }));
  chmodSync(keysFile, 0o600);
  const env = { ...t.env, SIGNER_KEYS_FILE: keysFile };
  const start = async (file: string, vars: Record<string, string> = {}, ready = true): Promise<Proc> => {
    const proc = await spawnProcess(file, { env: { ...env, ...vars }, ready, ...(ready ? {} : { stderr: 'pipe' as const }) });
    cleanups.push(() => proc.stop());
    return proc;
  };
  await start(SIGNER);
  await start(BROADCASTER);
  return {
    node,
    env,
    dir: t.dir,
    firstBroadcast,
    actor: (name, vars, ready = true) => {
      // Resume just before the trigger block, however long the process takes to start under load
      // (a first start would begin with live ops and could miss it).
      const seed = new BotStore(join(t.config.DATA_DIR, `bot-${name}.sqlite`));
      seed.saveCheckpoint(appliedPosition(Number(vars.TRIGGER_FROM) - 1));
      seed.close();
      return start(ACTOR, { BOT_NAME: name, RECORD_FILE: join(t.dir, `${name}.jsonl`), ...vars }, ready);
    },
    onChain(pred) {
      const out = [];
      for (let n = 1_001_000; n <= node.chain.head(); n++) {
        const block = node.chain.block(n);
        for (const trx of block?.transactions ?? []) {
          for (const op of trx.operations as Op[]) if (pred(op)) out.push({ block: n, time: node.chain.timeOf(n), op });
        }
      }
      return out;
    },
  };
}

const records = (w: World, name: string): Array<Record<string, unknown>> => {
  const file = join(w.dir, `${name}.jsonl`);
  return existsSync(file)
    ? readFileSync(file, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>)
    : [];
};

describe('bots act through the signer (devnode, broadcaster, signer and bots as processes)', () => {
  test('a handler that fails after ctx.chain.transfer and is retried three times: one transfer on chain, confirmed to the bot', async () => {
    const w = await world();
    const from = w.node.chain.head() + 5;
    await w.actor('payer', { MODE: 'transfer', ACCOUNT: 'alice', TRIGGER_FROM: String(from) });
    await waitFor(() => records(w, 'payer').some((r) => r.confirmed), 60_000, 'the confirmation');
    const tries = records(w, 'payer').filter((r) => r.try !== undefined);
    expect(tries.map((r) => r.try)).toEqual([1, 2, 3, 4]);
    expect(new Set(tries.map((r) => r.id)).size).toBe(1);
    const transfers = w.onChain((op) => op.type === 'transfer_operation' && op.value.memo === `payer-${from}`);
    expect(transfers).toHaveLength(1);
    expect(transfers[0]?.op.value).toMatchObject({ from: 'alice', to: 'carol', amount: { amount: '1', precision: 3, nai: '@@000000021' } });
    const confirmed = records(w, 'payer').find((r) => r.confirmed)?.confirmed;
    expect(confirmed).toMatchObject({ action_id: tries[0]?.id, state: 'confirmed', block_num: transfers[0]?.block });
  }, 90_000);

  test('two bots voting as one account: their votes go out at least 3 s apart, and land at least 3 s apart in chain time', async () => {
    const w = await world();
    const from = w.node.chain.head() + 5;
    const vars = { MODE: 'vote', ACCOUNT: 'alice', TRIGGER_FROM: String(from), TRIGGER_COUNT: '2' };
    await Promise.all([w.actor('voter-a', vars), w.actor('voter-b', vars)]);
    const tags = ['voter-a', 'voter-b'].flatMap((b) => [`${b}-${from}`, `${b}-${from + 1}`]);
    await waitFor(
      () => w.onChain((op) => op.type === 'vote_operation' && tags.includes(String(op.value.permlink))).length === 4,
      60_000,
      'four votes on chain',
    );
    const votes = w.onChain((op) => op.type === 'vote_operation' && tags.includes(String(op.value.permlink)));
    expect(votes.every((v) => v.op.value.voter === 'alice')).toBe(true);
    for (let i = 1; i < votes.length; i++) expect((votes[i]?.time ?? 0) - (votes[i - 1]?.time ?? 0)).toBeGreaterThanOrEqual(3_000);
    const sent = tags.map((t) => w.firstBroadcast.get(t) as number).sort((a, b) => a - b);
    const gaps = sent.slice(1).map((s, i) => s - (sent[i] as number));
    // The signer spaces them by wall clock from its own record of the last vote; timers fire late, never early.
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(3_000);
    process.stdout.write(`two voters as one account: broadcast gaps ${gaps.join(', ')} ms\n`);
  }, 90_000);

  test('a bot declaring an account the signer has no key for stops at start-up with a clear error (exit 78)', async () => {
    const w = await world();
    const proc = await w.actor('keyless', { MODE: 'vote', ACCOUNT: 'bob', TRIGGER_FROM: String(w.node.chain.head()) }, false);
    expect(await proc.exited).toBe(78);
    expect(proc.messagesLogged.join('\n')).toMatch(/the signer holds no key for @bob \(active\), which this bot declares in `accounts`/);
    expect(JSON.stringify(proc.lines)).not.toContain(TEST_KEY);
  }, 60_000);
});
