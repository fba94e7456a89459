import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { appliedPosition, positionOf } from '@steem-bot/config';
import { DevNode } from '@steem-bot/devnode';
import { type Proc, projectRootFile, spawnProcess, testSetup, waitFor } from '@steem-bot/testkit';

import { BotStore } from '../src';

const BROADCASTER = projectRootFile('packages/broadcaster/dist/main.js');
const RECORDER = join(__dirname, 'fixtures', 'recorder.ts');
const CLI = projectRootFile('packages/bot/dist/cli.js');
const FIRST = 1_000_000;

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Positions of the ops named `names` in blocks [from, to] of the devnode's chain. */
function positions(node: DevNode, from: number, to: number, names: string[]): number[] {
  const out: number[] = [];
  for (let n = from; n <= to; n++) {
    let index = 0;
    for (const trx of node.chain.block(n)?.transactions ?? []) {
      for (const op of trx.operations) {
        if (names.includes(op.type.replace(/_operation$/, ''))) out.push(positionOf(n, index));
        index++;
      }
    }
  }
  return out;
}

async function start(file: string, env: Record<string, string>): Promise<Proc> {
  const proc = await spawnProcess(file, { env });
  cleanups.push(() => proc.stop());
  return proc;
}

describe('a bot process with devnode and the broadcaster process', () => {
  test('SIGKILLed mid-stream and restarted: every op handled, repeats only for the op in flight; a failing op is dead-lettered and replayable', async () => {
    const node = await DevNode.start({ intervalMs: 0, synthetic: 1500, opsPerBlock: [20, 40], libDistance: 0, seed: 11 });
    cleanups.push(() => node.stop());
    const last = node.chain.head();
    const expected = positions(node, FIRST, last, ['vote', 'comment']);
    const failAt = expected[Math.floor(expected.length / 3)] as number;
    const t = testSetup({
      STEEM_NODES: node.url,
      STEEM_START_BLOCK: String(FIRST),
      BOT_RETRY_ATTEMPTS: '2',
      BOT_RETRY_BASE_MS: '20',
      LOG_LEVEL: 'warn',
    });
    cleanups.push(t.cleanup);
    const record = join(t.dir, 'record.txt');
    // Resume from just before the first block, as if the bot had run before.
    const seed = new BotStore(join(t.config.DATA_DIR, 'bot-recorder.sqlite'));
    seed.saveCheckpoint(appliedPosition(FIRST - 1));
    seed.close();
    const botEnv = { ...t.env, RECORD_FILE: record, FAIL_POSITION: String(failAt) };
    const recorded = (): number[] => (existsSync(record) ? readFileSync(record, 'utf8').trim().split('\n').map(Number) : []);

    const bot = await start(RECORDER, botEnv);
    await start(BROADCASTER, t.env);
    await waitFor(() => recorded().length > expected.length / 2, 60_000, 'half of the ops');
    await bot.stop('SIGKILL');
    await start(RECORDER, botEnv);
    await waitFor(() => recorded().includes(expected.at(-1) as number), 90_000, 'the last op');

    const got = recorded();
    const unique = new Set(got);
    const missing = expected.filter((p) => p !== failAt && !unique.has(p));
    expect(missing).toEqual([]);
    expect(unique.has(failAt)).toBe(false);
    expect(got.length - unique.size).toBeLessThanOrEqual(1); // at most the op in flight at the kill

    const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { env: { ...process.env, ...t.env }, encoding: 'utf8' });
    const dead = cli('dead', 'recorder');
    expect(dead.status).toBe(0);
    expect(dead.stdout).toMatch(new RegExp(`#1 +dead +(vote|comment) at ${failAt} .*2 tries`));
    expect(dead.stdout).toMatch(/refusing op/);
    // The op still fails, so a replay reports the new failure.
    const replay = cli('replay', 'recorder', '1');
    expect(replay.stderr).toMatch(/#1 failed again: .*refusing op/);
    expect(cli('dead', 'nobody').stderr).toMatch(/no store for bot "nobody"/);
    expect(cli('bogus').status).toBe(64);
  });
});
