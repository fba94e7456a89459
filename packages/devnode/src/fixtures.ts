import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import type { ApiBlock } from './convert';

/** The real data the package ships (see fixtures/README.md for provenance and licences). */
export const FIXTURES = join(__dirname, '..', 'fixtures');

export function loadRealBlocks(): ApiBlock[] {
  return (JSON.parse(readFileSync(join(FIXTURES, 'blocks-1000000-1000999.json'), 'utf8')) as { blocks: ApiBlock[] }).blocks;
}

export function loadGlobalProps(): Record<string, unknown> {
  return JSON.parse(readFileSync(join(FIXTURES, 'condenser-get-dynamic-global-properties-17000000.json'), 'utf8')) as Record<
    string,
    unknown
  >;
}

export function cloudflare502(): string {
  return readFileSync(join(FIXTURES, 'http-502-cloudflare.html'), 'utf8');
}
