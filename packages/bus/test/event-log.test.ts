import { join } from 'node:path';

import { EventLog, type LogEntry, readStreams } from '../src';
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

  test('prunes by bytes and by age in bounded steps, never the newest event; the floor survives a reopen', () => {
    let log = new EventLog(file());
    log.append(Array.from({ length: 1000 }, (_, i) => entry(i + 1, i)));
    // Over 5,000 bytes: the oldest go, 100 rows per step.
    expect(log.prune({ hours: 1e6, bytes: 5000 }, 1000, 100)).toBe(true);
    expect(log.floor).toBe(100);
    while (log.prune({ hours: 1e6, bytes: 5000 }, 1000, 100));
    expect({ floor: log.floor, bytes: log.bytes }).toEqual({ floor: 500, bytes: 5000 });
    // Older than an hour at t = 3,600,800: positions 501..800 (ts 500..799).
    while (log.prune({ hours: 1, bytes: 1e9 }, 3_600_800, 100));
    expect(log.floor).toBe(800);
    expect(log.read(0, 1)[0]?.pos).toBe(801);
    // Everything too old: all but the newest go.
    while (log.prune({ hours: 1, bytes: 1e9 }, 1e12, 100));
    expect({ floor: log.floor, head: log.head, bytes: log.bytes }).toEqual({ floor: 999, head: 1000, bytes: 10 });
    log.close();
    log = new EventLog(file());
    expect({ floor: log.floor, head: log.head }).toEqual({ floor: 999, head: 1000 });
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
