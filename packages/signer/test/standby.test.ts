import { randomBytes } from 'node:crypto';

import { Postgres, STANDBY_POLL_MS } from '@steem-bot/store';
import { type Proc, terminateLockHolder, waitFor } from '@steem-bot/testkit';

import { sendTransfers, signedInAll, signerWorld, transfersByMemo } from './helpers';

// Single active signer (STORE=postgres): a standby waits on a PostgreSQL advisory lock and takes
// over when the active one dies; the holder exits at once if its lock connection is lost.
const url = process.env.TEST_DATABASE_URL;
if (!url) process.stdout.write('signer/standby: TEST_DATABASE_URL is not set; skipped\n');
const testPg = url ? test : test.skip;

// The documented bound of a takeover after the active signer dies: one poll of the lock
// (STANDBY_POLL_MS) plus the standby's start (the authority check on chain, the store, serving).
const TAKEOVER_BOUND_MS = STANDBY_POLL_MS + 4_000;
const TRANSFERS = 150;

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** When the process signals ready (it holds the lock and serves). */
function readyAt(proc: Proc): () => number | undefined {
  let at: number | undefined;
  if (proc.messages.includes('ready')) at = Date.now();
  proc.child.on('message', (m) => {
    if (m === 'ready') at ??= Date.now();
  });
  return () => at;
}

testPg(
  'the active signer SIGKILLed mid-run, then the next one losing its lock connection: a standby takes over in bound each time, every key ends with exactly one transfer on chain',
  async () => {
    const schema = `sbt_signer_standby_${process.pid}_${randomBytes(3).toString('hex')}`;
    const admin = await Postgres.open({ url: url as string, schema, name: 'admin', poolSize: 1 });
    cleanups.push(async () => {
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin.close();
    });
    const w = await signerWorld(cleanups, [{ kind: 'accept-reset', rate: 0.2 }], {
      SIGNER_LIVE: '1',
      SIGNER_EXPIRATION_S: '120',
      BUS_TASK_TIMEOUT_MS: '2000',
      LOG_LEVEL: 'warn',
      STORE: 'postgres',
      DATABASE_URL: url as string,
      DATABASE_SCHEMA: schema,
    });
    const first = await w.start();
    const second = await w.start({ ready: false });
    const secondReady = readyAt(second);

    const keys = Array.from({ length: TRANSFERS }, (_, i) => `standby-${i}`);
    // Spread over a few seconds: the kills land mid-run.
    const sending = sendTransfers(w.bus, keys, 20);
    const store = await w.store();
    const confirmed = async (): Promise<number> => (await store.counts()).confirmed ?? 0;

    // 1. The active one dies (SIGKILL) mid-run: its connection ends with it, the standby gets the lock.
    await waitFor(() => sending.sent >= TRANSFERS / 3, 30_000, `${TRANSFERS / 3} transfers sent`);
    expect(secondReady()).toBeUndefined(); // a standby: not serving while the lock is held
    await first.stop('SIGKILL');
    const killedAt = Date.now();
    const confirmedAtKill = await confirmed();
    await waitFor(() => secondReady() !== undefined, 30_000, 'the standby to take over');
    const takeover1 = (secondReady() as number) - killedAt;

    // 2. A new standby; the active one loses its lock connection (pg_terminate_backend): it exits
    //    at once, since it no longer knows it is the only one, and the standby takes over.
    const third = await w.start({ ready: false });
    const thirdReady = readyAt(third);
    await waitFor(() => sending.sent >= (2 * TRANSFERS) / 3, 30_000, `${(2 * TRANSFERS) / 3} transfers sent`);
    const terminated = await terminateLockHolder(admin, schema, 'signer');
    const cutAt = Date.now();
    expect(terminated).toBe(1);
    const code = await second.exited;
    const exitMs = Date.now() - cutAt;
    await waitFor(() => thirdReady() !== undefined, 30_000, 'the second standby to take over');
    const takeover2 = (thirdReady() as number) - cutAt;

    await sending.done;
    await waitFor(async () => (await confirmed()) === TRANSFERS, 60_000, `all ${TRANSFERS} confirmed`);
    const byKey = transfersByMemo(w.node, 'standby-');
    const signed = await signedInAll(store);
    process.stdout.write(
      `signer/standby: takeover after SIGKILL ${takeover1} ms, after a lost lock connection ${takeover2} ms ` +
        `(the holder exited in ${exitMs} ms); ${confirmedAtKill} of ${TRANSFERS} confirmed at the SIGKILL; bound ${TAKEOVER_BOUND_MS} ms; ${w.node.stats.faults['accept-reset'] ?? 0} answers reset, ` +
        `${signed} transactions signed for ${TRANSFERS} actions\n`,
    );
    expect(keys.filter((k) => byKey.get(k) !== 1)).toEqual([]);
    expect(byKey.size).toBe(TRANSFERS);
    expect(confirmedAtKill).toBeLessThan(TRANSFERS);
    expect(code).toBe(1);
    expect(exitMs).toBeLessThan(1_000);
    expect(takeover1).toBeLessThan(TAKEOVER_BOUND_MS);
    expect(takeover2).toBeLessThan(TAKEOVER_BOUND_MS);
  },
  180_000,
);
