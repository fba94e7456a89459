import { TailCache } from '../src';

describe('TailCache', () => {
  test('keeps the newest events within its byte bound and remembers what it dropped', () => {
    const w = new TailCache<string>(100, 0);
    for (let pos = 1; pos <= 50; pos++) w.push({ pos, name: 'e', frame: 'x'.repeat(10) });
    expect(w.byteSize).toBeLessThanOrEqual(100);
    expect(w.size).toBe(10);
    expect(w.floor).toBe(40);
    expect(w.last).toBe(50);
    expect(w.after(45, 100).map((e) => e.pos)).toEqual([46, 47, 48, 49, 50]);
    expect(w.after(0, 3).map((e) => e.pos)).toEqual([41, 42, 43]);
    expect(w.after(50, 10)).toEqual([]);
  });

  test('stays bounded and ordered over many pushes (compaction)', () => {
    const w = new TailCache<string>(1000, 0);
    for (let pos = 1; pos <= 100_000; pos++) w.push({ pos: pos * 3, name: 'e', frame: 'yy' });
    expect(w.size).toBe(500);
    expect(w.after(299_000, 2).map((e) => e.pos)).toEqual([299_001, 299_004]);
    expect(w.after(1, 1)[0]?.pos).toBe(w.floor + 3);
  });
});

test('refuses a position that is not a safe integer above the last one', () => {
  const w = new TailCache<string>(100, 10);
  expect(() => w.push({ pos: 10, name: 'e', frame: 'x' })).toThrow(/position 10 is not above the last one \(10\)/);
  w.push({ pos: 11, name: 'e', frame: 'x' });
  expect(() => w.push({ pos: Number.NaN, name: 'e', frame: 'x' })).toThrow(expect.objectContaining({ code: 'ERR_BUS_POSITION' }));
  expect(w.last).toBe(11);
});
