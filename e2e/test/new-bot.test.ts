import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { projectRoot } from '@steem-bot/config';
import { spawnProcess, testSetup } from '@steem-bot/testkit';

const NAME = `scaffold-${process.pid}`;
const DIR = join(projectRoot, 'bots', NAME);
const UPPER = NAME.toUpperCase().replace(/-/g, '_');
const kept = ['pm2.json', 'tsconfig.json'].map((f) => [join(projectRoot, f), readFileSync(join(projectRoot, f), 'utf8')] as const);

afterAll(() => {
  for (const [file, text] of kept) writeFileSync(file, text);
  rmSync(DIR, { recursive: true, force: true });
});

test('npm run new-bot NAME creates a bot with its own task and variable that builds, passes its tests and runs, listed in pm2.json', async () => {
  // --no-install: the test must not rewrite the lockfile; a real run registers the workspace.
  execFileSync(process.execPath, ['scripts/new-bot.js', NAME, '--no-install'], { cwd: projectRoot, stdio: 'pipe' });
  const pm2 = JSON.parse(readFileSync(join(projectRoot, 'pm2.json'), 'utf8')) as { apps: Array<{ name: string; script: string }> };
  expect(pm2.apps.find((a) => a.name === NAME)?.script).toBe(`bots/${NAME}/dist/main.js`);
  // Its own task and variable are declared in its package, not in config.
  const index = readFileSync(join(DIR, 'src/index.ts'), 'utf8');
  expect(index).toContain(`'${NAME}.post.upvote': {`);
  expect(index).toContain(`${UPPER}_ACCOUNT: variable(`);

  // Lint-clean as generated: formatted, and no ESLint findings.
  execFileSync(join(projectRoot, 'node_modules/.bin/prettier'), ['--check', `bots/${NAME}`, 'pm2.json', 'tsconfig.json'], {
    cwd: projectRoot,
    stdio: 'pipe',
  });
  execFileSync(join(projectRoot, 'node_modules/.bin/eslint'), [`bots/${NAME}`], { cwd: projectRoot, stdio: 'pipe' });
  execFileSync(join(projectRoot, 'node_modules/.bin/tsc'), ['-b', `bots/${NAME}`], { cwd: projectRoot, stdio: 'pipe' });
  const jest = spawnSync(join(projectRoot, 'node_modules/.bin/jest'), ['--config', `bots/${NAME}/jest.config.ts`], {
    cwd: projectRoot,
    encoding: 'utf8',
  });
  // The generated tests: a downvote answered, and its own task received by name (and a bad payload refused).
  expect(jest.stderr).toMatch(/✓ its own task: an upvote on request, keyed by the task key; a bad payload is refused by the bot/);
  expect(jest.stderr).toMatch(/Tests: +2 passed, 2 total/);
  expect(jest.status).toBe(0);

  const t = testSetup();
  try {
    // Without its account variable it idles (ready, handling nothing) rather than waiting for a signer.
    const bot = await spawnProcess(join(DIR, 'dist/main.js'), { env: t.env });
    expect(bot.messagesLogged.some((m) => m.startsWith(`idle, handling nothing, until ${UPPER}_ACCOUNT is set`))).toBe(true);
    expect(await bot.stop('SIGTERM')).toBe(0);
    // An invalid value of its own variable: the config error list and exit 78, as for config's variables.
    const bad = await spawnProcess(join(DIR, 'dist/main.js'), {
      env: { ...t.env, [`${UPPER}_ACCOUNT`]: 'Not An Account' },
      ready: false,
      stderr: 'pipe',
    });
    let stderr = '';
    bad.child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    expect(await bad.exited).toBe(78);
    expect(stderr).toMatch(
      new RegExp(`^invalid configuration:\n {2}${UPPER}_ACCOUNT: expected a Steem account name; got "Not An Account"\n`),
    );
  } finally {
    t.cleanup();
  }

  const again = spawnSync(process.execPath, ['scripts/new-bot.js', NAME, '--no-install'], { cwd: projectRoot, encoding: 'utf8' });
  expect(again.status).toBe(64);
  expect(again.stderr).toMatch(/already exists/);
  expect(spawnSync(process.execPath, ['scripts/new-bot.js', 'Bad_Name'], { cwd: projectRoot, encoding: 'utf8' }).stderr).toMatch(
    /not a valid name/,
  );
});
