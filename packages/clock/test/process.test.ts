import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { Postgres } from '@steem-bot/store';
import { type Proc, projectRootFile, spawnProcess, testSetup } from '@steem-bot/testkit';

const CLOCK = projectRootFile('packages/clock/dist/main.js');
const CLI = projectRootFile('packages/clock/dist/cli.js');
const RECEIVER = join(__dirname, 'fixtures', 'receiver.ts');

const cleanups: Array<() => unknown> = [];
afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const lines = (file: string): string[] => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);

// The same run on each store: the SQLite file, and PostgreSQL where TEST_DATABASE_URL names one.
const url = process.env.TEST_DATABASE_URL;
if (!url) process.stdout.write('clock/process: TEST_DATABASE_URL is not set; the STORE=postgres run is skipped\n');
const stores: Array<[string, () => Promise<Record<string, string>>]> = [['sqlite', () => Promise.resolve({ STORE: 'sqlite' })]];
if (url) {
  stores.push([
    'postgres',
    async () => {
      const schema = `sbt_clockp_${process.pid}_${randomBytes(3).toString('hex')}`;
      cleanups.push(async () => {
        const admin = await Postgres.open({ url, schema, name: 'cleanup' });
        await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        await admin.close();
      });
      return { STORE: 'postgres', DATABASE_URL: url, DATABASE_SCHEMA: schema };
    },
  ]);
}

test.each(stores)(
  'STORE=%s: three clocks, an every-second schedule for 30 s, one SIGKILLed, the target down for 10 s: every tick arrives exactly once',
  async (_store, storeEnv) => {
    const t = testSetup({ CLOCK_CLAIM_STALE_MS: '3000', BUS_TASK_TIMEOUT_MS: '1000', LOG_LEVEL: 'warn', ...(await storeEnv()) });
    cleanups.push(t.cleanup);
    const schedules = join(t.dir, 'schedules.json');
    writeFileSync(
      schedules,
      JSON.stringify({
        schedules: [{ id: 'each-second', cron: '* * * * * *', task: 'digest.report.send', overlap: 'allow', expiry_ms: 60_000 }],
      }),
    );
    const env = { ...t.env, CLOCK_SCHEDULES: schedules, RECORD_FILE: join(t.dir, 'record'), RAW_FILE: join(t.dir, 'raw') };
    const start = async (file: string): Promise<Proc> => {
      const proc = await spawnProcess(file, { env });
      cleanups.push(() => proc.stop());
      return proc;
    };
    const receiver = await start(RECEIVER);
    const clocks = [await start(CLOCK), await start(CLOCK), await start(CLOCK)];
    const from = Date.now() + 1_000;
    await sleep(8_000);
    await clocks[0]?.stop('SIGKILL');
    await sleep(4_000);
    await receiver.stop('SIGTERM');
    await sleep(10_000);
    await start(RECEIVER);
    await sleep(9_000);
    const until = Date.now() - 1_000;
    await sleep(8_000); // ticks still being retried or taken over arrive

    const expected: string[] = [];
    for (let s = Math.ceil(from / 1000) * 1000; s <= until; s += 1000) expected.push(`each-second@${new Date(s).toISOString()}`);
    const recorded = lines(env.RECORD_FILE);
    const inWindow = recorded.filter((k) => expected.includes(k));
    expect(expected.length).toBeGreaterThanOrEqual(28);
    expect(expected.filter((k) => !recorded.includes(k))).toEqual([]); // no gap
    expect(inWindow.length).toBe(new Set(inWindow).size); // no duplicate effect
    const raw = lines(env.RAW_FILE);
    const repeats = raw.length - new Set(raw).size;
    expect(repeats).toBeLessThanOrEqual(3); // deliveries whose ack was lost at the receiver's stop

    const history = spawnSync(process.execPath, [CLI, 'history', 'each-second', '50'], {
      env: { ...process.env, ...env },
      encoding: 'utf8',
    });
    expect(history.stdout).toMatch(/acked +by clock-\d+/);
    const next = spawnSync(process.execPath, [CLI, 'next', '2'], { env: { ...process.env, ...env }, encoding: 'utf8' });
    expect(next.stdout).toMatch(/each-second +\* \* \* \* \* \* +UTC +digest.report.send\n {2}\d{4}-/);
  },
);

test('an invalid schedule file stops the clock at start-up with every problem and exit code 78', async () => {
  const t = testSetup();
  cleanups.push(t.cleanup);
  const schedules = join(t.dir, 'bad.json');
  writeFileSync(schedules, JSON.stringify({ schedules: [{ id: 'x', cron: 'nope', task: 'digest.report.send' }, { id: 'y' }] }));
  const proc = await spawnProcess(CLOCK, { env: { ...t.env, CLOCK_SCHEDULES: schedules }, ready: false, stderr: 'pipe' });
  let stderr = '';
  proc.child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  expect(await proc.exited).toBe(78);
  expect(stderr).toMatch(/schedules\[0\] \(x\)\.cron/);
  expect(stderr).toMatch(/schedules\[1\] \(y\)\.task/);
});
