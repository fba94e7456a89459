import type { Schedule } from '@steem-bot/clock';

import type { StoreReaders } from './readers';

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

// Per store and schedule: the newest tick already counted and the figures up to it, so each
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
 * Fires, overlap skips and misses of each schedule, read from the clock's store (read-only).
 * A miss is a tick of the schedule's pattern after its first stored tick that no clock claimed
 * within MISS_GRACE_MS (a catch-up fire of `missed: once` claims the tick, so it is no miss).
 * Counted incrementally: only pairs of stored ticks further apart than the pattern's shortest
 * interval are walked, so a long-kept dense schedule costs one indexed scan at the first call.
 */
export function readClockFigures(
  stores: StoreReaders,
  schedules: readonly Schedule[],
  now: number,
): Promise<Record<string, ClockFigures> | undefined> {
  return stores.read('clock', async (r) => {
    const ticks = r.t('ticks');
    const out: Record<string, ClockFigures> = {};
    for (const s of schedules) {
      const key = `${stores.key('clock')}\0${s.id}\0${s.cron}\0${s.timezone}`;
      let state = memo.get(key);
      if (!state) {
        const t = (await r.get<{ t: number | null }>(`SELECT MIN(tick_time) AS t FROM ${ticks} WHERE schedule_id = ?`, [s.id]))?.t ?? null;
        if (t === null) {
          out[s.id] = { fires: 0, skipped: 0, missed: 0 };
          continue;
        }
        // The first tick counts as new: the range starts just before it.
        memo.set(key, (state = { upTo: t - 1, fires: 0, skipped: 0, missed: 0, ...shapeOf(s, t - 1) }));
      }
      const c = await r.get<{ n: number; skipped: number; last: number | null }>(
        `SELECT COUNT(*) AS n, COALESCE(SUM(CASE WHEN state = 'skipped' THEN 1 ELSE 0 END), 0) AS skipped, MAX(tick_time) AS last
         FROM ${ticks} WHERE schedule_id = ? AND tick_time > ?`,
        [s.id, state.upTo],
      );
      if (c && c.last !== null) {
        const gaps = await r.all<{ prev: number; t: number }>(
          `SELECT prev, t FROM (
             SELECT tick_time AS t, LAG(tick_time) OVER (ORDER BY tick_time) AS prev FROM ${ticks} WHERE schedule_id = ? AND tick_time >= ?
           ) AS g WHERE prev IS NOT NULL AND t - prev > ?`,
          // A pattern with one tick has no shortest interval: no gap to walk (PostgreSQL's BIGINT has no infinity).
          [s.id, state.upTo, Number.isFinite(state.minGap) ? state.minGap : Number.MAX_SAFE_INTEGER],
        );
        for (const g of gaps) state.missed += between(s, state, g.prev, g.t);
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
