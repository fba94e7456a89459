#!/usr/bin/env node
'use strict';
// The `steem-devnode` command. It is committed (not generated) so that `npm ci` links it into
// node_modules/.bin before anything is built; it runs the compiled CLI.
const { existsSync } = require('node:fs');
const { join } = require('node:path');

const cli = join(__dirname, '..', 'dist', 'cli.js');
if (!existsSync(cli)) {
  process.stderr.write('steem-devnode: not built yet; run `npm run build` in the repository root first\n');
  process.exit(1);
}
require(cli);
