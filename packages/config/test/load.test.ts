import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { AppError, type ConfigProblem, loadConfig, projectRoot } from '../src';

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'sbc-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const base = (): Record<string, string> => ({ SOCKET_DIR: join(dir, 'run'), DATA_DIR: join(dir, 'data') });

function problems(env: Record<string, string>): ConfigProblem[] {
  try {
    loadConfig({ env, dotenvPath: false });
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('ERR_CONFIG_INVALID');
    return (err as AppError).data as ConfigProblem[];
  }
  throw new Error('expected the configuration to be refused');
}

describe('loadConfig', () => {
  test('defaults apply, values are converted, relative paths hang off the repository root, and the result is frozen', () => {
    const config = loadConfig({
      env: { DATA_DIR: join(dir, 'data'), SOCKET_DIR: join(dir, 'run'), STEEM_START_BLOCK: '1000000' },
      dotenvPath: false,
    });
    expect(config.LOG_LEVEL).toBe('info');
    expect(config.STEEM_NODES.length).toBeGreaterThan(0);
    expect(config.STEEM_START_BLOCK).toBe(1_000_000);
    expect(config.BUS_MAX_MESSAGE_BYTES).toBe(1_048_576);
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.STEEM_NODES)).toBe(true);
    expect(statSync(config.SOCKET_DIR).mode & 0o777).toBe(0o700);
    const relative = loadConfig({ env: { ...base(), DATA_DIR: 'var/test-data' }, dotenvPath: false });
    expect(relative.DATA_DIR).toBe(join(projectRoot, 'var', 'test-data'));
  });

  test('every problem is reported at once, with the variable, what was expected and what was found', () => {
    const found = problems({
      ...base(),
      LOG_LEVEL: 'loud',
      STEEM_NODES: 'ftp://node.example',
      BUS_TASK_TIMEOUT_MS: '-5',
      STEEM_START_BLOCK: 'tomorrow',
    });
    expect(found.map((p) => p.variable).sort()).toEqual(['BUS_TASK_TIMEOUT_MS', 'LOG_LEVEL', 'STEEM_NODES', 'STEEM_START_BLOCK']);
    expect(found.find((p) => p.variable === 'LOG_LEVEL')).toMatchObject({ got: '"loud"' });
    expect(found.find((p) => p.variable === 'STEEM_START_BLOCK')?.expected).toMatch(/head.*irreversible.*block number/);
  });

  test('refuses a socket directory that others can write to, that is a symlink, or that another user owns', () => {
    const open = join(dir, 'open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    expect(problems({ ...base(), SOCKET_DIR: open })[0]).toMatchObject({ variable: 'SOCKET_DIR', got: expect.stringMatching(/mode 777/) });

    const link = join(dir, 'link');
    symlinkSync(join(dir, 'run-real'), link);
    mkdirSync(join(dir, 'run-real'), { mode: 0o700 });
    expect(problems({ ...base(), SOCKET_DIR: link })[0]?.got).toMatch(/symbolic link/);

    if (process.getuid?.() === 0) {
      const foreign = join(dir, 'foreign');
      mkdirSync(foreign, { mode: 0o700 });
      chownSync(foreign, 65534, 65534);
      expect(problems({ ...base(), SOCKET_DIR: foreign })[0]?.got).toMatch(/owned by uid 65534/);
    }
    expect(problems({ ...base(), SOCKET_DIR: join(dir, 'x'.repeat(90)) })[0]?.expected).toMatch(/at most \d+ bytes/);
  });

  test('a process validates the shared variables and its own sections only, and gets only those', () => {
    const env = { ...base(), MAILER_FROM: 'not an address', STEEM_MODE: 'sideways' };
    const broadcaster = loadConfig({ sections: ['chain', 'broadcaster'], env: { ...env, STEEM_MODE: 'head' }, dotenvPath: false });
    expect(broadcaster.STEEM_MODE).toBe('head');
    expect(broadcaster).not.toHaveProperty('MAILER_FROM');
    expect(broadcaster.BUS_TASK_TIMEOUT_MS).toBe(5000); // shared and bus come with every section

    const clock = loadConfig({ sections: ['clock'], env, dotenvPath: false });
    expect(clock).not.toHaveProperty('STEEM_MODE');
    expect(clock.CLOCK_KEEP_DAYS).toBe(14);

    let found: ConfigProblem[] = [];
    try {
      loadConfig({ sections: ['mailer'], env, dotenvPath: false });
    } catch (err) {
      found = (err as AppError).data as ConfigProblem[];
    }
    expect(found.map((p) => p.variable)).toEqual(['MAILER_FROM']);
  });

  test('refuses a data directory others can read, and creates it 0700', () => {
    const config = loadConfig({ env: base(), dotenvPath: false });
    expect(statSync(config.DATA_DIR).mode & 0o777).toBe(0o700);
    const open = join(dir, 'readable');
    mkdirSync(open);
    chmodSync(open, 0o755);
    expect(problems({ ...base(), DATA_DIR: open })[0]).toMatchObject({ variable: 'DATA_DIR', got: expect.stringMatching(/mode 755/) });
  });

  test('values in .env apply where the environment has none', () => {
    const file = join(dir, '.env');
    writeFileSync(file, 'LOG_LEVEL=debug\nSTEEM_MODE=head\n');
    const config = loadConfig({ env: { ...base(), STEEM_MODE: 'irreversible' }, dotenvPath: file });
    expect(config.LOG_LEVEL).toBe('debug');
    expect(config.STEEM_MODE).toBe('irreversible');
  });

  test('loadConfigOrExit prints every problem and exits with status 78', () => {
    const script = "require('./packages/config/dist').loadConfigOrExit(); console.log('started')";
    const result = spawnSync(process.execPath, ['-e', script], {
      cwd: projectRoot,
      env: { ...process.env, ...base(), LOG_FORMAT: 'xml', BUS_RETENTION_BYTES: 'lots' },
      encoding: 'utf8',
    });
    expect(result.status).toBe(78);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/LOG_FORMAT: expected .*; got "xml"/);
    expect(result.stderr).toMatch(/BUS_RETENTION_BYTES: expected a whole number/);
  });
});
