import { type Database, openDatabase } from '@steem-bot/store';

/** A dead-lettered op: its handler failed every try. */
export interface DeadLetter {
  id: number;
  position: number;
  name: string;
  payload: Record<string, unknown>;
  tid: string;
  error: string;
  attempts: number;
  created_at: number;
  /** dead: waiting for an operator; replay: asked to run again; replayed: it then succeeded. */
  state: 'dead' | 'replay' | 'replayed';
  replayed_at: number | null;
}

type DeadRow = Omit<DeadLetter, 'payload'> & { payload: string };

const MIGRATIONS = [
  `CREATE TABLE checkpoint (
     id INTEGER PRIMARY KEY CHECK (id = 1),
     position INTEGER NOT NULL,
     updated_at INTEGER NOT NULL
   );
   CREATE TABLE dead_letters (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     position INTEGER NOT NULL,
     name TEXT NOT NULL,
     payload TEXT NOT NULL,
     tid TEXT NOT NULL,
     error TEXT NOT NULL,
     attempts INTEGER NOT NULL,
     created_at INTEGER NOT NULL,
     state TEXT NOT NULL DEFAULT 'dead' CHECK (state IN ('dead', 'replay', 'replayed')),
     replayed_at INTEGER
   );
   CREATE INDEX dead_letters_state ON dead_letters (state);`,
];

/**
 * A bot's own SQLite file (`DATA_DIR/bot-<name>.sqlite`): its checkpoint, its dead letters and,
 * through `db`, any state the bot keeps itself.
 */
export class BotStore {
  readonly db: Database;
  private readonly saveStmt;

  constructor(file: string) {
    this.db = openDatabase(file, { migrations: MIGRATIONS });
    this.saveStmt = this.db.prepare(
      'INSERT INTO checkpoint (id, position, updated_at) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at WHERE excluded.position > checkpoint.position',
    );
  }

  /** Position of the last op fully handled (or dead-lettered), or null on the first start. */
  checkpoint(): number | null {
    const row = this.db.prepare('SELECT position FROM checkpoint WHERE id = 1').get() as { position: number } | undefined;
    return row?.position ?? null;
  }

  /** Move the checkpoint forward (never back). */
  saveCheckpoint(position: number): void {
    this.saveStmt.run(position, Date.now());
  }

  addDeadLetter(letter: Pick<DeadLetter, 'position' | 'name' | 'payload' | 'tid' | 'error' | 'attempts'>): number {
    const result = this.db
      .prepare('INSERT INTO dead_letters (position, name, payload, tid, error, attempts, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(letter.position, letter.name, JSON.stringify(letter.payload), letter.tid, letter.error, letter.attempts, Date.now());
    return Number(result.lastInsertRowid);
  }

  deadLetters(state?: DeadLetter['state']): DeadLetter[] {
    const rows = (
      state === undefined
        ? this.db.prepare('SELECT * FROM dead_letters ORDER BY id').all()
        : this.db.prepare('SELECT * FROM dead_letters WHERE state = ? ORDER BY id').all(state)
    ) as DeadRow[];
    return rows.map((r) => ({ ...r, payload: JSON.parse(r.payload) as Record<string, unknown> }));
  }

  deadLetter(id: number): DeadLetter | undefined {
    const row = this.db.prepare('SELECT * FROM dead_letters WHERE id = ?').get(id) as DeadRow | undefined;
    return row && { ...row, payload: JSON.parse(row.payload) as Record<string, unknown> };
  }

  /** Ask the running bot (or the next start) to run a dead letter's handler again. */
  requestReplay(id: number): boolean {
    return this.db.prepare("UPDATE dead_letters SET state = 'replay' WHERE id = ? AND state = 'dead'").run(id).changes === 1;
  }

  /** Delete a dead letter waiting for an operator (state dead); returns it, or undefined if there is none. */
  discardDeadLetter(id: number): DeadLetter | undefined {
    return this.db.transaction(() => {
      const letter = this.deadLetter(id);
      if (letter?.state !== 'dead') return undefined;
      this.db.prepare("DELETE FROM dead_letters WHERE id = ? AND state = 'dead'").run(id);
      return letter;
    })();
  }

  replaySucceeded(id: number): void {
    this.db.prepare("UPDATE dead_letters SET state = 'replayed', replayed_at = ? WHERE id = ?").run(Date.now(), id);
  }

  replayFailed(id: number, error: string, attempts: number): void {
    this.db.prepare("UPDATE dead_letters SET state = 'dead', error = ?, attempts = attempts + ? WHERE id = ?").run(error, attempts, id);
  }

  close(): void {
    this.db.close();
  }
}
