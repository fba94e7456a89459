#!/usr/bin/env node
import { existsSync } from 'node:fs';

import { AppError, loadConfigOrExit } from '@steem-bot/config';

import { loadSchedules } from './schedules';
import { clockStoreFile, openClockStore } from './start';

const USAGE = `usage: npm run clock -- <command>
  next [N]          the next N (default 3) fire times of every schedule
  history ID [N]    the last N (default 20) ticks of schedule ID and their outcome
  check             validate the schedule file`;

function fail(message: string, code = 1): never {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

const [command, arg, count] = process.argv.slice(2);
const config = loadConfigOrExit({ sections: ['clock', 'store'] });
const out = (text: string): boolean => process.stdout.write(`${text}\n`);

async function main(): Promise<void> {
  if (command === 'next' || command === 'check') {
    const schedules = loadSchedules(config.CLOCK_SCHEDULES);
    if (command === 'check') out(`${config.CLOCK_SCHEDULES}: ${schedules.length} valid schedules`);
    else
      for (const s of schedules) {
        const times = s.pattern.nextRuns(Number(arg ?? 3), new Date()).map((d) => d.toISOString());
        out(`${s.id.padEnd(24)} ${s.cron.padEnd(20)} ${s.timezone.padEnd(16)} ${s.task}\n  ${times.join('\n  ')}`);
      }
  } else if (command === 'history' && arg) {
    if (config.STORE === 'sqlite' && !existsSync(clockStoreFile(config.DATA_DIR))) fail('no clock has run yet (no clock.sqlite)');
    const store = await openClockStore(config);
    const rows = await store.history(arg, Number(count ?? 20));
    await store.close();
    if (rows.length === 0) out(`no ticks of ${arg}`);
    for (const r of rows) {
      out(
        `${new Date(r.tick_time).toISOString()}  ${r.state.padEnd(8)} by ${r.owner}  ${r.attempts} tries  tid ${r.tid}${r.error ? `  ${r.error}` : ''}`,
      );
    }
  } else {
    fail(USAGE, 64);
  }
}

main().catch((err: unknown) => {
  if (err instanceof AppError && (err.code === 'ERR_CLOCK_SCHEDULES_INVALID' || err.code === 'ERR_CONFIG_INVALID')) fail(err.message, 78);
  fail(`clock: ${err instanceof Error ? err.message : String(err)}`);
});
