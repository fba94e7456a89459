import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

import Database from 'better-sqlite3';

import { EventLog, type LogEntry, readStreams, searchStreams } from '../src';
import { tempDir } from './helpers';

let tmp: ReturnType<typeof tempDir>;
beforeEach(() => (tmp = tempDir()));
afterEach(() => tmp.cleanup());

const entry = (pos: number, ts = 0, size = 10): LogEntry => ({ pos, name: 'e', ts, frame: Buffer.alloc(size, 120) });
const file = (): string => join(tmp.dir, 'streams', 'alpha.sqlite');

describe('EventLog: the durable stream in SQLite', () => {
  test('appends in one transaction, reads in order, and keeps its head across a reopen', () => {
    let log = new EventLog(file());
    log.append(Array.from({ length: 100 }, (_, i) => entry(i + 1)));
    expect(log.read(0, 3).map((e) => e.pos)).toEqual([1, 2, 3]);
    expect(log.read(97, 10).map((e) => e.pos)).toEqual([98, 99, 100]);
    expect(log.read(5, 1)[0]?.frame).toEqual(Buffer.alloc(10, 120));
    log.close();
    log = new EventLog(file());
    expect({ head: log.head, floor: log.floor, bytes: log.bytes }).toEqual({ head: 100, floor: 0, bytes: 1000 });
    log.close();
  });

  test('refuses a batch with a position not above the head, whole: nothing of it is written', () => {
    const log = new EventLog(file());
    log.append([entry(5)]);
    expect(() => log.append([entry(6), entry(7), entry(7)])).toThrow(expect.objectContaining({ code: 'ERR_BUS_POSITION' }));
    expect(() => log.append([entry(5)])).toThrow(/position 5 is not above the last one \(5\)/);
    expect(() => log.append([entry(Number.NaN)])).toThrow(expect.objectContaining({ code: 'ERR_BUS_POSITION' }));
    expect(log.head).toBe(5);
    expect(log.read(0, 10).map((e) => e.pos)).toEqual([5]);
    log.close();
  });

  test('prunes whole segments by bytes and by age in bounded steps, never the newest; the floor survives a reopen', () => {
    let log = new EventLog(file());
    // 100 blocks of 10 events (a segment each), event i published at ts i - 1.
    for (let b = 0; b < 100; b++) log.append(Array.from({ length: 10 }, (_, i) => entry(b * 10 + i + 1, b * 10 + i)));
    // Over 5,000 bytes: the oldest segments go, 10 per step.
    expect(log.prune({ hours: 1e6, bytes: 5000 }, 1000, 10)).toBe(true);
    expect(log.floor).toBe(100);
    while (log.prune({ hours: 1e6, bytes: 5000 }, 1000, 10));
    expect({ floor: log.floor, bytes: log.bytes }).toEqual({ floor: 500, bytes: 5000 });
    // Older than an hour at t = 3,600,800: the segments whose newest event is older (up to 800).
    while (log.prune({ hours: 1, bytes: 1e9 }, 3_600_800, 10));
    expect(log.floor).toBe(800);
    expect(log.read(0, 1)[0]?.pos).toBe(801);
    // Everything too old: all but the newest segment go.
    while (log.prune({ hours: 1, bytes: 1e9 }, 1e12, 10));
    expect({ floor: log.floor, head: log.head, bytes: log.bytes }).toEqual({ floor: 990, head: 1000, bytes: 100 });
    log.close();
    log = new EventLog(file());
    expect({ floor: log.floor, head: log.head }).toEqual({ floor: 990, head: 1000 });
    expect(log.read(0, 100).map((e) => e.pos)).toEqual([991, 992, 993, 994, 995, 996, 997, 998, 999, 1000]);
    log.close();
  });

  test('a big batch is cut into segments; reads start inside a segment and stop at the limit', () => {
    const log = new EventLog(file());
    log.append(
      Array.from({ length: 1000 }, (_, i) => ({ ...entry(i + 1, i), name: i % 2 ? 'odd' : 'even', frame: Buffer.from(`f${i + 1}`) })),
    );
    expect(log.read(300, 3)).toEqual([
      { pos: 301, ts: 300, name: 'even', frame: Buffer.from('f301') },
      { pos: 302, ts: 301, name: 'odd', frame: Buffer.from('f302') },
      { pos: 303, ts: 302, name: 'even', frame: Buffer.from('f303') },
    ]);
    expect(log.read(250, 600).map((e) => e.pos)).toEqual(Array.from({ length: 600 }, (_, i) => 251 + i));
    expect(log.read(999, 10).map((e) => e.pos)).toEqual([1000]);
    expect(log.read(1000, 10)).toEqual([]);
    log.close();
  });

  test('a stream written one row per event (before segments) is moved into segments on open, nothing lost', () => {
    mkdirSync(join(tmp.dir, 'streams'), { recursive: true });
    const db = new Database(file().replace('alpha', 'old'));
    db.exec(`CREATE TABLE bus_events (pos INTEGER PRIMARY KEY, name TEXT NOT NULL, ts INTEGER NOT NULL, frame BLOB NOT NULL);
      CREATE TABLE bus_stream (id INTEGER PRIMARY KEY CHECK (id = 1), floor INTEGER NOT NULL, head INTEGER NOT NULL, bytes INTEGER NOT NULL);
      INSERT INTO bus_stream VALUES (1, 3, 5000, 0);`);
    const insert = db.prepare('INSERT INTO bus_events VALUES (?, ?, ?, ?)');
    for (let pos = 4; pos <= 5000; pos++) insert.run(pos, `n${pos % 3}`, pos, Buffer.from(`frame ${pos}`));
    db.prepare('UPDATE bus_stream SET bytes = (SELECT SUM(length(frame)) FROM bus_events)').run();
    const bytes = (db.prepare('SELECT bytes FROM bus_stream').get() as { bytes: number }).bytes;
    db.close();
    const log = new EventLog(file().replace('alpha', 'old'));
    expect({ floor: log.floor, head: log.head, bytes: log.bytes }).toEqual({ floor: 3, head: 5000, bytes });
    const all = log.read(3, 10_000);
    expect(all.map((e) => e.pos)).toEqual(Array.from({ length: 4997 }, (_, i) => i + 4));
    expect(all[1000]).toEqual({ pos: 1004, ts: 1004, name: 'n2', frame: Buffer.from('frame 1004') });
    log.append([entry(5001)]);
    log.close();
  });

  test('a publisher that starts above its stream raises the floor (and head) to where it starts', () => {
    let log = new EventLog(file(), 10);
    expect({ floor: log.floor, head: log.head }).toEqual({ floor: 10, head: 10 });
    log.append([entry(11), entry(12)]);
    log.close();
    log = new EventLog(file(), 5); // below the head: nothing changes
    expect({ floor: log.floor, head: log.head }).toEqual({ floor: 10, head: 12 });
    log.close();
    log = new EventLog(file(), 50);
    expect({ floor: log.floor, head: log.head, bytes: log.bytes, rows: log.read(0, 10).length }).toEqual({
      floor: 50,
      head: 50,
      bytes: 0,
      rows: 0,
    });
    log.close();
  });
});

