import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { openDatabase } from '../src';

describe('openDatabase', () => {
  const dir = mkdtempSync(join(tmpdir(), 'store-'));

  it('creates the file in WAL mode and runs each migration once, across openings', () => {
    const file = join(dir, 'sub', 'app.sqlite');
    const steps = ['CREATE TABLE a (x INTEGER)', 'ALTER TABLE a ADD COLUMN y TEXT'];
    const first = openDatabase(file, { migrations: steps });
    expect(first.pragma('journal_mode', { simple: true })).toBe('wal');
    first.prepare('INSERT INTO a (x, y) VALUES (1, ?)').run('one');
    first.close();
    const second = openDatabase(file, { migrations: [...steps, 'CREATE INDEX a_x ON a (x)'] });
    expect(second.pragma('user_version', { simple: true })).toBe(3);
    expect(second.prepare('SELECT x, y FROM a').all()).toEqual([{ x: 1, y: 'one' }]);
    second.close();
  });

  it('rolls a failing migration back whole', () => {
    const file = join(dir, 'bad.sqlite');
    expect(() => openDatabase(file, { migrations: ['CREATE TABLE b (x INTEGER)', 'NOT SQL'] })).toThrow(/syntax error/);
    const db = openDatabase(file);
    expect(db.pragma('user_version', { simple: true })).toBe(0);
    expect(db.prepare("SELECT name FROM sqlite_master WHERE name = 'b'").get()).toBeUndefined();
    db.close();
  });
});
