import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { appliedPosition, positionOf } from '@steem-bot/config';
import { DevNode } from '@steem-bot/devnode';
import { Postgres, STANDBY_POLL_MS } from '@steem-bot/store';
import { type Proc, projectRootFile, spawnProcess, testSetup, waitFor } from '@steem-bot/testkit';

import { PostgresBotStore } from '../src';

// Single active bot (STORE=postgres): a standby waits on a PostgreSQL advisory lock and takes over
// from the checkpoint in PostgreSQL when the active one dies; the holder exits at once if its lock
// connection is lost.
const url = process.env.TEST_DATABASE_URL;
if (!url) process.stdout.write('bot/standby: TEST_DATABASE_URL is not set; skipped\n');
const testPg = url ? test : test.skip;

const BROADCASTER = projectRootFile('packages/broadcaster/dist/main.js');
const COUNTER = join(__dirname, 'fixtures', 'counter.ts');
const FIRST = 1_000_000;
// One poll of the lock plus the standby's start (ts-node, the store, the subscription) on loaded cores.
const TAKEOVER_BOUND_MS = STANDBY_POLL_MS + 6_000;

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Positions of the votes and comments in blocks [from, to] of the devnode's chain. */
function positions(node: DevNode, from: number, to: number): number[] {
  const out: number[] = [];
  for (let n = from; n <= to; n++) {
    let index = 0;
    for (const trx of node.chain.block(n)?.transactions ?? []) {
      for (const op of trx.operations) {
        if (['vote', 'comment'].includes(op.type.replace(/_operation$/, ''))) out.push(positionOf(n, index));
        index++;
      }
    }
  }
  return out;
}

/** A counter process and when it became ready (the active one), if it has. */
async function counter(env: Record<string, string>): Promise<{ proc: Proc; readyAt: () => number | undefined }> {
  const proc = await spawnProcess(COUNTER, { env, ready: false });
  cleanups.push(() => proc.stop('SIGKILL'));
  let readyAt: number | undefined;
  proc.child.on('message', (m) => {
    if (m === 'ready') readyAt ??= Date.now();
  });
  return { proc, readyAt: () => readyAt };
}

testPg(
  'two instances of a bot: the active one SIGKILLed, then the next losing its lock connection; each time the standby resumes from the checkpoint in PostgreSQL, nothing lost, nothing counted twice',
  async () => {
    const t = testSetup({ LOG_LEVEL: 'warn' });
    cleanups.push(t.cleanup);
    const schema = `sbt_botsb_${process.pid}_${Date.now() % 100_000}`;
    const admin = await Postgres.open({ url: url as string, schema, name: 'admin', poolSize: 1 });
    cleanups.push(async () => {
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin.close();
    });
    // Real blocks, then synthetic ones; the chain grows by a block every 10 ms from the 300th on,
    // so ops keep coming through both takeovers.
    const node = await DevNode.start({ intervalMs: 10, initialBlocks: 300, synthetic: 700, opsPerBlock: [3, 6], libDistance: 0, seed: 5 });
    cleanups.push(() => node.stop());
    const env = {
      ...t.env,
      STEEM_NODES: node.url,
      STEEM_START_BLOCK: String(FIRST),
      STORE: 'postgres',
      DATABASE_URL: url as string,
      DATABASE_SCHEMA: schema,
      RECORD_FILE: join(t.dir, 'record.txt'),
    };
    // The bot has run before: it resumes just before the first block.
    const seed = await PostgresBotStore.open({ url: url as string, schema, bot: 'counter' });
    await seed.saveCheckpoint(appliedPosition(FIRST - 1));
    await seed.close();
    const store = await PostgresBotStore.open({ url: url as string, schema, bot: 'counter' });
    cleanups.push(() => store.close());
    const counted = async (): Promise<{ position: number; n: number }> =>
      ((await store.get('counted')) as { position: number; n: number } | undefined) ?? { position: -1, n: 0 };

    const first = await counter(env);
    await first.proc.message((m) => m === 'ready');
    const second = await counter(env);
    const broadcaster = await spawnProcess(BROADCASTER, { env });
    cleanups.push(() => broadcaster.stop());
    await waitFor(async () => (await counted()).n > 300, 60_000, '300 ops counted');
    await new Promise((r) => setTimeout(r, 3 * STANDBY_POLL_MS));
    expect(second.readyAt()).toBeUndefined(); // a standby: not serving while the lock is held

    // 1. The active one dies (SIGKILL): its lock connection ends with it, the standby gets the lock.
    first.proc.child.kill('SIGKILL');
    const killedAt = Date.now();
    await first.proc.exited;
    await waitFor(() => second.readyAt() !== undefined, 30_000, 'the standby to take over');
    const takeover1 = (second.readyAt() as number) - killedAt;
    const atKill = (await counted()).n;

    // 2. A new standby; the active one loses its lock connection (pg_terminate_backend): it exits
    //    at once, since another instance may already act, and the standby takes over.
    const third = await counter(env);
    await waitFor(async () => (await counted()).n > atKill + 300, 60_000, '300 more ops counted');
    const [terminated] = await admin.query<{ n: number }>(
      `SELECT COUNT(pg_terminate_backend(l.pid))::int AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
       WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = 'steem-bot/bot-counter' AND a.datname = current_database()
         AND l.objid::bigint = (hashtext($1)::bigint & 4294967295)`,
      [`${schema}:bot-counter`],
    );
    const cutAt = Date.now();
    expect(terminated?.n).toBe(1);
    const code = await second.proc.exited;
    const exitMs = Date.now() - cutAt;
    await waitFor(() => third.readyAt() !== undefined, 30_000, 'the second standby to take over');
    const takeover2 = (third.readyAt() as number) - cutAt;

    const expected = positions(node, FIRST, node.chain.last);
    await waitFor(async () => (await counted()).position === expected.at(-1), 120_000, 'the last op counted');
    const calls = readFileSync(env.RECORD_FILE, 'utf8').trim().split('\n').map(Number);
    process.stdout.write(
      `bot/standby: ${expected.length} ops; takeover after SIGKILL ${takeover1} ms, after a lost lock connection ${takeover2} ms ` +
        `(the holder exited in ${exitMs} ms); bound ${TAKEOVER_BOUND_MS} ms; ${calls.length - new Set(calls).size} handler calls repeated\n`,
    );
    expect(code).toBe(1);
    expect(exitMs).toBeLessThan(1_000);
    expect(takeover1).toBeLessThan(TAKEOVER_BOUND_MS);
    expect(takeover2).toBeLessThan(TAKEOVER_BOUND_MS);
    // Every op counted once: the count, and one key per op, written by one of the three processes.
    expect((await counted()).n).toBe(expected.length);
    const keys = await admin.query<{ key: string; value: number }>(
      `SELECT key, value FROM ${schema}.bot_state WHERE bot = 'counter' AND key LIKE 'op:%'`,
    );
    expect(keys.map((k) => Number(k.key.slice(3))).sort((a, b) => a - b)).toEqual(expected);
    const pids = new Set(keys.map((k) => k.value));
    expect(pids).toEqual(new Set([first.proc.pid, second.proc.pid, third.proc.pid]));
    expect(new Set(calls)).toEqual(new Set(expected));
    expect(existsSync(join(t.config.DATA_DIR, 'bot-counter.sqlite'))).toBe(false); // its state is in PostgreSQL only
  },
  240_000,
);