test('readStreams shows each stream with its connected cursors and their lag, read-only', () => {
  const log = new EventLog(file());
  log.append([entry(5), entry(9)]);
  log.saveCursors(
    [
      { names: ['comment'], pos: 5 },
      { names: null, pos: 9 },
    ],
    1234,
  );
  expect(readStreams(tmp.dir)).toEqual([
    {
      app: 'alpha',
      head: 9,
      floor: 0,
      bytes: 20,
      recordedAt: 1234,
      subscribers: [
        { names: ['comment'], pos: 5, lag: 4 },
        { names: null, pos: 9, lag: 0 },
      ],
    },
  ]);
  log.close();
  expect(readStreams(join(tmp.dir, 'nowhere'))).toEqual([]);
});

test('searchStreams finds the events whose frame holds a text across segments and streams, read-only, up to a limit', () => {
  const frame = (pos: number, tid: string): LogEntry => ({ pos, name: 'e', ts: pos, frame: Buffer.from(`{"tid":"${tid}","pos":${pos}}`) });
  const alpha = new EventLog(join(tmp.dir, 'streams', 'alpha.sqlite'));
  for (let b = 0; b < 10; b++)
    alpha.append(Array.from({ length: 50 }, (_, i) => frame(b * 50 + i + 1, (b * 50 + i) % 100 === 7 ? 'find-me' : 'other')));
  const beta = new EventLog(join(tmp.dir, 'streams', 'beta.sqlite'));
  beta.append([frame(1, 'other'), frame(2, 'find-me')]);
  const found = searchStreams(tmp.dir, '"tid":"find-me"', 100);
  expect(found.map((e) => `${e.app}:${e.pos}`)).toEqual(['alpha:8', 'alpha:108', 'alpha:208', 'alpha:308', 'alpha:408', 'beta:2']);
  expect(searchStreams(tmp.dir, '"tid":"find-me"', 2).map((e) => `${e.app}:${e.pos}`)).toEqual(['alpha:8', 'alpha:108', 'beta:2']);
  expect(alpha.head).toBe(500);
  alpha.close();
  beta.close();
});
