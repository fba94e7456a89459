import type { Database } from 'better-sqlite3';

/**
 * The outbox's tables: add this step to the migrations of a store whose state changes cause
 * events. Events are written here in the same transaction as the change, then relayed to the
 * app's stream; a crash between the two neither loses nor invents one.
 */
export const OUTBOX_MIGRATION = `
  CREATE TABLE outbox (
    app     TEXT    NOT NULL,
    pos     INTEGER NOT NULL,
    name    TEXT    NOT NULL,
    payload TEXT    NOT NULL,
    tid     TEXT    NOT NULL,
    PRIMARY KEY (app, pos)
  );
  CREATE TABLE outbox_head (app TEXT PRIMARY KEY, pos INTEGER NOT NULL);`;

/** One event waiting in the outbox, with the stream position it will take. */
export interface OutboxEvent {
  pos: number;
  name: string;
  payload: Record<string, unknown>;
  tid: string;
}

/** Where the relay appends: the app's stream (the bus), all or none, positions above its head. */
export interface OutboxTarget {
  /** Position of the newest event in the stream. */
  readonly head: number | null;
  append(events: readonly OutboxEvent[]): Promise<void>;
}

/**
 * The outbox of one app in its store. `add` runs inside the caller's transaction and assigns the
 * event its stream position (time-based, strictly increasing); `relay` moves what is waiting to
 * the stream in order. An event whose position is at or below the stream's head was appended
 * before a crash and is only removed: every event of the app goes through the outbox, so the
 * stream's head never passes an event that is still waiting unless it holds it.
 */
export class Outbox {
  private relaying: Promise<void> | undefined;
  private again = false;

  constructor(
    private readonly db: Database,
    readonly app: string,
  ) {}

  /** Write an event in the current transaction; returns its position. */
  add(name: string, payload: Record<string, unknown>, tid: string, now = Date.now()): number {
    const head = (this.db.prepare('SELECT pos FROM outbox_head WHERE app = ?').pluck().get(this.app) as number | undefined) ?? 0;
    const pos = Math.max(head + 1, now * 1000);
    this.db
      .prepare('INSERT INTO outbox_head (app, pos) VALUES (?, ?) ON CONFLICT (app) DO UPDATE SET pos = excluded.pos')
      .run(this.app, pos);
    this.db
      .prepare('INSERT INTO outbox (app, pos, name, payload, tid) VALUES (?, ?, ?, ?, ?)')
      .run(this.app, pos, name, JSON.stringify(payload), tid);
    return pos;
  }

  /** Events waiting, oldest first. */
  pending(limit = 500): OutboxEvent[] {
    const rows = this.db
      .prepare('SELECT pos, name, payload, tid FROM outbox WHERE app = ? ORDER BY pos LIMIT ?')
      .all(this.app, limit) as Array<{ pos: number; name: string; payload: string; tid: string }>;
    return rows.map((r) => ({ pos: r.pos, name: r.name, payload: JSON.parse(r.payload) as Record<string, unknown>, tid: r.tid }));
  }

  /**
   * Move waiting events to `target`, in order, until none is left. Concurrent calls share one
   * run (and trigger one more pass). Start with it once the target serves, for what a crash left.
   */
  relay(target: OutboxTarget): Promise<void> {
    if (this.relaying) {
      this.again = true;
      return this.relaying;
    }
    this.relaying = this.drain(target).finally(() => (this.relaying = undefined));
    return this.relaying;
  }

  private async drain(target: OutboxTarget): Promise<void> {
    // Positions continue above whatever the stream already holds (e.g. events published before the outbox).
    const head = target.head ?? 0;
    this.db
      .prepare('INSERT INTO outbox_head (app, pos) VALUES (?, ?) ON CONFLICT (app) DO UPDATE SET pos = max(pos, excluded.pos)')
      .run(this.app, head);
    do {
      this.again = false;
      for (let batch = this.pending(); batch.length > 0; batch = this.pending()) {
        const appended = target.head ?? 0;
        const fresh = batch.filter((e) => e.pos > appended);
        if (fresh.length > 0) await target.append(fresh);
        this.db.prepare('DELETE FROM outbox WHERE app = ? AND pos <= ?').run(this.app, (batch[batch.length - 1] as OutboxEvent).pos);
      }
    } while (this.again);
  }
}

/** Runs an outbox's relay on demand and, after a failure, again by itself. */
export interface Relayer {
  /** Relay now (a run in progress is joined by the outbox itself). */
  relay(): void;
  /** Cancel a pending retry and wait for a run in progress (before the store closes). */
  stop(): Promise<void>;
}

/**
 * A relay of what waits in an outbox to the app's stream: run on demand and, after a failure
 * (the stream unreachable, the database restarting), again every `retryMs` until one succeeds,
 * so an event never waits for the app's next state change. The events wait in the outbox
 * meanwhile, so nothing is lost either way.
 */
export function relayer(run: () => Promise<void>, onError: (err: unknown) => void, retryMs = 1_000): Relayer {
  let stopped = false;
  let running: Promise<void> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;
  const relay = (): void => {
    if (stopped) return;
    running = run().catch((err: unknown) => {
      onError(err);
      if (!stopped && timer === undefined) timer = setTimeout(() => ((timer = undefined), relay()), retryMs);
    });
  };
  return {
    relay,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
