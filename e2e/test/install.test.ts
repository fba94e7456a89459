import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

import { projectRoot } from '@steem-bot/config';

// What a fresh clone gets from `npm ci`: commands documented in READMEs work from the root, npm
// prints no warnings about our settings, and better-sqlite3 is compiled rather than downloaded.

const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_config_')));

test('npx steem-devnode works from the repository root, as the devnode README says', () => {
  const run = spawnSync('npx', ['--no-install', 'steem-devnode', '--help'], { cwd: projectRoot, env, encoding: 'utf8', timeout: 60_000 });
  expect(run.status).toBe(0);
  expect(run.stdout).toContain('steem-devnode smtp');
});

test('npm commands print no warning about an unknown project config', () => {
  const run = spawnSync('npm', ['pkg', 'get', 'name'], { cwd: projectRoot, env, encoding: 'utf8', timeout: 60_000 });
  expect(run.status).toBe(0);
  expect(run.stderr).not.toMatch(/warn/i);
});

test("better-sqlite3's install step builds from source instead of downloading a binary", () => {
  const dir = join(projectRoot, 'node_modules', 'better-sqlite3');
  const bin = require.resolve('prebuild-install/bin.js', { paths: [dir] });
  // prebuild-install exits non-zero when told to build from source (npm then runs node-gyp).
  const run = spawnSync(process.execPath, [bin, '--verbose'], { cwd: dir, env, encoding: 'utf8', timeout: 60_000 });
  expect(run.stderr).toContain('--build-from-source specified, not attempting download');
  expect(run.stderr).not.toContain('http request GET');
});
