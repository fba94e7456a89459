#!/usr/bin/env node
'use strict';
// `npm run docs:config`: rewrites the README's configuration tables from the config package's
// sections, and its error-code table from the error table (run `npm run build` first).
// packages/config/test/docs.test.ts checks they agree.
const { execFileSync } = require('node:child_process');
const { readFileSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');

const { errorCodes, sections } = require('@steem-bot/config');

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
  signer: 'The signer',
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

const errors = [
  '| code | http | retryable | meaning |',
  '| --- | --- | --- | --- |',
  ...Object.entries(errorCodes).map(([code, e]) => `| \`${code}\` | ${e.http} | ${e.retryable ? 'yes' : 'no'} | ${cell(e.doc)} |`),
].join('\n');

const root = join(__dirname, '..');
const file = join(root, 'README.md');
let readme = readFileSync(file, 'utf8');

/** Replace what lies between the two markers. */
function between(name, text) {
  const start = `<!-- ${name}:start (npm run docs:config) -->`;
  const end = `<!-- ${name}:end -->`;
  const a = readme.indexOf(start);
  const b = readme.indexOf(end);
  if (a < 0 || b < a) throw new Error(`README.md has no ${start} ... ${end} markers`);
  readme = `${readme.slice(0, a + start.length)}\n\n${text}\n\n${readme.slice(b)}`;
}

between('config-table', tables.join('\n\n'));
between('error-table', errors);
writeFileSync(file, readme);
execFileSync(join(root, 'node_modules', '.bin', 'prettier'), ['--write', file], { stdio: 'ignore' });
