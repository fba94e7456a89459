import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { errorCodes, projectRoot, variables } from '../src';

const readme = readFileSync(join(projectRoot, 'README.md'), 'utf8');

/** The first-column names of the markdown table under `heading`. */
function tableNames(heading: string): string[] {
  const start = readme.indexOf(heading);
  expect(start).toBeGreaterThanOrEqual(0);
  const section = readme.slice(start).split('\n## ')[0] as string;
  return [...section.matchAll(/^\|\s*`([A-Z0-9_]+)`\s*\|/gm)].map((m) => m[1] as string);
}

describe('the README stays true', () => {
  test('its configuration tables list exactly the variables the config reads, with their defaults and meaning (npm run docs:config)', () => {
    expect(tableNames('## Configuration').sort()).toEqual(Object.keys(variables).sort());
    for (const [name, def] of Object.entries(variables)) {
      const row = readme.split('\n').find((line) => line.startsWith(`| \`${name}\` `)) ?? '';
      const cells = row.split(/(?<!\\)\|/).map((c) => c.trim());
      expect([name, cells[2], cells[3]]).toEqual([
        name,
        def.default === '' ? '(empty)' : `\`${def.default}\``,
        def.doc.replace(/\|/g, '\\|'),
      ]);
    }
  });

  test('its error-code table lists exactly the codes the code raises, with their HTTP status, retry hint and meaning', () => {
    expect(tableNames('## Error codes').sort()).toEqual(Object.keys(errorCodes).sort());
    for (const [code, e] of Object.entries(errorCodes)) {
      const row = readme.split('\n').find((line) => line.startsWith(`| \`${code}\` `)) ?? '';
      const cells = row.split(/(?<!\\)\|/).map((c) => c.trim());
      expect([code, cells[2], cells[3], cells[4]]).toEqual([code, String(e.http), e.retryable ? 'yes' : 'no', e.doc.replace(/\|/g, '\\|')]);
    }
  });
});
