#!/usr/bin/env node
// `npm run new-bot NAME`: create bots/NAME (package, tsconfig, jest config, a handler, a test),
// add it to pm2.json and tsconfig.json, and register the workspace in the lockfile.
'use strict';
const { execFileSync } = require('node:child_process');
const { existsSync, mkdirSync, readFileSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');

const ROOT = join(__dirname, '..');
const RESERVED = new Set([
  'broadcaster',
  'mailer',
  'mailer-api',
  'mailer-worker',
  'clock',
  'signer',
  'webhooks',
  'devnode',
  'bus',
  'config',
  'bot',
  'store',
  'testkit',
]);
const args = process.argv.slice(2);
const name = args.find((a) => !a.startsWith('--'));
const install = !args.includes('--no-install');

function fail(message) {
  process.stderr.write(`new-bot: ${message}\nusage: npm run new-bot NAME [-- --no-install]\n`);
  process.exit(64);
}
if (!name) fail('give the bot a name');
if (!/^[a-z][a-z0-9-]{0,31}$/.test(name))
  fail(`"${name}" is not a valid name: lower-case letters, digits and dashes, starting with a letter`);
if (RESERVED.has(name)) fail(`"${name}" is the name of a project app or package`);
const dir = join(ROOT, 'bots', name);
if (existsSync(dir)) fail(`bots/${name} already exists`);

// The scaffold's task schemas use the project's zod.
const ZOD = require(join(ROOT, 'packages/config/package.json')).dependencies.zod;
const camel = name.replace(/-([a-z0-9])/g, (_, c) => c.toUpperCase());
const upper = name.toUpperCase().replace(/-/g, '_');
const files = {
  'package.json': `${JSON.stringify(
    {
      name: `@steem-bot/bot-${name}`,
      version: '0.1.0',
      private: true,
      description: `Bot: ${name}.`,
      license: 'MIT',
      main: 'dist/index.js',
      types: 'dist/index.d.ts',
      exports: { '.': { types: './dist/index.d.ts', default: './dist/index.js' } },
      files: ['dist'],
      scripts: { build: 'tsc -b', test: 'tsc -b && jest' },
      dependencies: { '@steem-bot/bot': '0.1.0', '@steem-bot/config': '0.1.0', zod: ZOD },
    },
    null,
    2,
  )}\n`,
  'tsconfig.json': `${JSON.stringify(
    {
      extends: '../../tsconfig.base.json',
      compilerOptions: { rootDir: 'src', outDir: 'dist' },
      include: ['src'],
      references: [{ path: '../../packages/config' }, { path: '../../packages/bot' }],
    },
    null,
    2,
  )}\n`,
  'jest.config.ts': `import type { Config } from 'jest';

import { packageJestConfig } from '../../jest.preset';

const config: Config = packageJestConfig(__dirname);
export default config;
`,
  'src/index.ts': `import { createBot } from '@steem-bot/bot';
import { variable, variableSchemas } from '@steem-bot/config';
import { z } from 'zod';

/** ${name}'s own variables (\`npm run docs:config\` lists them in the root README under "Bots' own variables"). */
export const ${camel}Variables = {
  ${upper}_ACCOUNT: variable(
    'The account ${name} votes as; the signer must hold its posting key. Unset: the bot idles.',
    undefined,
    variableSchemas.optionalText.regex(/^[a-z][a-z0-9.-]{2,15}$/, 'a Steem account name'),
  ),
};

/**
 * ${name}'s own tasks, declared here (names start with \`${name}.\`): the clock
 * or any app sends them by name, and ${name} checks their payload against these schemas.
 */
export const ${camel}Tasks = {
  /** Upvote a post now (e.g. from a clock schedule); replies with the signer's action id. */
  '${name}.post.upvote': {
    payload: z.object({ author: z.string().min(1), permlink: z.string().min(1) }),
    reply: z.object({ action_id: z.string() }),
  },
};

/**
 * ${name}: answers every downvote with a 1 % upvote of the same post, as ${upper}_ACCOUNT. Handle
 * any op type by adding its name under \`on\`.
 */
export const ${camel} = createBot({
  name: '${name}',
  variables: ${camel}Variables,
  catalogue: { tasks: ${camel}Tasks },
  // The accounts it acts for: checked with the signer (the only holder of keys) at start-up.
  accounts: (vars) => [vars.${upper}_ACCOUNT],
  // What setup returns is \`ctx.state\` in every handler (no module variables). What must outlive a
  // restart goes in \`ctx.kv\`: JSON values by key in the bot's store (get, set, an atomic update).
  setup: ({ vars }) => ({ account: vars.${upper}_ACCOUNT, weight: 100 }),
  // A handler that awaits I/O passes \`ctx.signal\` on: it is aborted at BOT_HANDLER_TIMEOUT_MS.
  on: {
    async vote(op, { chain, log, state }) {
      if (op.weight >= 0 || op.voter === state.account) return;
      log.info(\`@\${op.voter} downvoted @\${op.author}/\${op.permlink} (\${op.weight / 100} %)\`);
      // A task to the signer, keyed by this op's position: a retried handler never votes twice.
      // (\`await chain.confirmed(id)\` waits until the vote is in a block, if the bot needs that.)
      await chain.vote({ author: op.author, permlink: op.permlink, weight: state.weight });
    },
  },
  // One handler per declared task; the payload is already checked and typed.
  tasks: {
    async '${name}.post.upvote'({ author, permlink }, { chain, state }) {
      return { action_id: await chain.vote({ author, permlink, weight: state.weight }) };
    },
  },
});
`,
  'src/main.ts': `import { ${camel} } from './index';

${camel}.run();
`,
  [`test/${name}.test.ts`]: `import { startTestBot, type TestBot } from '@steem-bot/bot';

import { ${camel} } from '../src';

describe('${name}', () => {
  let bot: TestBot | undefined;
  afterEach(() => bot?.stop());

  test('its own task: an upvote on request, keyed by the task key; a bad payload is refused by the bot', async () => {
    bot = await startTestBot(${camel}, { ${upper}_ACCOUNT: 'mybot' });
    // The clock stand-in knows only the project's catalogue: the task goes by name.
    const reply = await bot.clock.sendByName('${name}.post.upvote', { author: 'bob', permlink: 'p' }, { idempotencyKey: 'k1' });
    expect(reply).toEqual({ action_id: 'action-1' });
    expect(bot.actions).toEqual([
      { task: 'signer.vote.cast', key: '${name}:task:k1:0', payload: { account: 'mybot', author: 'bob', permlink: 'p', weight: 100 } },
    ]);
    await expect(bot.clock.sendByName('${name}.post.upvote', { author: 'bob' })).rejects.toMatchObject({ code: 'ERR_BUS_INVALID_PAYLOAD' });
  });

  test('answers a downvote with an upvote through the signer, keyed by the op position; not an upvote', async () => {
    bot = await startTestBot(${camel}, { ${upper}_ACCOUNT: 'mybot' });
    await bot.publish('vote', { voter: 'alice', author: 'bob', permlink: 'p', weight: -5000 }, { block: 1, index: 0 });
    await bot.publish('vote', { voter: 'carol', author: 'bob', permlink: 'p', weight: 10000 }, { block: 1, index: 1 });
    expect(bot.actions).toEqual([
      {
        task: 'signer.vote.cast',
        key: '${name}:1000000:0',
        payload: { account: 'mybot', author: 'bob', permlink: 'p', weight: 100 },
      },
    ]);
  });
});
`,
};
for (const [file, text] of Object.entries(files)) {
  mkdirSync(join(dir, file, '..'), { recursive: true });
  writeFileSync(join(dir, file), text);
}

const pm2File = join(ROOT, 'pm2.json');
const pm2 = JSON.parse(readFileSync(pm2File, 'utf8'));
const template = pm2.apps.find((a) => a.name === 'new-posts') ?? pm2.apps[0];
pm2.apps.push({ ...template, name, script: `bots/${name}/dist/main.js`, env: { ...template.env } });
writeFileSync(pm2File, `${JSON.stringify(pm2, null, 2)}\n`);

const tsFile = join(ROOT, 'tsconfig.json');
const ts = JSON.parse(readFileSync(tsFile, 'utf8'));
ts.references.push({ path: `bots/${name}` });
writeFileSync(tsFile, `${JSON.stringify(ts, null, 2)}\n`);

// In the house format, so that `npm run lint` passes on the new files as they are.
execFileSync(join(ROOT, 'node_modules/.bin/prettier'), ['--write', '--log-level', 'warn', dir, pm2File, tsFile], {
  cwd: ROOT,
  stdio: 'inherit',
});
if (install) execFileSync('npm', ['install', '--no-audit', '--no-fund'], { cwd: ROOT, stdio: 'inherit' });
process.stdout.write(`created bots/${name} and its pm2.json entry.
  edit    bots/${name}/src/index.ts
  test    npm test -w @steem-bot/bot-${name}
  run     npm run build && npx pm2 start pm2.json --only ${name}
`);
