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
  test('its configuration table lists exactly the variables the config reads, with their defaults', () => {
    expect(tableNames('## Configuration').sort()).toEqual(Object.keys(variables).sort());
    for (const [name, def] of Object.entries(variables)) {
      const shown = def.default === '' ? '\\(empty\\)' : `\`${def.default?.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\``;
      const row = new RegExp(`^\\|\\s*\`${name}\`\\s*\\|\\s*${shown}`, 'm');
      expect(readme).toMatch(row);
    }
  });

  test('its error-code table lists exactly the codes the code raises', () => {
    expect(tableNames('## Error codes').sort()).toEqual(Object.keys(errorCodes).sort());
  });
});
