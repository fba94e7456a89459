#!/usr/bin/env node
'use strict';
// `npm run docs:config`: rewrites the README's configuration tables from the config package's
// sections, the bots' own variables from each bot package's `createBot`, and its error-code table
// from the error table (run `npm run build` first); with --check, only says whether README.md is
// up to date. packages/config/test/docs.test.ts and e2e/test/bot-docs.test.ts check they agree.
const { execFileSync } = require('node:child_process');
const { existsSync, readdirSync, readFileSync, writeFileSync } = require('node:fs');
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
/** A variable's default as the tables show it. */
const shownDefault = (def) => (def.default === undefined ? 'required' : def.default === '' ? '(empty)' : `\`${def.default}\``);
const variableRows = (vars) => Object.entries(vars).map(([name, def]) => `| \`${name}\` | ${shownDefault(def)} | ${cell(def.doc)} |`);
const tables = Object.entries(sections).map(([section, vars]) => {
  const rows = variableRows(vars);
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

/** Every bot package's bots (`createBot` results among its exports), by package directory name. */
function shippedBots() {
  const dir = join(root, 'bots');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => existsSync(join(dir, name, 'package.json')))
    .sort()
    .flatMap((name) => {
      if (!existsSync(join(dir, name, 'dist', 'index.js'))) throw new Error(`bots/${name} is not built: run npm run build first`);
      const exports = require(join(dir, name));
      return Object.values(exports).filter((v) => v && typeof v.run === 'function' && v.definition && v.catalogue);
    });
}

// Per bot: its own tasks (sent by name, checked by the bot) and its own variables.
const botSections = shippedBots()
  .filter((bot) => Object.keys(bot.definition.variables ?? {}).length > 0 || Object.keys(bot.definition.catalogue?.tasks ?? {}).length > 0)
  .map((bot) => {
    const { name, variables = {}, catalogue: own } = bot.definition;
    const tasks = Object.keys(own?.tasks ?? {});
    return [
      `### ${name}`,
      ...(tasks.length > 0 ? ['', `Own tasks: ${tasks.map((t) => `\`${t}\``).join(', ')}.`] : []),
      ...(Object.keys(variables).length > 0
        ? ['', '| variable | default | meaning |', '| --- | --- | --- |', ...variableRows(variables)]
        : ['', 'No variables of its own.']),
    ].join('\n');
  });
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
between('bot-variables', botSections.join('\n\n'));
between('error-table', errors);
const formatted = execFileSync(join(root, 'node_modules', '.bin', 'prettier'), ['--stdin-filepath', file], {
  input: readme,
  encoding: 'utf8',
});
if (process.argv.includes('--check')) {
  // For tests and CI: whether README.md is what this script would write.
  if (formatted !== readFileSync(file, 'utf8')) {
    process.stderr.write('README.md is out of date: run npm run docs:config\n');
    process.exit(1);
  }
} else writeFileSync(file, formatted);
