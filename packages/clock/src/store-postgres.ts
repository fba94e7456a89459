import { Postgres } from '@steem-bot/store';

import type { ClockStore, TickChange, TickRow } from './store';

// Claims and heartbeats are stamped with the database's clock, so clocks on machines whose local
// clocks drift apart still agree on who went quiet.
const NOW_MS = '(extract(epoch from clock_timestamp()) * 1000)::bigint';
const OPEN = "('claimed', 'sent')";

const MIGRATIONS = [
  `CREATE TABLE clock_ticks (
     schedule_id TEXT NOT NULL,
     tick_time BIGINT NOT NULL,
     owner TEXT NOT NULL,
     heartbeat BIGINT NOT NULL,
     state TEXT NOT NULL,
     attempts INTEGER NOT NULL DEFAULT 0,
     tid TEXT NOT NULL,
     claimed_at BIGINT NOT NULL,
     finished_at BIGINT,
     error TEXT,
     PRIMARY KEY (schedule_id, tick_time)
   );
   CREATE INDEX clock_ticks_open ON clock_ticks (state, heartbeat)`,
];

/** The distributed store: clocks on several machines share one PostgreSQL table. */
export class PostgresClockStore implements ClockStore {
  private constructor(private readonly db: Postgres) {}

  static async open(options: { url: string; schema: string }): Promise<PostgresClockStore> {
    return new PostgresClockStore(await Postgres.open({ ...options, name: 'clock', migrations: MIGRATIONS, poolSize: 2 }));
  }

  async claim(
    scheduleId: string,
    tickTime: number,
    owner: string,
    tid: string,
    state: 'claimed' | 'skipped' = 'claimed',
  ): Promise<boolean> {
    // The primary key decides: exactly one INSERT of (schedule, tick) succeeds, whichever machine.
    const rows = await this.db.query(
      `INSERT INTO clock_ticks (schedule_id, tick_time, owner, heartbeat, state, tid, claimed_at, finished_at)
       VALUES ($1, $2, $3, ${NOW_MS}, $4, $5, ${NOW_MS}, CASE WHEN $4 = 'skipped' THEN ${NOW_MS} END)
       ON CONFLICT (schedule_id, tick_time) DO NOTHING RETURNING 1`,
      [scheduleId, tickTime, owner, state, tid],
    );
    return rows.length === 1;
  }

  orphans(staleMs: number): Promise<TickRow[]> {
    return this.db.query<TickRow>(`SELECT * FROM clock_ticks WHERE state IN ${OPEN} AND heartbeat < ${NOW_MS} - $1`, [staleMs]);
  }

  async takeOver(row: TickRow, owner: string): Promise<boolean> {
    const rows = await this.db.query(
      `UPDATE clock_ticks SET owner = $1, heartbeat = ${NOW_MS}
       WHERE schedule_id = $2 AND tick_time = $3 AND owner = $4 AND state IN ${OPEN} RETURNING 1`,
      [owner, row.schedule_id, row.tick_time, row.owner],
    );
    return rows.length === 1;
  }

  async heartbeat(owner: string): Promise<void> {
    await this.db.query(`UPDATE clock_ticks SET heartbeat = ${NOW_MS} WHERE owner = $1 AND state IN ${OPEN}`, [owner]);
  }

  async update(scheduleId: string, tickTime: number, owner: string, change: TickChange): Promise<void> {
    await this.db.query(
      `UPDATE clock_ticks SET state = $1, error = $2, attempts = attempts + $3, heartbeat = ${NOW_MS},
         finished_at = CASE WHEN $1 IN ('acked', 'expired', 'skipped') THEN ${NOW_MS} END
       WHERE schedule_id = $4 AND tick_time = $5 AND owner = $6`,
      [change.state, change.error ?? null, change.attempt ? 1 : 0, scheduleId, tickTime, owner],
    );
  }

  async openBefore(scheduleId: string, tickTime: number): Promise<boolean> {
    const rows = await this.db.query(`SELECT 1 FROM clock_ticks WHERE schedule_id = $1 AND tick_time < $2 AND state IN ${OPEN} LIMIT 1`, [
      scheduleId,
      tickTime,
    ]);
    return rows.length > 0;
  }

  async lastTick(scheduleId: string): Promise<number | undefined> {
    const [row] = await this.db.query<{ last: number | null }>('SELECT MAX(tick_time) AS last FROM clock_ticks WHERE schedule_id = $1', [
      scheduleId,
    ]);
    return row?.last ?? undefined;
  }

  history(scheduleId: string, limit: number): Promise<TickRow[]> {
    return this.db.query<TickRow>('SELECT * FROM clock_ticks WHERE schedule_id = $1 ORDER BY tick_time DESC LIMIT $2', [scheduleId, limit]);
  }

  async prune(before: number): Promise<number> {
    const rows = await this.db.query(`DELETE FROM clock_ticks WHERE tick_time < $1 AND state NOT IN ${OPEN} RETURNING 1`, [before]);
    return rows.length;
  }

  close(): Promise<void> {
    return this.db.close();
  }
}
