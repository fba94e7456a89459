import { join } from 'node:path';

import { storeImplementations } from '@steem-bot/testkit';

import { type ClockStore, PostgresClockStore, SqliteClockStore } from '../src';

// One contract, two implementations: the same tests against the SQLite file and against a real
// PostgreSQL (TEST_DATABASE_URL; its own schema per test, dropped after).
const impls = storeImplementations<ClockStore>('clock', {
  sqlite: (dir) => new SqliteClockStore(join(dir, 'clock.sqlite')),
  postgres: (url, schema) => PostgresClockStore.open({ url, schema }),
});

const T = Date.parse('2027-03-27T00:00:05Z'); // tick times are ms since the epoch: beyond 32 bits

describe.each(impls)('ClockStore conformance: %s', (_name, harness) => {
  const open = (): Promise<ClockStore> => harness.open();
  beforeEach(() => harness.setup());
  afterEach(() => harness.teardown());

  test('a tick is claimed by exactly one of several clocks racing for it', async () => {
    const clocks = await Promise.all([1, 2, 3, 4, 5].map(() => open()));
    for (let tick = 0; tick < 20; tick++) {
      const won = await Promise.all(clocks.map((s, i) => s.claim('every', T + tick * 5_000, `clock-${i}`, `tid${tick}`)));
      expect(won.filter(Boolean)).toHaveLength(1);
    }
    const rows = await clocks[0]!.history('every', 100);
    expect(rows).toHaveLength(20);
    expect(rows[0]).toMatchObject({ schedule_id: 'every', tick_time: T + 19 * 5_000, state: 'claimed', attempts: 0, finished_at: null });
    expect(typeof rows[0]?.heartbeat).toBe('number');
  });

  test("outcomes: only the owner's row changes, tries are counted, finished ticks get their time", async () => {
    const store = await open();
    expect(await store.claim('s', T, 'a', 'tid')).toBe(true);
    await store.update('s', T, 'b', { state: 'acked', attempt: true }); // not b's: no change
    expect((await store.history('s', 1))[0]).toMatchObject({ owner: 'a', state: 'claimed', attempts: 0 });
    await store.update('s', T, 'a', { state: 'sent', error: 'no ack', attempt: true });
    expect((await store.history('s', 1))[0]).toMatchObject({ state: 'sent', attempts: 1, error: 'no ack', finished_at: null });
    await store.update('s', T, 'a', { state: 'acked', attempt: true });
    const [row] = await store.history('s', 1);
    expect(row).toMatchObject({ state: 'acked', attempts: 2, error: null });
    expect(row?.finished_at).toEqual(expect.any(Number));
    expect(await store.claim('s', T + 1_000, 'a', 'tid', 'skipped')).toBe(true);
    expect((await store.history('s', 1))[0]).toMatchObject({ state: 'skipped', finished_at: expect.any(Number) });
  });

  test('a quiet owner is noticed on the store clock; exactly one clock takes the tick over; a beating owner keeps it', async () => {
    const [a, b, c] = await Promise.all([open(), open(), open()]);
    await a!.claim('s', T, 'a', 'tid-a');
    await a!.claim('s', T + 5_000, 'a2', 'tid-a2');
    await new Promise((r) => setTimeout(r, 400));
    await a!.heartbeat('a2'); // a2 is alive
    const orphans = await b!.orphans(300);
    expect(orphans.map((r) => r.owner)).toEqual(['a']);
    expect(await b!.orphans(60_000)).toEqual([]);
    const won = await Promise.all([b!.takeOver(orphans[0]!, 'b'), c!.takeOver(orphans[0]!, 'c')]);
    expect(won.filter(Boolean)).toHaveLength(1);
    expect((await a!.history('s', 2)).map((r) => r.owner).sort()).toEqual(['a2', won[0] ? 'b' : 'c'].sort());
    expect(await c!.orphans(300)).toEqual([]); // the new owner's heartbeat is fresh
  });

  test('open ticks: what blocks an overlap, the last tick, and pruning that keeps open ones', async () => {
    const store = await open();
    expect(await store.lastTick('s')).toBeUndefined();
    await store.claim('s', T, 'a', 'tid');
    expect(await store.openBefore('s', T + 1)).toBe(true);
    expect(await store.openBefore('s', T)).toBe(false);
    await store.update('s', T, 'a', { state: 'expired', error: 'gone' });
    expect(await store.openBefore('s', T + 1)).toBe(false);
    await store.claim('s', T + 1_000, 'a', 'tid'); // open: never pruned
    await store.claim('s', T + 2_000, 'a', 'tid', 'skipped');
    expect(await store.lastTick('s')).toBe(T + 2_000);
    expect(await store.prune(T + 5_000)).toBe(2);
    expect((await store.history('s', 10)).map((r) => r.tick_time)).toEqual([T + 1_000]);
  });
});
