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

export interface TickChange {
  state: TickState;
  error?: string | null;
  /** Count one more delivery attempt. */
  attempt?: boolean;
}

/**
 * The clocks' shared record: one row per (schedule, tick). Whoever inserts the row owns the tick;
 * a row whose owner stopped beating is taken over by another clock. Times of claims and
 * heartbeats come from the store's own clock (the database's, where clocks run on several
 * machines), never from each process's.
 *
 * Two implementations: SQLite (one file under DATA_DIR, shared by the clocks of one machine) and
 * PostgreSQL (clocks on several machines). `test/store.conformance.ts` holds both to one contract.
 */
export interface ClockStore {
  /** Claim a tick: true for exactly one clock. */
  claim(scheduleId: string, tickTime: number, owner: string, tid: string, state?: 'claimed' | 'skipped'): Promise<boolean>;
  /** Open ticks whose owner has not beaten for `staleMs`: candidates for a takeover. */
  orphans(staleMs: number): Promise<TickRow[]>;
  /** Take an orphaned tick over; true for exactly one clock. */
  takeOver(row: TickRow, owner: string): Promise<boolean>;
  /** Every open claim of `owner` is alive. */
  heartbeat(owner: string): Promise<void>;
  /** Record the outcome of a try (only the owner's row changes). */
  update(scheduleId: string, tickTime: number, owner: string, change: TickChange): Promise<void>;
  /** Whether an earlier tick of the schedule is still open (not acknowledged, not expired). */
  openBefore(scheduleId: string, tickTime: number): Promise<boolean>;
  lastTick(scheduleId: string): Promise<number | undefined>;
  history(scheduleId: string, limit: number): Promise<TickRow[]>;
  /** Delete finished ticks older than `before` (open ones are kept); returns how many. */
  prune(before: number): Promise<number>;
  close(): Promise<void>;
}

const OPEN = "('claimed', 'sent')";
const isDone = (state: TickState): boolean => state === 'acked' || state === 'expired' || state === 'skipped';

const SQLITE_MIGRATIONS = [
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

/** The embedded store: a SQLite file shared by the clocks of one machine (their clocks agree). */
export class SqliteClockStore implements ClockStore {
  readonly db: Database;

  /** `now` is the store's clock (injectable for tests). */
  constructor(
    file: string,
    private readonly now: () => number = Date.now,
  ) {
    this.db = openDatabase(file, { migrations: SQLITE_MIGRATIONS });
  }

  claim(scheduleId: string, tickTime: number, owner: string, tid: string, state: 'claimed' | 'skipped' = 'claimed'): Promise<boolean> {
    const now = this.now();
    const changes = this.db
      .prepare(
        `INSERT OR IGNORE INTO ticks (schedule_id, tick_time, owner, heartbeat, state, tid, claimed_at, finished_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(scheduleId, tickTime, owner, now, state, tid, now, state === 'skipped' ? now : null).changes;
    return Promise.resolve(changes === 1);
  }

  orphans(staleMs: number): Promise<TickRow[]> {
    const rows = this.db.prepare(`SELECT * FROM ticks WHERE state IN ${OPEN} AND heartbeat < ?`).all(this.now() - staleMs) as TickRow[];
    return Promise.resolve(rows);
  }

  takeOver(row: TickRow, owner: string): Promise<boolean> {
    const changes = this.db
      .prepare(`UPDATE ticks SET owner = ?, heartbeat = ? WHERE schedule_id = ? AND tick_time = ? AND owner = ? AND state IN ${OPEN}`)
      .run(owner, this.now(), row.schedule_id, row.tick_time, row.owner).changes;
    return Promise.resolve(changes === 1);
  }

  heartbeat(owner: string): Promise<void> {
    this.db.prepare(`UPDATE ticks SET heartbeat = ? WHERE owner = ? AND state IN ${OPEN}`).run(this.now(), owner);
    return Promise.resolve();
  }

  update(scheduleId: string, tickTime: number, owner: string, change: TickChange): Promise<void> {
    const now = this.now();
    this.db
      .prepare(
        'UPDATE ticks SET state = ?, error = ?, attempts = attempts + ?, heartbeat = ?, finished_at = ? WHERE schedule_id = ? AND tick_time = ? AND owner = ?',
      )
      .run(change.state, change.error ?? null, change.attempt ? 1 : 0, now, isDone(change.state) ? now : null, scheduleId, tickTime, owner);
    return Promise.resolve();
  }

  openBefore(scheduleId: string, tickTime: number): Promise<boolean> {
    const row = this.db
      .prepare(`SELECT 1 FROM ticks WHERE schedule_id = ? AND tick_time < ? AND state IN ${OPEN} LIMIT 1`)
      .get(scheduleId, tickTime);
    return Promise.resolve(row !== undefined);
  }

  lastTick(scheduleId: string): Promise<number | undefined> {
    const last = this.db.prepare('SELECT MAX(tick_time) FROM ticks WHERE schedule_id = ?').pluck().get(scheduleId) as number | null;
    return Promise.resolve(last ?? undefined);
  }

  history(scheduleId: string, limit: number): Promise<TickRow[]> {
    return Promise.resolve(
      this.db.prepare('SELECT * FROM ticks WHERE schedule_id = ? ORDER BY tick_time DESC LIMIT ?').all(scheduleId, limit) as TickRow[],
    );
  }

  prune(before: number): Promise<number> {
    return Promise.resolve(this.db.prepare(`DELETE FROM ticks WHERE tick_time < ? AND state NOT IN ${OPEN}`).run(before).changes);
  }

  close(): Promise<void> {
    this.db.close();
    return Promise.resolve();
  }
}
