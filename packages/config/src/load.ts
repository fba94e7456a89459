import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { parse as parseDotenv } from 'dotenv';

import { AppError } from './errors';
import { projectRoot, resolveProjectPath } from './paths';
import { checkPrivateDir } from './secure-dir';
import { type Config, type VariableName, variables } from './variables';

/** One violation: which variable, what was expected, what was found. */
export interface ConfigProblem {
  variable: string;
  expected: string;
  got: string;
}

// Unix socket paths are limited to 107 bytes; leave room for "/app." and an app name.
const MAX_APP_NAME = 32;
const MAX_SOCKET_DIR = 107 - '/app.'.length - MAX_APP_NAME;

export interface LoadOptions {
  /** Variables to read; defaults to `process.env`. */
  env?: Record<string, string | undefined>;
  /** A dotenv file whose values apply where `env` has none; defaults to `<root>/.env`. */
  dotenvPath?: string | false;
}

/**
 * Read `.env` and the environment once, validate every variable, report all problems together
 * (as an AppError with code ERR_CONFIG_INVALID and `data: ConfigProblem[]`), and return a frozen object.
 * Also creates SOCKET_DIR and DATA_DIR, and refuses a socket directory other users can write to.
 */
export function loadConfig(options: LoadOptions = {}): Config {
  const env = { ...readDotenv(options.dotenvPath), ...(options.env ?? process.env) };
  const problems: ConfigProblem[] = [];
  const out: Record<string, unknown> = {};
  for (const name of Object.keys(variables) as VariableName[]) {
    const def = variables[name];
    const raw = env[name] === undefined || env[name] === '' ? def.default : env[name];
    if (raw === undefined) {
      problems.push({ variable: name, expected: def.doc, got: 'nothing' });
      continue;
    }
    const result = def.schema.safeParse(raw);
    if (result.success) out[name] = result.data;
    else problems.push({ variable: name, expected: result.error.issues.map((i) => i.message).join('; '), got: JSON.stringify(raw) });
  }
  for (const name of ['SOCKET_DIR', 'DATA_DIR', 'MAILER_OUTBOX', 'CLOCK_SCHEDULES'] as const) {
    if (typeof out[name] === 'string') out[name] = resolveProjectPath(out[name]);
  }
  checkDirectories(out, problems);
  if (problems.length > 0) {
    const lines = problems.map((p) => `  ${p.variable}: expected ${p.expected}; got ${p.got}`);
    throw new AppError('ERR_CONFIG_INVALID', `invalid configuration:\n${lines.join('\n')}`, { data: problems });
  }
  return deepFreeze(out) as Config;
}

/** For `main.ts`: load the config, or print every problem to stderr and exit with status 78 (EX_CONFIG). */
export function loadConfigOrExit(options?: LoadOptions): Config {
  try {
    return loadConfig(options);
  } catch (err) {
    if (!(err instanceof AppError) || err.code !== 'ERR_CONFIG_INVALID') throw err;
    process.stderr.write(`${err.message}\n`);
    process.exit(78);
  }
}

function checkDirectories(out: Record<string, unknown>, problems: ConfigProblem[]): void {
  for (const variable of ['SOCKET_DIR', 'DATA_DIR'] as const) {
    const dir = out[variable];
    if (typeof dir !== 'string') continue;
    if (variable === 'SOCKET_DIR' && Buffer.byteLength(dir) > MAX_SOCKET_DIR) {
      problems.push({
        variable,
        expected: `a path of at most ${MAX_SOCKET_DIR} bytes (Unix socket paths are limited to 107)`,
        got: `${Buffer.byteLength(dir)} bytes (${dir})`,
      });
      continue;
    }
    const problem = checkPrivateDir(dir);
    if (problem) problems.push({ variable, ...problem });
  }
}

function readDotenv(path: string | false | undefined): Record<string, string> {
  if (path === false) return {};
  const file = path ?? join(projectRoot, '.env');
  return existsSync(file) ? parseDotenv(readFileSync(file)) : {};
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
