import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

import { AppError } from '@steem-bot/config';
import Database from 'better-sqlite3';

/** One stored event: its position, name, publish time (ms) and encoded frame, exactly as sent. */
export interface LogEntry {
  readonly pos: number;
  readonly name: string;
  readonly ts: number;
  readonly frame: Buffer;
}

/** Where one connection's cursor is: the names it reads (null: every name, a plain client) and its position. */
export interface CursorInfo {
  names: string[] | null;
  pos: number;
}

/** A stream as the operator sees it (`npm run status`), read from its file. */
export interface StreamStatus {
  app: string;
  head: number;
  floor: number;
  bytes: number;
  /** The cursors connected when the publisher last recorded them (every second), with their lag in positions. */
  subscribers: Array<CursorInfo & { lag: number }>;
  /** When the cursors were recorded (ms since the epoch), or null if never. */
  recordedAt: number | null;
}

/** Open each stream under `dataDir/streams` read-only, in name order (the publishers keep running). */
function eachStream<T>(dataDir: string, read: (app: string, db: Database.Database) => T | undefined): T[] {
  const dir = join(dataDir, 'streams');
  if (!existsSync(dir)) return [];
  const result: T[] = [];
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith('.sqlite'))
    .sort()) {
    const db = new Database(join(dir, file), { readonly: true, fileMustExist: true });
    try {
      db.pragma('busy_timeout = 2000');
      const value = read(basename(file, '.sqlite'), db);
      if (value !== undefined) result.push(value);
    } finally {
      db.close();
    }
  }
  return result;
}

/** Read the streams under `dataDir/streams` without changing them (the publishers keep running). */
export function readStreams(dataDir: string): StreamStatus[] {
  return eachStream(dataDir, (app, db) => {
    const s = db.prepare('SELECT floor, head, bytes FROM bus_stream WHERE id = 1').get() as
      { floor: number; head: number; bytes: number } | undefined;
    if (!s) return undefined;
    const rows = db.prepare('SELECT names, pos, seen FROM bus_cursors ORDER BY id').all() as Array<{
      names: string | null;
      pos: number;
      seen: number;
    }>;
    return {
      app,
      head: s.head,
      floor: s.floor,
      bytes: s.bytes,
      subscribers: rows.map((r) => ({
        names: r.names === null ? null : (JSON.parse(r.names) as string[]),
        pos: r.pos,
        lag: Math.max(0, s.head - r.pos),
      })),
      recordedAt: rows[0]?.seen ?? null,
    };
  });
}

/**
 * The events of every stream under `dataDir` whose frame contains `text` (the console's trace
 * by TID), at most `limit` per stream, oldest first, read without changing anything.
 */
export function searchStreams(dataDir: string, text: string, limit: number): Array<LogEntry & { app: string }> {
  const needle = Buffer.from(text);
  return eachStream(dataDir, (app, db) => {
    const found: Array<LogEntry & { app: string }> = [];
    const rows = db.prepare('SELECT last, idx, frames FROM bus_segments WHERE instr(frames, ?) > 0 ORDER BY last').iterate(needle);
    for (const row of rows as IterableIterator<SegmentRow>) {
      const entries: LogEntry[] = [];
      decodeSegment(row, -1, Infinity, entries);
      for (const e of entries) if (e.frame.includes(needle) && found.length < limit) found.push({ ...e, app });
      if (found.length >= limit) break;
    }
    return found;
  }).flat();
}

/** How long events are kept: whichever limit is reached first. The newest event is always kept. */
export interface Retention {
  hours: number;
  bytes: number;
}

