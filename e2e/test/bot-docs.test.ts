import { spawnSync } from 'node:child_process';

import { projectRoot } from '@steem-bot/config';

// The README's generated tables (config sections, every bot package's own variables and tasks,
// error codes) are what `npm run docs:config` writes from the built packages.
test("the README lists every bot's own variables and tasks, as its package declares them (npm run docs:config)", () => {
  const check = spawnSync(process.execPath, ['scripts/config-table.js', '--check'], { cwd: projectRoot, encoding: 'utf8' });
  expect(check.stderr).toBe('');
  expect(check.status).toBe(0);
});
