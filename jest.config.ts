import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

import type { Config } from 'jest';

// Every workspace with a jest config is a project; `bots/` may not exist yet in a fresh layout.
const projects = ['packages', 'bots', 'e2e']
  .filter((dir) => existsSync(join(__dirname, dir)))
  .flatMap((dir) =>
    dir === 'e2e'
      ? [join(__dirname, dir, 'jest.config.ts')]
      : readdirSync(join(__dirname, dir)).map((name) => join(__dirname, dir, name, 'jest.config.ts')),
  )
  .filter((file) => existsSync(file));

const config: Config = { projects };
export default config;
