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
/** Pattern steps walked per gap of an irregular pattern (a regular one is counted by arithmetic). */
const STEP_CAP = 10_000;

// Per store file and schedule: the newest tick already counted and the figures up to it, so each
// collection reads only the ticks claimed since (the first one reads what the store keeps).
const memo = new Map<string, ClockFigures & { upTo: number } & Shape>();

/** The pattern's shortest interval between ticks, and its period when every interval is the same. */
interface Shape {
  minGap: number;
  period: number | null;
}

/** The intervals of the pattern's 200 ticks after `from`. */
function shapeOf(s: Schedule, from: number): Shape {
  const gaps = new Set<number>();
  let prev = s.pattern.nextRun(new Date(from));
  for (let i = 0; prev && i < 200; i++) {
    const next = s.pattern.nextRun(prev);
    if (!next) break;
    gaps.add(next.getTime() - prev.getTime());
    prev = next;
  }
  const minGap = gaps.size === 0 ? Number.POSITIVE_INFINITY : Math.min(...gaps);
  return { minGap, period: gaps.size === 1 ? minGap : null };
}

/** Pattern ticks strictly after `from` (a tick) and before `to`. */
function between(s: Schedule, shape: Shape, from: number, to: number): number {
  if (to <= from) return 0;
  // Every `period` ms (every second, minute, hour; a day in UTC): no walk needed.
  if (shape.period !== null) return Math.max(0, Math.floor((to - 1 - from) / shape.period));
  let n = 0;
  for (let next = s.pattern.nextRun(new Date(from)); next && next.getTime() < to && n < STEP_CAP; next = s.pattern.nextRun(next)) n++;
  return n;
}

/**
 * Fires, overlap skips and misses of each schedule, read from the clock's SQLite store (read-only).
 * A miss is a tick of the schedule's pattern after its first stored tick that no clock claimed
 * within MISS_GRACE_MS (a catch-up fire of `missed: once` claims the tick, so it is no miss).
 * Counted incrementally: only pairs of stored ticks further apart than the pattern's shortest
 * interval are walked, so a long-kept dense schedule costs one indexed scan at the first call.
 */
export function readClockFigures(file: string, schedules: readonly Schedule[], now: number): Record<string, ClockFigures> | undefined {
  return readOnly(file, (db) => {
    const out: Record<string, ClockFigures> = {};
    const first = db.prepare('SELECT MIN(tick_time) AS t FROM ticks WHERE schedule_id = ?');
    const counts = db.prepare(
      `SELECT COUNT(*) AS n, COALESCE(SUM(state = 'skipped'), 0) AS skipped, MAX(tick_time) AS last
       FROM ticks WHERE schedule_id = ? AND tick_time > ?`,
    );
    const gaps = db.prepare(
      `SELECT prev, t FROM (
         SELECT tick_time AS t, LAG(tick_time) OVER (ORDER BY tick_time) AS prev FROM ticks WHERE schedule_id = ? AND tick_time >= ?
       ) WHERE prev IS NOT NULL AND t - prev > ?`,
    );
    for (const s of schedules) {
      const key = `${file}\0${s.id}\0${s.cron}\0${s.timezone}`;
      let state = memo.get(key);
      if (!state) {
        const t = (first.get(s.id) as { t: number | null }).t;
        if (t === null) {
          out[s.id] = { fires: 0, skipped: 0, missed: 0 };
          continue;
        }
        // The first tick counts as new: the range starts just before it.
        memo.set(key, (state = { upTo: t - 1, fires: 0, skipped: 0, missed: 0, ...shapeOf(s, t - 1) }));
      }
      const c = counts.get(s.id, state.upTo) as { n: number; skipped: number; last: number | null };
      if (c.last !== null) {
        for (const g of gaps.iterate(s.id, state.upTo, state.minGap) as Iterable<{ prev: number; t: number }>)
          state.missed += between(s, state, g.prev, g.t);
        state.fires += c.n - c.skipped;
        state.skipped += c.skipped;
        state.upTo = c.last;
      }
      // Ticks due since the newest stored one and not claimed within the grace: missed so far.
      const pending = between(s, state, state.upTo, now - MISS_GRACE_MS);
      out[s.id] = { fires: state.fires, skipped: state.skipped, missed: state.missed + pending };
    }
    return out;
  });
}
