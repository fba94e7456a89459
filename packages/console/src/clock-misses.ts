import type { Schedule } from '@steem-bot/clock';

import { readOnly } from './stores';

/** Fires and misses of one schedule, from the clock's ticks table. */
export interface ClockFigures {
  /** Ticks a clock fired (claimed and sent a task), as the store keeps them (CLOCK_KEEP_DAYS). */
  fires: number;
  /** Ticks skipped because the previous run was not acknowledged yet (overlap: skip). */
  skipped: number;
  /** Ticks that came and went with no clock firing them (no clock running, or all too late). */
  missed: number;
}

/** A tick not claimed this long after its time counts as missed. */
export const MISS_GRACE_MS = 60_000;
/** Pattern steps examined per schedule per call, so a dense schedule long down stays cheap. */
const STEP_CAP = 20_000;

// Per store file and schedule: the newest tick already examined and the misses before it, so each
// collection reads only the ticks claimed since (the first one reads what the store keeps).
const memo = new Map<string, { upTo: number; missed: number }>();

/** Pattern ticks strictly between `from` and `to` (at most `cap`). */
function between(s: Schedule, from: number, to: number, cap: number): number {
  let n = 0;
  for (let next = s.pattern.nextRun(new Date(from)); next && next.getTime() < to && n < cap; next = s.pattern.nextRun(next)) n++;
  return n;
}

/**
 * Fires, overlap skips and misses of each schedule, read from the clock's SQLite store (read-only).
 * A miss is a tick of the schedule's pattern after its first stored tick that no clock claimed
 * within MISS_GRACE_MS (a catch-up fire of `missed: once` claims the tick, so it is no miss).
 */
export function readClockFigures(file: string, schedules: readonly Schedule[], now: number): Record<string, ClockFigures> | undefined {
  return readOnly(file, (db) => {
    const out: Record<string, ClockFigures> = {};
    const counts = db.prepare(
      "SELECT COALESCE(SUM(state <> 'skipped'), 0) AS fires, COALESCE(SUM(state = 'skipped'), 0) AS skipped FROM ticks WHERE schedule_id = ?",
    );
    const first = db.prepare('SELECT MIN(tick_time) AS t FROM ticks WHERE schedule_id = ?');
    const since = db.prepare('SELECT tick_time FROM ticks WHERE schedule_id = ? AND tick_time > ? ORDER BY tick_time');
    for (const s of schedules) {
      const key = `${file}\0${s.id}\0${s.cron}`;
      let state = memo.get(key);
      if (!state) {
        const t = (first.get(s.id) as { t: number | null }).t;
        if (t !== null) memo.set(key, (state = { upTo: t, missed: 0 }));
      }
      const c = counts.get(s.id) as { fires: number; skipped: number };
      if (!state) {
        out[s.id] = { fires: c.fires, skipped: c.skipped, missed: 0 };
        continue;
      }
      let budget = STEP_CAP;
      for (const { tick_time: t } of since.iterate(s.id, state.upTo) as Iterable<{ tick_time: number }>) {
        if (budget <= 0) break;
        const n = between(s, state.upTo, t, budget);
        budget -= n + 1;
        state.missed += n;
        state.upTo = t;
      }
      // Ticks due since the newest stored one and not claimed within the grace: missed so far.
      const pending = budget > 0 ? between(s, state.upTo, now - MISS_GRACE_MS, budget) : 0;
      out[s.id] = { fires: c.fires, skipped: c.skipped, missed: state.missed + pending };
    }
    return out;
  });
}
