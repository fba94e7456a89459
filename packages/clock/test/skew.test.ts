// Issue 16: three clocks on PostgreSQL whose wall clocks are -30 s, 0 and +30 s off, two
// every-second schedules for 100 s (200 ticks), the owner of a tick in flight SIGKILLed five times
// (and restarted, as PM2 would): every tick still runs exactly once at the receiver.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { Postgres } from '@steem-bot/store';
import { type Proc, projectRootFile, spawnProcess, testSetup, waitFor } from '@steem-bot/testkit';

const CLOCK = projectRootFile('packages/clock/dist/main.js');
const RECEIVER = join(__dirname, 'fixtures', 'receiver.ts');
const SKEW = join(__dirname, 'fixtures', 'skew-clock.js');

const url = process.env.TEST_DATABASE_URL;
if (!url) process.stdout.write('clock/skew: TEST_DATABASE_URL is not set; skipped\n');
const testPg = url ? test : test.skip;

const OFFSETS = [-30_000, 0, 30_000];
const SCHEDULES = ['a', 'b'];
const RUN_S = 100; // 2 schedules x 100 s: 200 ticks in under half the time one schedule would take
const KILL_AT_S = [10, 30, 50, 70, 88];
const HOLD_MS = 800; // the receiver holds each task this long: the kill lands while the tick is in flight
const STALE_MS = 3_000;

const cleanups: Array<() => unknown> = [];
afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const lines = (file: string): string[] => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);
const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] ?? NaN;
const pidOf = (owner: string): number => Number(/-(\d+)-[0-9a-f]+$/.exec(owner)?.[1]);

interface Row {
  schedule_id: string;
  tick_time: number;
  owner: string;
  state: string;
  claimed_at: number;
}

