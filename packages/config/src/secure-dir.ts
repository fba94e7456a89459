import { lstatSync, mkdirSync } from 'node:fs';

/** What a directory should have been, and what it was. */
export interface DirProblem {
  expected: string;
  got: string;
}

/**
 * Create `dir` (mode 0700) if it is missing and check that only this user can write to it, and,
 * unless `readable` is true, that nobody else can read or enter it either.
 * Returns the problem, or undefined when the directory is safe.
 */
export function checkPrivateDir(dir: string, options: { readable?: boolean } = {}): DirProblem | undefined {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const stat = lstatSync(dir);
    if (stat.isSymbolicLink() || !stat.isDirectory()) {
      return { expected: 'a real directory', got: `${stat.isSymbolicLink() ? 'a symbolic link' : 'a file'} at ${dir}` };
    }
    const uid = process.getuid?.();
    if (uid !== undefined && stat.uid !== uid) {
      return { expected: `a directory owned by uid ${uid}`, got: `one owned by uid ${stat.uid} (${dir})` };
    }
    if ((stat.mode & 0o022) !== 0) {
      return { expected: 'a directory not writable by group or others', got: `mode ${(stat.mode & 0o777).toString(8)} (${dir})` };
    }
    if (options.readable === false && (stat.mode & 0o077) !== 0) {
      return {
        expected: 'a directory only its owner can read (chmod 700)',
        got: `mode ${(stat.mode & 0o777).toString(8)} (${dir})`,
      };
    }
    return undefined;
  } catch (err) {
    return { expected: 'a directory this user can create', got: (err as Error).message };
  }
}
