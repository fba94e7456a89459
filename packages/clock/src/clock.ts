import { randomBytes } from 'node:crypto';

import { backoffDelay, type Bus } from '@steem-bot/bus';
import { AppError, type Catalogue, type Logger, newTid, withTid } from '@steem-bot/config';

import { type Schedule, targetOf } from './schedules';
import type { ClockStore, TickRow } from './store';

export interface ClockOptions {
  schedules: readonly Schedule[];
  store: ClockStore;
  bus: Bus<Catalogue>;
  logger: Logger;
  /** A claimed tick whose owner has not beaten for this long is taken over (CLOCK_CLAIM_STALE_MS). */
  staleMs: number;
  /** Ticks are kept this long for inspection (CLOCK_KEEP_DAYS). */
  keepMs: number;
  /** Wait for one acknowledgement (BUS_TASK_TIMEOUT_MS). */
  ackTimeoutMs: number;
  /** Name of this clock in the claims (default: PM2's app name and the pid). */
  name?: string;
  /** Injectable clock (tests). */
  now?: () => number;
}

// Heartbeats, takeovers and late ticks are looked at at least this often.
const MAX_SLEEP_MS = 1_000;

// What the receiving app answers to a task it will never accept as sent.
const REFUSALS = new Set<string>(['ERR_BUS_UNKNOWN_NAME', 'ERR_BUS_INVALID_PAYLOAD', 'ERR_BUS_WRONG_APP']);

/** A UTC instant as the tick's name in keys and logs. */
const iso = (t: number): string => new Date(t).toISOString();

/**
 * Fires each schedule's ticks: whoever inserts (schedule, tick) first owns it and sends the task
 * until acknowledged or expired. Claims beat while in progress; another clock takes over a claim
 * whose owner went quiet. The task's idempotency key is `schedule@tick`, the same for every try
 * and every clock, so the receiving app runs it once.
 */
export class Clock {
  readonly owner: string;
  private readonly now: () => number;
  private readonly cursor = new Map<string, number>();
  private readonly inFlight = new Set<Promise<void>>();
  private running = false;
  private wakeUp: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  private lastPrune = 0;

  constructor(private readonly options: ClockOptions) {
    this.now = options.now ?? Date.now;
    this.owner = options.name ?? `${process.env.name ?? 'clock'}-${process.pid}-${randomBytes(3).toString('hex')}`;
  }

  /** Start firing; with `loop: false` the caller drives it with `poll()` (tests with an injected clock). */
  async start(loop = true): Promise<void> {
    this.running = true;
    const now = this.now();
    for (const s of this.options.schedules) {
      this.cursor.set(s.id, now);
      if (s.missed === 'once') await this.catchUp(s, now);
    }
    if (loop) this.loop = this.run();
  }

  /** Fire every tick due since the last poll, beat, take orphaned claims over. */
  async poll(): Promise<void> {
    const now = this.now();
    await this.options.store.heartbeat(this.owner);
    for (const s of this.options.schedules) {
      let t = this.cursor.get(s.id) as number;
      let stale = 0;
      for (let next = s.pattern.nextRun(new Date(t)); next && next.getTime() <= now; next = s.pattern.nextRun(next)) {
        t = next.getTime();
        // After a stall (a suspended machine), ticks already past their expiry are not fired late.
        if (t + s.expiry_ms <= now) stale++;
        else await this.tick(s, t, false);
      }
      if (stale > 0) this.options.logger.warn(`${s.id}: ${stale} ticks passed their expiry while this clock was stalled; not fired`);
      this.cursor.set(s.id, t);
    }
    for (const row of await this.options.store.orphans(this.options.staleMs)) await this.adopt(row);
    if (now - this.lastPrune > 3_600_000) {
      this.lastPrune = now;
      await this.options.store.prune(now - this.options.keepMs);
    }
  }

  /** Next fire times of every schedule (for `npm run clock -- next` and the status screen). */
  next(count = 1): Array<{ id: string; task: string; times: string[] }> {
    return this.options.schedules.map((s) => ({
      id: s.id,
      task: s.task,
      times: s.pattern.nextRuns(count, new Date(this.now())).map((d) => iso(d.getTime())),
    }));
  }

  /** Stop: sends in flight are abandoned, their claims go stale and another clock finishes them. */
  async stop(): Promise<void> {
    this.running = false;
    this.wakeUp?.();
    await this.loop;
    await Promise.race([Promise.all(this.inFlight), new Promise((r) => setTimeout(r, 1_000))]);
  }

