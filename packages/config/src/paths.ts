import { resolve } from 'node:path';

/** The repository root: relative paths in the configuration are resolved against it. */
export const projectRoot = resolve(__dirname, '..', '..', '..');

/** Resolve a configured path: absolute paths stay, relative ones hang off the repository root. */
export function resolveProjectPath(p: string): string {
  return resolve(projectRoot, p);
}