testPg(
  'three clocks -30 s / 0 / +30 s off, 200 ticks, the tick owner SIGKILLed mid-tick five times: one task run per tick',
  async () => {
    const schema = `sbt_clocks_${process.pid}_${randomBytes(3).toString('hex')}`;
    const db = await Postgres.open({ url: url as string, schema, name: 'skew-test' });
    cleanups.push(async () => {
      await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await db.close();
    });
    const t = testSetup({
      STORE: 'postgres',
      DATABASE_URL: url as string,
      DATABASE_SCHEMA: schema,
      CLOCK_CLAIM_STALE_MS: String(STALE_MS),
      BUS_TASK_TIMEOUT_MS: '2000',
    });
    cleanups.push(t.cleanup);
    const schedules = join(t.dir, 'schedules.json');
    const each = (id: string) => ({ id, cron: '* * * * * *', task: 'digest.report.send', overlap: 'allow', expiry_ms: 60_000 });
    writeFileSync(schedules, JSON.stringify({ schedules: SCHEDULES.map(each) }));
    const env = { ...t.env, CLOCK_SCHEDULES: schedules, RECORD_FILE: join(t.dir, 'record'), RAW_FILE: join(t.dir, 'raw') };

    const all: Array<{ offset: number; proc: Proc }> = [];
    const live = new Map<number, Proc>(); // offset -> its running clock
    const startClock = async (offset: number): Promise<Proc> => {
      const nodeOptions = [process.env.NODE_OPTIONS, `--require ${SKEW}`].filter(Boolean).join(' ');
      const before = Date.now();
      const proc = await spawnProcess(CLOCK, { env: { ...env, NODE_OPTIONS: nodeOptions, SKEW_CLOCK_OFFSET_MS: String(offset) } });
      cleanups.push(() => proc.stop());
      all.push({ offset, proc });
      live.set(offset, proc);
      // The skew applies: the clock's own "next at" is a second ahead of now by its clock.
      await waitFor(() => proc.messagesLogged.some((m) => / next at /.test(m)), 10_000, 'the clock to log its next tick');
      const next = Date.parse(/ next at (\S+)/.exec(proc.messagesLogged.find((m) => / next at /.test(m)) as string)?.[1] as string);
      expect(next - before).toBeGreaterThan(offset - 1_000);
      expect(next - Date.now()).toBeLessThan(offset + 1_500);
      return proc;
    };
    const receiver = await spawnProcess(RECEIVER, { env: { ...env, HOLD_MS: String(HOLD_MS) } });
    cleanups.push(() => receiver.stop());
    for (const offset of OFFSETS) await startClock(offset);
    const from = Math.ceil((Date.now() + 1_000) / 1_000) * 1_000;
    const until = from + RUN_S * 1_000;

    const rowOf = async (key: string): Promise<Row | undefined> => {
      const [id, iso] = key.split('@') as [string, string];
      const [row] = await db.query<Row>('SELECT * FROM clock_ticks WHERE schedule_id = $1 AND tick_time = $2', [id, Date.parse(iso)]);
      return row;
    };
    // Kill the clock that owns the next task to arrive at the receiver, while the receiver holds it.
    const kills: Array<{ key: string; offset: number; owner: string; midTick: boolean }> = [];
    const killOwnerMidTick = async (): Promise<void> => {
      const seen = lines(env.RAW_FILE).length;
      let victim: { key: string; offset: number; owner: string; proc: Proc } | undefined;
      await waitFor(
        async () => {
          for (const key of lines(env.RAW_FILE).slice(seen)) {
            const row = await rowOf(key);
            if (!row || (row.state !== 'claimed' && row.state !== 'sent')) continue;
            const clock = [...live].find(([, p]) => p.pid === pidOf(row.owner));
            if (clock) victim = { key, offset: clock[0], owner: row.owner, proc: clock[1] };
            if (victim) return true;
          }
          return false;
        },
        10_000,
        'a tick in flight at the receiver',
      );
      const v = victim as NonNullable<typeof victim>;
      await v.proc.stop('SIGKILL');
      live.delete(v.offset);
      const after = await rowOf(v.key);
      kills.push({ key: v.key, offset: v.offset, owner: v.owner, midTick: after?.owner === v.owner && after.state !== 'acked' });
      await sleep(1_000); // PM2's restart
      await startClock(v.offset);
    };
    for (const at of KILL_AT_S) {
      await sleep(from + at * 1_000 - Date.now());
      await killOwnerMidTick();
    }

    const expected: string[] = [];
    for (let s = from; s <= until; s += 1_000) for (const id of SCHEDULES) expected.push(`${id}@${new Date(s).toISOString()}`);
    await sleep(until - Date.now());
    await waitFor(() => new Set(lines(env.RECORD_FILE)).size >= expected.length, 20_000, 'every tick of the window at the receiver').catch(
      () => undefined, // the assertions below say which ticks are missing
    );
    await sleep(STALE_MS + 2_000); // a takeover's resend of a finished tick would arrive by now
    // Before the clocks stop: a stopping clock's abandoned claims are taken over too, by design.
    const quiet = all.flatMap((c) => c.proc.messagesLogged).flatMap((m) => /its clock (\S+) went quiet; taking it over/.exec(m)?.[1] ?? []);
    for (const p of live.values()) await p.stop('SIGINT');

    const runs = lines(env.RAW_FILE);
    const counts = new Map<string, number>();
    for (const key of runs) counts.set(key, (counts.get(key) ?? 0) + 1);
    const duplicates = [...counts].filter(([, n]) => n > 1).map(([key]) => key);
    const missing = expected.filter((k) => !counts.has(k));
    const tasks = expected.reduce((n, k) => n + (counts.get(k) ?? 0), 0);
    const takeovers = quiet.length;
    const rows = await db.query<Row>('SELECT * FROM clock_ticks');
    const byOffset = OFFSETS.map((offset) => {
      const pids = new Set(all.filter((c) => c.offset === offset).map((c) => c.proc.pid));
      const own = rows.filter((r) => pids.has(pidOf(r.owner)));
      return { offset, ticks: own.length, lead: median(own.map((r) => r.claimed_at - r.tick_time)) };
    });
    const windowRows = rows.filter((r) => r.tick_time >= from && r.tick_time <= until);
    process.stdout.write(
      `clock/skew: ${expected.length} ticks in the window, ${tasks} task runs, ${duplicates.length} duplicates, ${missing.length} missing, ` +
        `${kills.length} kills (${kills.filter((k) => k.midTick).length} mid-tick: ${kills.map((k) => `${k.offset / 1000} s`).join(', ')}), ` +
        `${takeovers} takeovers; ticks owned at the end and median claim time minus tick time by clock offset: ` +
        `${byOffset.map((o) => `${o.offset / 1000} s: ${o.ticks}, ${(o.lead / 1000).toFixed(1)} s`).join('; ')}; ` +
        `${rows.length - windowRows.length} ticks outside the window (each once too)\n`,
    );

    expect(expected.length).toBeGreaterThanOrEqual(200);
    expect(missing).toEqual([]);
    expect(duplicates).toEqual([]); // no handler ran twice, in the window or outside it
    expect(tasks).toBe(expected.length);
    expect(windowRows.filter((r) => r.state !== 'acked')).toEqual([]);
    expect(kills.filter((k) => k.midTick).length).toBeGreaterThanOrEqual(3);
    expect(takeovers).toBeGreaterThanOrEqual(kills.filter((k) => k.midTick).length);
    // Only the killed clocks' claims were taken over: no live clock lost a tick to a skewed one.
    const killed = new Set(kills.map((k) => pidOf(k.owner)));
    expect(quiet.filter((owner) => !killed.has(pidOf(owner)))).toEqual([]);
    // Each killed tick was finished by another clock, with the same key (the receiver ran it once).
    for (const k of kills.filter((x) => x.midTick)) expect((await rowOf(k.key))?.owner).not.toBe(k.owner);
    // What a skew does: the clock 30 s ahead claims its ticks 30 s early; the clock on time claims
    // them on time; the one 30 s behind only gets ticks nobody ahead of it claimed (it fires them late).
    const ahead = byOffset.find((o) => o.offset === 30_000);
    expect(ahead?.lead).toBeLessThan(-28_000);
    expect(ahead?.lead).toBeGreaterThan(-31_000);
  },
  240_000,
);
