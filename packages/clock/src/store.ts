import { type Database, openDatabase } from '@steem-bot/store';

export type TickState = 'claimed' | 'sent' | 'acked' | 'expired' | 'skipped';

export interface TickRow {
  schedule_id: string;
  tick_time: number;
  owner: string;
  heartbeat: number;
  state: TickState;
  attempts: number;
  tid: string;
  claimed_at: number;
  finished_at: number | null;
  error: string | null;
}

const MIGRATIONS = [
  `CREATE TABLE ticks (
     schedule_id TEXT NOT NULL,
     tick_time INTEGER NOT NULL,
     owner TEXT NOT NULL,
     heartbeat INTEGER NOT NULL,
     state TEXT NOT NULL,
     attempts INTEGER NOT NULL DEFAULT 0,
     tid TEXT NOT NULL,
     claimed_at INTEGER NOT NULL,
     finished_at INTEGER,
     error TEXT,
     PRIMARY KEY (schedule_id, tick_time)
   ) WITHOUT ROWID;
   CREATE INDEX ticks_open ON ticks (state, heartbeat);`,
];

/**
 * The clocks' shared SQLite file: one row per (schedule, tick). Whoever inserts the row owns the
 * tick; a row whose owner stopped beating is taken over by another clock.
 */
export class ClockStore {
  readonly db: Database;

  constructor(file: string) {
    this.db = openDatabase(file, { migrations: MIGRATIONS });
  }

  /** Claim a tick: true for exactly one clock. */
  claim(scheduleId: string, tickTime: number, owner: string, tid: string, now: number, state: TickState = 'claimed'): boolean {
    return (
      this.db
        .prepare(
          `INSERT OR IGNORE INTO ticks (schedule_id, tick_time, owner, heartbeat, state, tid, claimed_at, finished_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(scheduleId, tickTime, owner, now, state, tid, now, state === 'skipped' ? now : null).changes === 1
    );
  }

  /** Open ticks whose owner has not beaten since `staleBefore`: candidates for a takeover. */
  orphans(staleBefore: number): TickRow[] {
    return this.db.prepare("SELECT * FROM ticks WHERE state IN ('claimed', 'sent') AND heartbeat < ?").all(staleBefore) as TickRow[];
  }

  /** Take an orphaned tick over; true for exactly one clock. */
  takeOver(row: TickRow, owner: string, now: number): boolean {
    return (
      this.db
        .prepare(
          "UPDATE ticks SET owner = ?, heartbeat = ? WHERE schedule_id = ? AND tick_time = ? AND owner = ? AND state IN ('claimed', 'sent')",
        )
        .run(owner, now, row.schedule_id, row.tick_time, row.owner).changes === 1
    );
  }

  heartbeat(owner: string, now: number): void {
    this.db.prepare("UPDATE ticks SET heartbeat = ? WHERE owner = ? AND state IN ('claimed', 'sent')").run(now, owner);
  }

  update(
    scheduleId: string,
    tickTime: number,
    owner: string,
    change: { state: TickState; error?: string | null; now: number; attempt?: boolean },
  ): void {
    const done = change.state === 'acked' || change.state === 'expired' || change.state === 'skipped';
    this.db
      .prepare(
        'UPDATE ticks SET state = ?, error = ?, attempts = attempts + ?, heartbeat = ?, finished_at = ? WHERE schedule_id = ? AND tick_time = ? AND owner = ?',
      )
      .run(change.state, change.error ?? null, change.attempt ? 1 : 0, change.now, done ? change.now : null, scheduleId, tickTime, owner);
  }

  /** Whether an earlier tick of the schedule is still open (not acknowledged, not expired). */
  openBefore(scheduleId: string, tickTime: number): boolean {
    return (
      this.db
        .prepare("SELECT 1 FROM ticks WHERE schedule_id = ? AND tick_time < ? AND state IN ('claimed', 'sent') LIMIT 1")
        .get(scheduleId, tickTime) !== undefined
    );
  }

  lastTick(scheduleId: string): number | undefined {
    return (
      (this.db.prepare('SELECT MAX(tick_time) FROM ticks WHERE schedule_id = ?').pluck().get(scheduleId) as number | null) ?? undefined
    );
  }

  history(scheduleId: string, limit: number): TickRow[] {
    return this.db.prepare('SELECT * FROM ticks WHERE schedule_id = ? ORDER BY tick_time DESC LIMIT ?').all(scheduleId, limit) as TickRow[];
  }

  prune(before: number): number {
    return this.db.prepare("DELETE FROM ticks WHERE tick_time < ? AND state NOT IN ('claimed', 'sent')").run(before).changes;
  }

  close(): void {
    this.db.close();
  }
}