// A batch is stored as segments of at most this many events / frame bytes (one row each), so a
// reader near the start of a segment decodes little it does not need.
const SEGMENT_EVENTS = 256;
const SEGMENT_BYTES = 1024 * 1024;

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS bus_segments (
    last   INTEGER PRIMARY KEY,
    first  INTEGER NOT NULL,
    ts     INTEGER NOT NULL,
    bytes  INTEGER NOT NULL,
    idx    BLOB    NOT NULL,
    frames BLOB    NOT NULL
  );
  CREATE TABLE IF NOT EXISTS bus_task_keys (
    key   TEXT PRIMARY KEY,
    reply TEXT,
    at    INTEGER NOT NULL
  );
  CREATE INDEX IF NOT EXISTS bus_task_keys_at ON bus_task_keys (at);
  CREATE TABLE IF NOT EXISTS bus_cursors (
    id    INTEGER PRIMARY KEY,
    names TEXT,
    pos   INTEGER NOT NULL,
    seen  INTEGER NOT NULL
  );
  CREATE TABLE IF NOT EXISTS bus_stream (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    floor INTEGER NOT NULL,
    head  INTEGER NOT NULL,
    bytes INTEGER NOT NULL
  );
`;

interface SegmentRow {
  last: number;
  idx: Buffer;
  frames: Buffer;
}

/**
 * A segment's index: per event its position and publish time (float64, exact for safe integers),
 * its frame's length (uint32) and its name (uint16 length + UTF-8), in order.
 */
function encodeIndex(entries: readonly LogEntry[]): Buffer {
  const names = entries.map((e) => Buffer.from(e.name));
  const idx = Buffer.allocUnsafe(names.reduce((n, name) => n + 22 + name.length, 0));
  let at = 0;
  entries.forEach((e, i) => {
    const name = names[i] as Buffer;
    at = idx.writeDoubleLE(e.pos, at);
    at = idx.writeDoubleLE(e.ts, at);
    at = idx.writeUInt32LE(e.frame.length, at);
    at = idx.writeUInt16LE(name.length, at);
    at += name.copy(idx, at);
  });
  return idx;
}

/** The events of a segment after `after`, at most `limit`; frames are views of the row's blob. */
function decodeSegment(row: SegmentRow, after: number, limit: number, out: LogEntry[]): void {
  const { idx, frames } = row;
  let at = 0;
  let offset = 0;
  while (at < idx.length && out.length < limit) {
    const pos = idx.readDoubleLE(at);
    const ts = idx.readDoubleLE(at + 8);
    const length = idx.readUInt32LE(at + 16);
    const nameLength = idx.readUInt16LE(at + 20);
    at += 22;
    if (pos > after)
      out.push({ pos, ts, name: idx.toString('utf8', at, at + nameLength), frame: frames.subarray(offset, offset + length) });
    at += nameLength;
    offset += length;
  }
}

/**
 * A publishing app's durable stream: an append-only table in SQLite. Events in (floor, head]
 * are all in the table; events at or below the floor were pruned (or predate the stream).
 * `head` only grows, across restarts, even once every event has been pruned. A batch is stored
 * as few rows (segments of up to 256 events), so an append costs one row per block, not one per
 * event; retention drops whole segments.
 */
export class EventLog {
  private readonly db: Database.Database;
  private readonly insertSegment: Database.Statement<[number, number, number, number, Buffer, Buffer]>;
  private readonly setHead: Database.Statement<[number, number]>;
  private readonly selectAfter: Database.Statement<[number, number], SegmentRow>;
  private readonly selectOldest: Database.Statement<[number], { last: number; ts: number; bytes: number }>;
  private readonly appendTx: (entries: readonly LogEntry[], bytes: number) => void;
  private _head: number;
  private _floor: number;
  private _bytes: number;

  /** Open (or create) the stream in `file` (':memory:' for a stream that dies with the process). */
  constructor(file: string, floor = 0) {
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    this.db = new Database(file);
    this.db.pragma('busy_timeout = 5000');
    this.db.pragma('journal_mode = WAL');
    // Durable across a process crash (SIGKILL); WAL keeps the file consistent across power loss.
    this.db.pragma('synchronous = NORMAL');
    this.db.exec(SCHEMA);
    this.db.prepare('INSERT OR IGNORE INTO bus_stream (id, floor, head, bytes) VALUES (1, ?, ?, 0)').run(floor, floor);
    this.insertSegment = this.db.prepare('INSERT INTO bus_segments (last, first, ts, bytes, idx, frames) VALUES (?, ?, ?, ?, ?, ?)');
    this.setHead = this.db.prepare('UPDATE bus_stream SET head = ?, bytes = bytes + ? WHERE id = 1');
    this.selectAfter = this.db.prepare('SELECT last, idx, frames FROM bus_segments WHERE last > ? ORDER BY last LIMIT ?');
    this.selectOldest = this.db.prepare('SELECT last, ts, bytes FROM bus_segments ORDER BY last LIMIT ?');
    this.appendTx = this.db.transaction((entries: readonly LogEntry[], bytes: number) => {
      for (let i = 0; i < entries.length;) {
        let end = i + 1;
        let size = (entries[i] as LogEntry).frame.length;
        while (end < entries.length && end - i < SEGMENT_EVENTS && size + (entries[end] as LogEntry).frame.length <= SEGMENT_BYTES) {
          size += (entries[end] as LogEntry).frame.length;
          end++;
        }
        const segment = entries.slice(i, end);
        const last = segment[segment.length - 1] as LogEntry;
        const frames = Buffer.concat(
          segment.map((e) => e.frame),
          size,
        );
        this.insertSegment.run(
          last.pos,
          (segment[0] as LogEntry).pos,
          Math.max(...segment.map((e) => e.ts)),
          size,
          encodeIndex(segment),
          frames,
        );
        i = end;
      }
      this.setHead.run((entries[entries.length - 1] as LogEntry).pos, bytes);
    });
    this.migrateEventRows();
    const row = this.db.prepare('SELECT floor, head, bytes FROM bus_stream WHERE id = 1').get() as {
      floor: number;
      head: number;
      bytes: number;
    };
    this._floor = row.floor;
    this._head = row.head;
    this._bytes = row.bytes;
    // A publisher that starts above its stream (its own checkpoint is newer): what lies between
    // is not here, so it is below the floor.
    if (floor > this._head) this.raiseFloor(floor);
  }

  /** Position of the newest event ever appended (or the floor of a stream never appended to). */
  get head(): number {
    return this._head;
  }

  /** Every event at or below this position is gone from the stream. */
  get floor(): number {
    return this._floor;
  }

  /** Bytes of the frames kept. */
  get bytes(): number {
    return this._bytes;
  }

  /** Append events in one transaction; positions must be safe integers above the head, increasing. */
  append(entries: readonly LogEntry[]): void {
    if (entries.length === 0) return;
    let last = this._head;
    let bytes = 0;
    for (const e of entries) {
      if (!Number.isSafeInteger(e.pos) || e.pos <= last) {
        throw new AppError('ERR_BUS_POSITION', `position ${e.pos} is not above the last one (${last})`);
      }
      last = e.pos;
      bytes += e.frame.length;
    }
    this.appendTx(entries, bytes);
    this._head = last;
    this._bytes += bytes;
  }

  /** Up to `limit` events after `pos`, oldest first. */
  read(pos: number, limit: number): LogEntry[] {
    const out: LogEntry[] = [];
    let after = pos;
    while (out.length < limit) {
      const rows = this.selectAfter.all(after, 4);
      for (const row of rows) decodeSegment(row, pos, limit, out);
      if (rows.length < 4) break;
      after = (rows[rows.length - 1] as SegmentRow).last;
    }
    return out;
  }

  /**
   * Drop the oldest segments past the retention, at most `maxRows` of them in one short
   * transaction, so that appends are never held up for long. Returns true when more may be left.
   */
  prune(retention: Retention, now = Date.now(), maxRows = 64): boolean {
    const cutoff = now - retention.hours * 3_600_000;
    // The usual case, nothing due, costs one indexed row.
    const oldest = this.selectOldest.get(1);
    if (!oldest || (oldest.ts >= cutoff && this._bytes <= retention.bytes)) return false;
    const rows = this.selectOldest.all(maxRows);
    let bytes = this._bytes;
    let upTo: number | undefined;
    let freed = 0;
    for (const row of rows) {
      // Never the newest segment: the newest event stays readable.
      if (row.last >= this._head) break;
      if (row.ts >= cutoff && bytes <= retention.bytes) break;
      upTo = row.last;
      bytes -= row.bytes;
      freed += row.bytes;
    }
    if (upTo === undefined) return false;
    const to = upTo;
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM bus_segments WHERE last <= ?').run(to);
      this.db.prepare('UPDATE bus_stream SET floor = ?, bytes = bytes - ? WHERE id = 1').run(to, freed);
    })();
    this._floor = to;
    this._bytes -= freed;
    return rows.length === maxRows;
  }

  /** The reply a task with this idempotency key was accepted with, if it was. */
  acceptedReply(key: string): { reply: unknown } | undefined {
    const row = this.db.prepare('SELECT reply FROM bus_task_keys WHERE key = ?').get(key) as { reply: string | null } | undefined;
    return row && { reply: row.reply === null ? undefined : (JSON.parse(row.reply) as unknown) };
  }

  /** Remember that the task with this key was accepted, with its reply. */
  accept(key: string, reply: unknown, now = Date.now()): void {
    const text = reply === undefined ? null : JSON.stringify(reply);
    this.db.prepare('INSERT OR REPLACE INTO bus_task_keys (key, reply, at) VALUES (?, ?, ?)').run(key, text, now);
  }

  /** Forget the keys of tasks accepted before `before` (ms): a retry comes within minutes, not days. */
  forgetKeys(before: number): void {
    this.db.prepare('DELETE FROM bus_task_keys WHERE at < ?').run(before);
  }

  /** Record where the connected cursors are (for `npm run status`), replacing the last record. */
  saveCursors(cursors: readonly CursorInfo[], now = Date.now()): void {
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM bus_cursors').run();
      const insert = this.db.prepare('INSERT INTO bus_cursors (names, pos, seen) VALUES (?, ?, ?)');
      for (const c of cursors) insert.run(c.names === null ? null : JSON.stringify(c.names), c.pos, now);
    })();
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  /**
   * Streams written before segments kept one row per event (bus_events): move them into
   * segments, in one transaction, once.
   */
  private migrateEventRows(): void {
    const exists = this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'bus_events'").get();
    if (!exists) return;
    const select = this.db.prepare('SELECT pos, name, ts, frame FROM bus_events WHERE pos > ? ORDER BY pos LIMIT 4096');
    this.db.transaction(() => {
      for (let after = -1; ;) {
        const rows = select.all(after) as LogEntry[];
        if (rows.length === 0) break;
        const head = (this.db.prepare('SELECT head FROM bus_stream WHERE id = 1').get() as { head: number }).head;
        this.appendTx(rows, 0);
        // appendTx moved the head to the last row; the stream's own head may be further on.
        this.setHead.run(Math.max(head, (rows[rows.length - 1] as LogEntry).pos), 0);
        after = (rows[rows.length - 1] as LogEntry).pos;
      }
      this.db.exec('DROP TABLE bus_events');
    })();
  }

  /** Move floor and head up to `floor` (a stream whose head is below where it must start). */
  raiseFloor(floor: number): void {
    // Every stored event is at or below the head, so below the new floor.
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM bus_segments').run();
      this.db.prepare('UPDATE bus_stream SET floor = ?, head = ?, bytes = 0 WHERE id = 1').run(floor, floor);
    })();
    this._floor = floor;
    this._head = floor;
    this._bytes = 0;
  }
}
