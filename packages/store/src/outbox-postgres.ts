import type { OutboxEvent, OutboxTarget } from './outbox';
import type { PoolClient, Postgres } from './postgres';

/**
 * The outbox's tables on PostgreSQL: add this step to the migrations of a PostgreSQL store whose
 * state changes cause events (the counterpart of OUTBOX_MIGRATION).
 */
export const POSTGRES_OUTBOX_MIGRATION = `
  CREATE TABLE outbox (
    app     TEXT   NOT NULL,
    pos     BIGINT NOT NULL,
    name    TEXT   NOT NULL,
    payload TEXT   NOT NULL,
    tid     TEXT   NOT NULL,
    PRIMARY KEY (app, pos)
  );
  CREATE TABLE outbox_head (app TEXT PRIMARY KEY, pos BIGINT NOT NULL);`;

/**
 * The outbox of one app in a PostgreSQL store, shared by its processes on every host. `add` runs
 * in the caller's transaction: it takes the next position under the row lock of `outbox_head`,
 * held until that transaction ends, so positions become visible in the order they were given
 * (a relay never sees position n+1 committed while n is still to come). `relay` moves what is
 * waiting to the app's stream after commit, under a transaction-scoped advisory lock (one relay
 * per app at a time, whichever host): append, then delete in the same transaction. A crash after
 * the append leaves rows whose positions are at or below the stream's head: the next relay only
 * deletes them. So each event reaches the stream exactly once, and a crash between the commit of
 * the change and the relay only delays it until the next relay (every process relays at start).
 */
export class PostgresOutbox {
  private relaying: Promise<void> | undefined;
  private again = false;
  /** The highest position this process moved out of the outbox. */
  private appended = 0;

  constructor(
    private readonly db: Postgres,
    readonly app: string,
  ) {}

  /** Write an event in the caller's transaction (`client`); returns its position. */
  async add(client: PoolClient, name: string, payload: Record<string, unknown>, tid: string, now = Date.now()): Promise<number> {
    const { rows } = await client.query<{ pos: number }>(
      `INSERT INTO outbox_head (app, pos) VALUES ($1, $2) ON CONFLICT (app) DO UPDATE SET pos = GREATEST(outbox_head.pos + 1, EXCLUDED.pos)
       RETURNING pos`,
      [this.app, now * 1000],
    );
    const pos = (rows[0] as { pos: number }).pos;
    await client.query('INSERT INTO outbox (app, pos, name, payload, tid) VALUES ($1, $2, $3, $4, $5)', [
      this.app,
      pos,
      name,
      JSON.stringify(payload),
      tid,
    ]);
    return pos;
  }

  /** Events waiting, oldest first. */
  async pending(limit = 500): Promise<OutboxEvent[]> {
    const rows = await this.db.query<{ pos: number; name: string; payload: string; tid: string }>(
      'SELECT pos, name, payload, tid FROM outbox WHERE app = $1 ORDER BY pos LIMIT $2',
      [this.app, limit],
    );
    return rows.map((r) => ({ pos: r.pos, name: r.name, payload: JSON.parse(r.payload) as Record<string, unknown>, tid: r.tid }));
  }

  /** Move waiting events to `target`, in order, until none is left (concurrent calls share one run). */
  relay(target: OutboxTarget): Promise<void> {
    if (this.relaying) {
      this.again = true;
      return this.relaying;
    }
    this.relaying = this.drain(target).finally(() => (this.relaying = undefined));
    return this.relaying;
  }

  private async drain(target: OutboxTarget): Promise<void> {
    // Positions continue above whatever the stream already holds (a short statement of its own:
    // the row lock of outbox_head must not be held while the stream appends). Positions this
    // process appended came from outbox_head: only a head above them needs the statement.
    const head = target.head ?? 0;
    if (head > this.appended)
      await this.db.query(
        'INSERT INTO outbox_head (app, pos) VALUES ($1, $2) ON CONFLICT (app) DO UPDATE SET pos = GREATEST(outbox_head.pos, EXCLUDED.pos)',
        [this.app, head],
      );
    do {
      this.again = false;
      let more = true;
      while (more) {
        more = await this.db.transaction(async (client) => {
          await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`${this.db.options.schema}:outbox:${this.app}`]);
          const { rows } = await client.query<{ pos: number; name: string; payload: string; tid: string }>(
            'SELECT pos, name, payload, tid FROM outbox WHERE app = $1 ORDER BY pos LIMIT 500',
            [this.app],
          );
          if (rows.length === 0) return false;
          const appended = target.head ?? 0;
          const fresh = rows
            .filter((r) => r.pos > appended)
            .map((r) => ({ pos: r.pos, name: r.name, payload: JSON.parse(r.payload) as Record<string, unknown>, tid: r.tid }));
          if (fresh.length > 0) await target.append(fresh);
          this.appended = Math.max(this.appended, (rows[rows.length - 1] as { pos: number }).pos);
          await client.query('DELETE FROM outbox WHERE app = $1 AND pos <= $2', [this.app, (rows[rows.length - 1] as { pos: number }).pos]);
          return true;
        });
      }
    } while (this.again);
  }
}