  /** Resolves when every send started so far has finished (tests). */
  async settled(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all(this.inFlight);
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        await this.poll();
      } catch (err) {
        // The store is unreachable (a database restart): beat and claim again on the next round.
        this.options.logger.error({ err }, 'clock store failed; retrying');
      }
      const now = this.now();
      const next = Math.min(...this.options.schedules.map((s) => s.pattern.nextRun(new Date(now))?.getTime() ?? Infinity));
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, Math.min(MAX_SLEEP_MS, next - now)));
        this.wakeUp = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** The latest tick missed within the window, fired once if no clock has it yet (never on a schedule's first start). */
  private async catchUp(s: Schedule, now: number): Promise<void> {
    const last = await this.options.store.lastTick(s.id);
    if (last === undefined) return;
    let missed: number | undefined;
    for (
      let next = s.pattern.nextRun(new Date(Math.max(last, now - s.missed_window_ms)));
      next && next.getTime() <= now;
      next = s.pattern.nextRun(next)
    ) {
      missed = next.getTime();
    }
    if (missed !== undefined && missed > last) await this.tick(s, missed, true);
  }

  private async tick(s: Schedule, t: number, catchUp: boolean): Promise<void> {
    const { store, logger } = this.options;
    const tid = newTid();
    if (s.overlap === 'skip' && (await store.openBefore(s.id, t))) {
      if (await store.claim(s.id, t, this.owner, tid, 'skipped')) {
        withTid(tid, () => logger.warn(`${s.id} tick ${iso(t)} skipped: the previous run is not acknowledged yet (overlap: skip)`));
      }
      return;
    }
    if (!(await store.claim(s.id, t, this.owner, tid))) return; // another clock has it
    withTid(tid, () => logger.info(`${s.id} tick ${iso(t)}${catchUp ? ' (catch-up)' : ''}: sending ${s.task}`));
    this.fire(s, t, tid);
  }

  private async adopt(row: TickRow): Promise<void> {
    const s = this.options.schedules.find((x) => x.id === row.schedule_id);
    if (!s || !(await this.options.store.takeOver(row, this.owner))) return;
    withTid(row.tid, () =>
      this.options.logger.warn(`${s.id} tick ${iso(row.tick_time)}: its clock ${row.owner} went quiet; taking it over`),
    );
    this.fire(s, row.tick_time, row.tid);
  }

  private fire(s: Schedule, t: number, tid: string): void {
    const run = withTid(tid, () => this.send(s, t))
      // The store failed while recording an outcome: the claim goes quiet and is taken over.
      .catch((err: unknown) => this.options.logger.error({ err }, `${s.id} tick ${iso(t)}: could not record the outcome`))
      .finally(() => this.inFlight.delete(run));
    this.inFlight.add(run);
  }

  private async send(s: Schedule, t: number): Promise<void> {
    const { store, bus, logger } = this.options;
    for (let attempt = 1; this.running; attempt++) {
      try {
        // By name: a schedule may name a bot's own task, which the bot checks (see parseSchedules).
        await bus.sendByName(s.task, s.payload, {
          idempotencyKey: `${s.id}@${iso(t)}`,
          timeoutMs: this.options.ackTimeoutMs,
          attempts: 1,
        });
        await store.update(s.id, t, this.owner, { state: 'acked', attempt: true });
        logger.info(`${s.id} tick ${iso(t)} acknowledged by ${targetOf(s)}`);
        return;
      } catch (err) {
        const now = this.now();
        const message = err instanceof Error ? err.message : String(err);
        if (err instanceof AppError && REFUSALS.has(err.code)) {
          // The receiver refused the task (unknown name, bad payload): no retry will change that.
          await store.update(s.id, t, this.owner, { state: 'expired', error: message, attempt: true });
          logger.error(`${s.id} tick ${iso(t)} refused by ${targetOf(s)}, not retried (fix the schedule): ${message}`);
          return;
        }
        if (now >= t + s.expiry_ms) {
          await store.update(s.id, t, this.owner, { state: 'expired', error: message, attempt: true });
          logger.error(`${s.id} tick ${iso(t)} expired unacknowledged after ${attempt} tries: ${message}`);
          return;
        }
        await store.update(s.id, t, this.owner, { state: 'sent', error: message, attempt: true });
        const delay = Math.min(backoffDelay(attempt, 200, 5_000), t + s.expiry_ms - now);
        logger.warn(`${s.id} tick ${iso(t)}: ${targetOf(s)} did not acknowledge (${message}); retrying in ${delay} ms`);
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }
}
