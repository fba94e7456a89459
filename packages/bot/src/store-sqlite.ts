import { type Database, openDatabase } from '@steem-bot/store';

import { type BotStore, checkKey, type DeadLetter, type Json, type NewDeadLetter, planUpdate, toJson, updateOne } from './store';

type DeadRow = Omit<DeadLetter, 'payload'> & { payload: string };

// Step 1 is the file format of the first bots (kept: their files open as they are); step 2 adds
// the bot's own state, which replaced the tables bots used to create themselves.
export const MIGRATIONS = [
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
  `CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at INTEGER NOT NULL) WITHOUT ROWID;`,
];

const parse = (row: DeadRow | undefined): DeadLetter | undefined =>
  row && { ...row, payload: JSON.parse(row.payload) as Record<string, unknown> };

/**
 * A bot's own SQLite file (`DATA_DIR/bot-<name>.sqlite`), synchronous as better-sqlite3 is: the
 * SQL of `SqliteBotStore`, and what scripts and tests use to seed or read a bot's file directly.
 */
export class SqliteBotFile {
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
    return (this.db.prepare('SELECT position FROM checkpoint WHERE id = 1').get() as { position: number } | undefined)?.position ?? null;
  }

  /** Move the checkpoint forward (never back). */
  saveCheckpoint(position: number): void {
    this.saveStmt.run(position, Date.now());
  }

  addDeadLetter(letter: NewDeadLetter): number {
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
    return rows.map((r) => parse(r) as DeadLetter);
  }

  deadLetter(id: number): DeadLetter | undefined {
    return parse(this.db.prepare('SELECT * FROM dead_letters WHERE id = ?').get(id) as DeadRow | undefined);
  }

  requestReplay(id: number): boolean {
    return this.db.prepare("UPDATE dead_letters SET state = 'replay' WHERE id = ? AND state = 'dead'").run(id).changes === 1;
  }

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

  get(key: string): Json | undefined {
    checkKey(key);
    const text = this.db.prepare('SELECT value FROM state WHERE key = ?').pluck().get(key) as string | undefined;
    return text === undefined ? undefined : (JSON.parse(text) as Json);
  }

  set(key: string, value: Json): void {
    checkKey(key);
    this.write(key, toJson(key, value));
  }

  delete(key: string): boolean {
    checkKey(key);
    return this.db.prepare('DELETE FROM state WHERE key = ?').run(key).changes === 1;
  }

  updateMany<K extends string>(
    keys: readonly K[],
    fn: (current: Partial<Record<K, Json>>) => Partial<Record<K, Json | undefined>>,
  ): Partial<Record<K, Json>> {
    keys.forEach(checkKey);
    // IMMEDIATE: the write lock first, so the values read are the ones replaced.
    return this.db
      .transaction(() => {
        const current: Partial<Record<K, Json>> = {};
        for (const key of keys) {
          const value = this.get(key);
          if (value !== undefined) current[key] = value;
        }
        const { writes, removes, after } = planUpdate(keys, current, fn);
        for (const key of removes) this.delete(key);
        for (const [key, text] of writes) this.write(key, text);
        return after;
      })
      .immediate();
  }

  prune(prefix: string, olderThanMs: number): number {
    return this.db.prepare('DELETE FROM state WHERE instr(key, ?) = 1 AND updated_at < ?').run(prefix, Date.now() - olderThanMs).changes;
  }

  close(): void {
    this.db.close();
  }

  private write(key: string, text: string): void {
    this.db
      .prepare(
        'INSERT INTO state (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at',
      )
      .run(key, text, Date.now());
  }
}

/**
 * The SQLite `BotStore`: `SqliteBotFile` behind the async interface. Each call has done its
 * work when it returns its (settled) promise.
 */
export class SqliteBotStore implements BotStore {
  readonly file: SqliteBotFile;

  constructor(path: string) {
    this.file = new SqliteBotFile(path);
  }

  get db(): Database {
    return this.file.db;
  }

  checkpoint = (): Promise<number | null> => run(() => this.file.checkpoint());
  saveCheckpoint = (position: number): Promise<void> => run(() => this.file.saveCheckpoint(position));
  addDeadLetter = (letter: NewDeadLetter): Promise<number> => run(() => this.file.addDeadLetter(letter));
  deadLetters = (state?: DeadLetter['state']): Promise<DeadLetter[]> => run(() => this.file.deadLetters(state));
  deadLetter = (id: number): Promise<DeadLetter | undefined> => run(() => this.file.deadLetter(id));
  requestReplay = (id: number): Promise<boolean> => run(() => this.file.requestReplay(id));
  discardDeadLetter = (id: number): Promise<DeadLetter | undefined> => run(() => this.file.discardDeadLetter(id));
  replaySucceeded = (id: number): Promise<void> => run(() => this.file.replaySucceeded(id));
  replayFailed = (id: number, error: string, attempts: number): Promise<void> => run(() => this.file.replayFailed(id, error, attempts));
  set = (key: string, value: Json): Promise<void> => run(() => this.file.set(key, value));
  delete = (key: string): Promise<boolean> => run(() => this.file.delete(key));
  prune = (prefix: string, olderThanMs: number): Promise<number> => run(() => this.file.prune(prefix, olderThanMs));
  close = (): Promise<void> => run(() => this.file.close());

  get<T extends Json = Json>(key: string): Promise<T | undefined> {
    return run(() => this.file.get(key) as T | undefined);
  }

  update<T extends Json = Json>(key: string, fn: (current: T | undefined) => T | undefined): Promise<T | undefined> {
    return updateOne(this, key, fn);
  }

  updateMany<K extends string>(
    keys: readonly K[],
    fn: (current: Partial<Record<K, Json>>) => Partial<Record<K, Json | undefined>>,
  ): Promise<Partial<Record<K, Json>>> {
    return run(() => this.file.updateMany(keys, fn));
  }
}

/** Run synchronous work now; its result or error as a settled promise. */
function run<T>(work: () => T): Promise<T> {
  try {
    return Promise.resolve(work());
  } catch (err) {
    return Promise.reject(err as Error);
  }
}
