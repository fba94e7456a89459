#!/usr/bin/env node
'use strict';
// `npm run docs:config`: rewrites the README's configuration tables from the config package's
// sections (run `npm run build` first). packages/config/test/docs.test.ts checks they agree.
const { execFileSync } = require('node:child_process');
const { readFileSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');

const { sections } = require('@steem-bot/config');

const TITLES = {
  shared: 'Every app',
  bus: 'Every app: the bus',
  chain: 'Apps that talk to the chain (broadcaster, bots)',
  store: 'Apps with a PostgreSQL store',
  broadcaster: 'The broadcaster',
  bot: 'Every bot (the bot SDK)',
  mailer: 'The mailer (mailer-api and mailer-worker)',
  webhooks: 'The webhooks app',
  clock: 'The clock',
};

const cell = (text) => text.replace(/\|/g, '\\|');
const tables = Object.entries(sections).map(([section, vars]) => {
  const rows = Object.entries(vars).map(
    ([name, def]) => `| \`${name}\` | ${def.default === '' ? '(empty)' : `\`${def.default}\``} | ${cell(def.doc)} |`,
  );
  return [
    `#### ${TITLES[section] ?? section} (\`${section}\`)`,
    '',
    '| variable | default | meaning |',
    '| --- | --- | --- |',
    ...rows,
  ].join('\n');
});

const root = join(__dirname, '..');
const file = join(root, 'README.md');
const START = '<!-- config-table:start (npm run docs:config) -->';
const END = '<!-- config-table:end -->';
const readme = readFileSync(file, 'utf8');
const a = readme.indexOf(START);
const b = readme.indexOf(END);
if (a < 0 || b < a) throw new Error(`README.md has no ${START} ... ${END} markers`);
writeFileSync(file, `${readme.slice(0, a + START.length)}\n\n${tables.join('\n\n')}\n\n${readme.slice(b)}`);
execFileSync(join(root, 'node_modules', '.bin', 'prettier'), ['--write', file], { stdio: 'ignore' });
