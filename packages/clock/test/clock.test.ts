import { Bus, MemoryHub, MemoryTransport } from '@steem-bot/bus';
import { type Catalogue, catalogue } from '@steem-bot/config';
import { keptLogger, testSetup, waitFor } from '@steem-bot/testkit';

import { Clock, clockStoreFile, parseSchedules, SqliteClockStore } from '../src';
import { digestCatalogue } from './fixtures/digest-catalogue';

const file = (schedules: unknown[]): string => JSON.stringify({ schedules });
const daily = { id: 'daily', cron: '0 0 8 * * *', task: 'digest.report.send', payload: { period: 'day' } };

describe('schedule file', () => {
  test('a valid file parses with defaults', () => {
    const [s] = parseSchedules(file([daily]));
    expect(s).toMatchObject({ id: 'daily', timezone: 'UTC', overlap: 'skip', missed: 'skip', expiry_ms: 300_000 });
  });

  test('every problem is listed in one error', () => {
    const bad = [
      { ...daily, cron: '61 * * * *' },
      { ...daily, id: 'tz', timezone: 'Mars/Base' },
      { ...daily, id: 'task', task: 'nobody' },
      { ...daily, id: 'payload', task: 'mailer.email.cancel', payload: { id: 7 } },
      { ...daily, id: 'extra', every: 'day' },
      { ...daily },
      { id: 'Bad Id' },
    ];
    let message = '';
    try {
      parseSchedules(file(bad), 'clock.schedules.json');
    } catch (err) {
      expect(err).toMatchObject({ code: 'ERR_CLOCK_SCHEDULES_INVALID' });
      message = (err as Error).message;
    }
    expect(message).toMatch(/^invalid schedules in clock.schedules.json:/);
    for (const part of [
      /schedules\[0\] \(daily\)\.cron: .*minute/,
      /schedules\[1\] \(tz\)\.timezone: "Mars\/Base" is not an IANA time zone/,
      /schedules\[2\] \(task\)\.task: "nobody" is not a task name/,
      /schedules\[3\] \(payload\)\.payload\.id/,
      /schedules\[4\] \(extra\)\.: Unrecognized key: "every"/,
      /schedules\[5\] \(daily\)\.id: "daily" is used twice/,
      /schedules\[6\] \(Bad Id\)\.id: lower-case/,
      /schedules\[6\] \(Bad Id\)\.cron/,
    ])
      expect(message).toMatch(part);
    expect(() => parseSchedules('{')).toThrow(/not JSON/);
  });
});

/** Clocks on the in-memory bus with an injected time, and a receiving `digest` app. */
async function setup(schedules: unknown[], options: { receiver?: boolean } = {}) {
  const t = testSetup();
  const hub = new MemoryHub();
  const { logger, lines } = keptLogger('clock');
  const busFor = (app: string): Bus<Catalogue> =>
    new Bus({ app, catalogue, transport: new MemoryTransport(hub), logger, taskTimeoutMs: 100 });
  let now = Date.parse('2027-03-27T00:00:00Z');
  const received: string[] = [];
  let receiver: Bus<typeof digestCatalogue> | undefined;
  const startReceiver = async (ack: () => Promise<void> = () => Promise.resolve()): Promise<void> => {
    // The digest declares its own task; the clocks' buses (the project's catalogue) send it by name.
    receiver = new Bus({ app: 'digest', catalogue: digestCatalogue, transport: new MemoryTransport(hub), logger, taskTimeoutMs: 100 });
    receiver.handle('digest.report.send', async (_p, ctx) => {
      received.push(ctx.key as string);
      await ack();
      return { ops: 0 };
    });
    await receiver.serve();
  };
  if (options.receiver ?? true) await startReceiver();
  const parsed = parseSchedules(file(schedules));
  const store = new SqliteClockStore(clockStoreFile(t.config.DATA_DIR), () => now);
  const clocks: Clock[] = [];
  const makeClock = (name: string): Clock => {
    const clock = new Clock({
      schedules: parsed,
      store,
      bus: busFor(name),
      logger,
      staleMs: 2_000,
      keepMs: 86_400_000,
      ackTimeoutMs: 100,
      name,
      now: () => now,
    });
    clocks.push(clock);
    return clock;
  };
  return {
    store,
    lines,
    received,
    makeClock,
    startReceiver,
    stopReceiver: () => receiver?.close(),
    set: (iso: string) => (now = Date.parse(iso)),
    advance: (ms: number) => (now += ms),
    time: () => now,
    async cleanup() {
      for (const c of clocks) await c.stop();
      await receiver?.close();
      await store.close();
      t.cleanup();
    },
  };
}

