import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';

import { DevNode } from '@steem-bot/devnode';
import { Postgres, STANDBY_POLL_MS } from '@steem-bot/store';
import { terminateLockHolder } from '@steem-bot/testkit';

import { APPLIED_INDEX, positionOf } from '../src';
import { keptLogger, observer, testConfig, waitFor } from './harness';

// Single active broadcaster (STORE=postgres): a standby waits on a PostgreSQL advisory lock and
// takes over when the active one dies; the holder exits at once if its lock connection is lost.
const url = process.env.TEST_DATABASE_URL;
if (!url) process.stdout.write('broadcaster/standby: TEST_DATABASE_URL is not set; skipped\n');
const testPg = url ? test : test.skip;

const MAIN = join(__dirname, '..', 'dist', 'main.js');
// The documented bound of a takeover after the active broadcaster dies: one poll of the lock
// (STANDBY_POLL_MS) plus the standby's start (open its stream, resume, serve), on loaded cores.
const TAKEOVER_BOUND_MS = STANDBY_POLL_MS + 4_000;

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Instance {
  child: ChildProcess;
  /** Resolves when it serves (it holds the lock). */
  ready: Promise<number>;
  exited: Promise<number | null>;
}

/** A broadcaster process; a standby is not ready until it holds the lock. */
function spawnBroadcaster(env: Record<string, string>): Instance {
  const child = fork(MAIN, [], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  cleanups.push(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const ready = new Promise<number>((resolve) => child.on('message', (m) => m === 'ready' && resolve(Date.now())));
  return { child, ready, exited };
}

testPg(
  'the active broadcaster SIGKILLed, then another losing its lock connection: each time a standby takes over in bound, no block missing, none twice',
  async () => {
    const schema = `sbt_bcast_${process.pid}_${randomBytes(3).toString('hex')}`;
    const admin = await Postgres.open({ url: url as string, schema, name: 'admin', poolSize: 1 });
    cleanups.push(async () => {
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin.close();
    });
    // Real blocks 1000000-1000999, then 3000 synthetic ones; the chain grows by a block every 10 ms
    // from the 300th on, so the stream is live through both takeovers.
    const node = await DevNode.start({
      intervalMs: 10,
      initialBlocks: 300,
      synthetic: 3000,
      opsPerBlock: [5, 10],
      libDistance: 0,
      seed: 7,
    });
    cleanups.push(() => node.stop());
    const { config, cleanup } = testConfig([node.url]);
    cleanups.push(cleanup);
    const env = {
      SOCKET_DIR: config.SOCKET_DIR,
      DATA_DIR: config.DATA_DIR,
      STEEM_NODES: node.url,
      STEEM_START_BLOCK: '1000000',
      LOG_LEVEL: 'warn',
      STORE: 'postgres',
      DATABASE_URL: url as string,
      DATABASE_SCHEMA: schema,
    };
    const { logger } = keptLogger('observer');
    const blocks: number[] = [];
    const obs = observer(config, logger);
    cleanups.push(() => obs.close());
    obs.subscribe('broadcaster', { 'block.applied': (p) => void blocks.push(p.block_num) }, { from: positionOf(999_999, APPLIED_INDEX) });

    const first = spawnBroadcaster(env);
    await first.ready;
    const second = spawnBroadcaster(env);
    await waitFor(() => blocks.length >= 400, 30_000, '400 blocks');
    let secondReady = false;
    void second.ready.then(() => (secondReady = true));
    await new Promise((r) => setTimeout(r, 3 * STANDBY_POLL_MS));
    expect(secondReady).toBe(false); // a standby: not serving while the lock is held

    // 1. The active one dies (SIGKILL): its connection ends with it, the standby gets the lock.
    first.child.kill('SIGKILL');
    const killedAt = Date.now();
    await first.exited;
    const takeover1 = (await second.ready) - killedAt;
    const atKill = blocks.length;

    // 2. A new standby; the active one loses its lock connection (pg_terminate_backend): it exits
    //    at once, since it no longer knows it is the only one, and the standby takes over.
    const third = spawnBroadcaster(env);
    await waitFor(() => blocks.length >= atKill + 300, 30_000, '300 more blocks');
    const terminated = await terminateLockHolder(admin, schema, 'broadcaster');
    const cutAt = Date.now();
    expect(terminated).toBe(1);
    const code = await second.exited;
    const exitMs = Date.now() - cutAt;
    const takeover2 = (await third.ready) - cutAt;

    await waitFor(() => blocks.at(-1) === 1_003_999, 90_000, 'block 1003999');
    process.stdout.write(
      `broadcaster/standby: takeover after SIGKILL ${takeover1} ms, after a lost lock connection ${takeover2} ms ` +
        `(the holder exited in ${exitMs} ms); bound ${TAKEOVER_BOUND_MS} ms\n`,
    );
    expect(code).toBe(1);
    expect(exitMs).toBeLessThan(1_000);
    expect(takeover1).toBeLessThan(TAKEOVER_BOUND_MS);
    expect(takeover2).toBeLessThan(TAKEOVER_BOUND_MS);
    expect(blocks).toEqual(Array.from({ length: 4000 }, (_, i) => 1_000_000 + i)); // every block once, in order
  },
  180_000,
);
