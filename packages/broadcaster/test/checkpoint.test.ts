import { fork } from 'node:child_process';
import fs, { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { AppError } from '@steem-bot/config';

import { CheckpointFile } from '../src';

const MAIN = join(__dirname, '..', 'dist', 'main.js');
const BLOCK_ID = '000f424000000000000000000000000000000000';
let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'sbc-'))));
afterEach(() => {
  jest.restoreAllMocks();
  rmSync(dir, { recursive: true, force: true });
});

describe('the checkpoint file', () => {
  test('save fsyncs the new file before renaming it into place, then fsyncs the directory', () => {
    const file = new CheckpointFile(join(dir, 'cp.json'));
    const calls: string[] = [];
    const paths = new Map<number, string>();
    const open = fs.openSync;
    jest.spyOn(fs, 'openSync').mockImplementation((path, ...rest) => {
      const fd = open(path, ...rest);
      paths.set(fd, String(path));
      return fd;
    });
    const fsync = fs.fsyncSync;
    jest.spyOn(fs, 'fsyncSync').mockImplementation((fd) => {
      calls.push(`fsync ${paths.get(fd) === dir ? 'dir' : paths.get(fd)?.endsWith('.tmp') ? 'tmp' : paths.get(fd)}`);
      fsync(fd);
    });
    const rename = fs.renameSync;
    jest.spyOn(fs, 'renameSync').mockImplementation((a, b) => {
      calls.push('rename');
      rename(a, b);
    });
    file.save({ block_num: 1_000_000, block_id: BLOCK_ID, position: 1_000_000_999_999 });
    expect(calls).toEqual(['fsync tmp', 'rename', 'fsync dir']);
    expect(file.load()).toEqual({ block_num: 1_000_000, block_id: BLOCK_ID, position: 1_000_000_999_999 });
  });

  test('an empty or corrupt checkpoint file is ERR_CHECKPOINT_INVALID, saying what is wrong', () => {
    const path = join(dir, 'cp.json');
    const file = new CheckpointFile(path);
    const cases: Array<[string, RegExp]> = [
      ['', /the file is empty/],
      ['{"block_num":10', /not JSON/],
      ['null', /not an object/],
      ['{"block_num":"x","block_id":"a","position":1}', /block_num/],
      [`{"block_num":1,"block_id":"${BLOCK_ID}","position":1,"recent":[1]}`, /recent/],
    ];
    for (const [text, problem] of cases) {
      writeFileSync(path, text);
      let err: unknown;
      try {
        file.load();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(AppError);
      expect([text, (err as AppError).code, (err as AppError).message]).toEqual([
        text,
        'ERR_CHECKPOINT_INVALID',
        expect.stringMatching(problem),
      ]);
    }
  });

  test('the broadcaster process with an empty checkpoint file exits 78 with a clear message (no restart loop)', async () => {
    const data = join(dir, 'data');
    mkdirSync(data, { mode: 0o700 });
    writeFileSync(join(data, 'broadcaster.checkpoint.json'), '');
    const child = fork(MAIN, [], {
      env: {
        ...process.env,
        SOCKET_DIR: join(dir, 'run'),
        DATA_DIR: data,
        STEEM_NODES: 'http://127.0.0.1:9',
        LOG_LEVEL: 'silent',
      },
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise((r) => child.once('exit', r));
    expect(code).toBe(78);
    expect(stderr).toMatch(/broadcaster\.checkpoint\.json is not a valid checkpoint \(the file is empty\)/);
  });
});