describe('clock', () => {
  let env: Awaited<ReturnType<typeof setup>> | undefined;
  afterEach(() => env?.cleanup());

  test('two clocks, one schedule: each tick is fired once', async () => {
    env = await setup([{ ...daily, id: 'every-5s', cron: '*/5 * * * * *' }]);
    const a = env.makeClock('a');
    const b = env.makeClock('b');
    await a.start(false);
    await b.start(false);
    for (let i = 0; i < 12; i++) {
      env.advance(1_000);
      await a.poll();
      await b.poll();
      await a.settled();
      await b.settled();
    }
    await a.settled();
    await b.settled();
    expect(env.received).toEqual(['00:00:05', '00:00:10'].map((t) => `every-5s@2027-03-27T${t}.000Z`));
    expect((await env.store.history('every-5s', 10)).map((r) => r.state)).toEqual(['acked', 'acked']);
  });

  test('Europe/Berlin: a 02:30 daily fires at 03:00 on the spring-forward day; every 15 min fires 8 times in the repeated fall-back hour', async () => {
    env = await setup([
      { ...daily, id: 'spring', cron: '0 30 2 * * *', timezone: 'Europe/Berlin' },
      { ...daily, id: 'fall', cron: '0 */15 * * * *', timezone: 'Europe/Berlin', overlap: 'allow' },
    ]);
    const clock = env.makeClock('a');
    env.set('2027-03-27T12:00:00Z');
    await clock.start(false);
    // Poll every 15 minutes through both DST days, as the running clock would (more often).
    const walk = async (c: Clock, until: string): Promise<void> => {
      while (env && Date.parse(until) > env.time()) {
        env.advance(15 * 60_000);
        await c.poll();
        await c.settled();
      }
    };
    await walk(clock, '2027-03-29T12:00:00Z');
    expect(env.received.filter((k) => k.startsWith('spring@'))).toEqual([
      'spring@2027-03-28T01:00:00.000Z',
      'spring@2027-03-29T00:30:00.000Z',
    ]);

    env.received.length = 0;
    const fall = env.makeClock('b');
    env.set('2027-10-30T23:45:00Z'); // 01:45 CEST
    await fall.start(false);
    await walk(fall, '2027-10-31T02:00:00Z'); // 03:00 CET: the hour 02:00-03:00 ran twice
    const ticks = env.received.filter((k) => k.startsWith('fall@')).map((k) => k.slice(5));
    expect(ticks).toEqual([
      '2027-10-31T00:00:00.000Z', // 02:00 CEST
      '2027-10-31T00:15:00.000Z',
      '2027-10-31T00:30:00.000Z',
      '2027-10-31T00:45:00.000Z',
      '2027-10-31T01:00:00.000Z', // 02:00 CET
      '2027-10-31T01:15:00.000Z',
      '2027-10-31T01:30:00.000Z',
      '2027-10-31T01:45:00.000Z',
      '2027-10-31T02:00:00.000Z', // 03:00 CET
    ]);
  });

  test('a target that is down gets its tick once it is back, within the expiry; after it, the tick expires', async () => {
    env = await setup([{ ...daily, id: 'minutely', cron: '0 * * * * *', expiry_ms: 1_500 }], { receiver: false });
    const clock = env.makeClock('a');
    await clock.start(false);
    env.advance(60_000);
    await clock.poll(); // the tick is due; nobody handles digest.* yet: retried with backoff
    await waitFor(async () => ((await env?.store.history('minutely', 1))?.[0]?.attempts ?? 0) >= 2, 5_000, 'two tries');
    await env.startReceiver();
    await clock.settled();
    expect(env.received).toEqual(['minutely@2027-03-27T00:01:00.000Z']);
    expect((await env.store.history('minutely', 1))[0]?.state).toBe('acked');

    await env.stopReceiver();
    env.advance(60_000);
    await clock.poll();
    await waitFor(async () => ((await env?.store.history('minutely', 1))?.[0]?.attempts ?? 0) >= 1, 5_000, 'a try');
    env.advance(2_000); // past the expiry
    await clock.settled();
    expect((await env.store.history('minutely', 1))[0]).toMatchObject({ state: 'expired', error: expect.any(String) });
  });

  test("a bot's own task (not in the project's catalogue) is fired by name; a payload the bot refuses ends the tick at once", async () => {
    const bad = { ...daily, id: 'bad', cron: '0 * * * * *', payload: { period: 7 } };
    env = await setup([{ ...daily, id: 'good', cron: '0 * * * * *' }, bad]);
    const clock = env.makeClock('a');
    await clock.start(false);
    env.advance(60_000);
    await clock.poll();
    await clock.settled();
    expect(env.received).toEqual(['good@2027-03-27T00:01:00.000Z']);
    expect((await env.store.history('good', 1))[0]?.state).toBe('acked');
    // Checked by the digest, which declares the task: refused, not retried until the expiry.
    expect((await env.store.history('bad', 1))[0]).toMatchObject({
      state: 'expired',
      attempts: 1,
      error: expect.stringMatching(/^digest\.report\.send: .*period/s),
    });
    expect(env.lines.map((l) => String(l.msg))).toContainEqual(
      expect.stringMatching(/^bad tick 2027-03-27T00:01:00.000Z refused by digest, not retried \(fix the schedule\): /),
    );
  });

  test('overlap skip: a tick is skipped while the previous run is not acknowledged', async () => {
    env = await setup([], { receiver: false });
    await env.cleanup();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    env = await setup([{ ...daily, id: 'slow', cron: '*/10 * * * * *', expiry_ms: 60_000 }], { receiver: false });
    await env.startReceiver(() => gate);
    const clock = env.makeClock('a');
    await clock.start(false);
    env.advance(10_000);
    await clock.poll();
    await waitFor(() => env?.received.length === 1, 2_000, 'the first tick');
    env.advance(10_000);
    await clock.poll();
    expect((await env.store.history('slow', 2)).map((r) => r.state)).toEqual(['skipped', 'claimed']);
    expect(env.lines.some((l) => /skipped: the previous run is not acknowledged/.test(String(l.msg)))).toBe(true);
    release();
  });

  test('missed: once fires one catch-up run for ticks missed while no clock ran (not on the very first start); skip does not', async () => {
    env = await setup([
      { ...daily, id: 'hourly-once', cron: '0 0 * * * *', missed: 'once', missed_window_ms: 3 * 3_600_000 },
      { ...daily, id: 'hourly-skip', cron: '0 0 * * * *' },
    ]);
    const first = env.makeClock('a');
    await first.start(false);
    env.advance(3_600_000);
    await first.poll();
    await first.settled();
    await first.stop();
    env.advance(5 * 3_600_000 + 60_000); // an outage of five hours
    const second = env.makeClock('b');
    await second.start(false);
    await second.settled();
    expect(env.received).toEqual([
      'hourly-once@2027-03-27T01:00:00.000Z',
      'hourly-skip@2027-03-27T01:00:00.000Z',
      'hourly-once@2027-03-27T06:00:00.000Z', // the catch-up: only the latest missed tick
    ]);
  });

  test('after a stall longer than the expiry, the stale ticks are not fired late', async () => {
    env = await setup([{ ...daily, id: 'each-second', cron: '* * * * * *', expiry_ms: 3_000, overlap: 'allow' }]);
    const clock = env.makeClock('a');
    await clock.start(false);
    env.advance(60_000); // the process was suspended for a minute
    await clock.poll();
    await clock.settled();
    expect(env.received).toHaveLength(3); // only the ticks still within their 3 s expiry: 00:00:58, :59, 00:01:00
    expect(env.lines.some((l) => /57 ticks passed their expiry/.test(String(l.msg)))).toBe(true);
  });

  test('history is pruned after the keep time, except ticks still open', async () => {
    env = await setup([]);
    const t0 = Date.parse('2027-03-01T00:00:00Z');
    env.set('2027-03-01T00:00:00Z');
    await env.store.claim('s', t0, 'a', 'tid');
    await env.store.update('s', t0, 'a', { state: 'acked' });
    await env.store.claim('s', t0 + 1_000, 'a', 'tid'); // still open: kept
    await env.store.claim('s', Date.parse('2027-03-20T00:00:00Z'), 'a', 'tid', 'skipped');
    expect(await env.store.prune(Date.parse('2027-03-10T00:00:00Z'))).toBe(1);
    expect((await env.store.history('s', 10)).map((r) => r.state)).toEqual(['skipped', 'claimed']);
  });

  test('a claim whose clock died before the ack is taken over by another clock', async () => {
    env = await setup([{ ...daily, id: 'tick', cron: '*/5 * * * * *', expiry_ms: 60_000 }]);
    // A clock that claimed a tick and died: its row stays 'claimed' with an old heartbeat.
    env.set('2027-03-27T00:00:05Z');
    await env.store.claim('tick', Date.parse('2027-03-27T00:00:05Z'), 'dead-clock', 'deadbeefdeadbeef');
    env.set('2027-03-27T00:00:00Z');
    const clock = env.makeClock('b');
    await clock.start(false);
    env.advance(9_000); // the dead clock's heartbeat is 4 s old: stale (2 s)
    await clock.poll();
    await clock.settled();
    expect(env.received).toEqual(['tick@2027-03-27T00:00:05.000Z']);
    expect((await env.store.history('tick', 1))[0]).toMatchObject({ state: 'acked', owner: 'b', tid: 'deadbeefdeadbeef' });
  });
});
