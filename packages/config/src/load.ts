import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

import { parse as parseDotenv } from 'dotenv';

import { checkVariables, configError, type ConfigProblem } from './check-variables';
import { AppError } from './errors';
import { projectRoot, resolveProjectPath } from './paths';
import { isSecretName } from './redact';
import { checkPrivateDir } from './secure-dir';
import { type Config, type Section, sections, type VariableDef } from './variables';

export type { ConfigProblem } from './check-variables';

// Unix socket paths are limited to 107 bytes; leave room for "/app." and an app name.
const MAX_APP_NAME = 32;
const MAX_SOCKET_DIR = 107 - '/app.'.length - MAX_APP_NAME;

export interface LoadOptions<S extends Section = Section> {
  /**
   * The sections this process reads besides `shared` and `bus` (its own: `['mailer']`); only
   * those are validated and returned. Default: every section (tools such as the status screen).
   */
  sections?: readonly S[];
  /** The app name: `<root>/.env.<app>` then applies over `<root>/.env` (per-app values, e.g. a bot's). */
  app?: string;
  /** Variables to read; defaults to `process.env`. */
  env?: Record<string, string | undefined>;
  /** A dotenv file whose values apply where `env` has none; defaults to `<root>/.env` (and `.env.<app>`). */
  dotenvPath?: string | false;
  /** Told about problems that do not stop the app (a readable .env holding a secret). Default: stderr. */
  onWarning?: (message: string) => void;
}

/**
 * Read `.env` and the environment once, validate the variables of `shared`, `bus` and the asked
 * sections, report all problems together (as an AppError with code ERR_CONFIG_INVALID and
 * `data: ConfigProblem[]`, secret values never shown), and return a frozen object. Also creates
 * SOCKET_DIR and DATA_DIR (0700), refusing a socket directory others can write to and a data
 * directory others can read.
 */
export function loadConfig<S extends Section = Section>(options: LoadOptions<S> = {}): Config<S> {
  const env = readEnvironment(options);
  const problems: ConfigProblem[] = [];
  const out: Record<string, unknown> = {};
  const wanted = ['shared', 'bus', ...(options.sections ?? Object.keys(sections).filter((k) => k !== 'shared' && k !== 'bus'))];
  for (const section of wanted) {
    const defs = sections[section as keyof typeof sections] as Record<string, VariableDef>;
    const found = checkVariables(defs, env);
    Object.assign(out, found.values);
    problems.push(...found.problems, ...found.missing.map((name) => ({ variable: name, expected: defs[name]?.doc ?? '', got: 'nothing' })));
  }
  for (const name of ['SOCKET_DIR', 'DATA_DIR', 'MAILER_OUTBOX', 'CLOCK_SCHEDULES'] as const) {
    if (typeof out[name] === 'string') out[name] = resolveProjectPath(out[name]);
  }
  checkDirectories(out, problems);
  if (problems.length > 0) throw configError(problems);
  return deepFreeze(out) as Config<S>;
}

/** For `main.ts`: load the config, or print every problem to stderr and exit with status 78 (EX_CONFIG). */
export function loadConfigOrExit<S extends Section = Section>(options?: LoadOptions<S>): Config<S> {
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
    // The data directory holds messages, keys' owners' state and idempotency keys: private.
    const problem = checkPrivateDir(dir, { readable: variable !== 'DATA_DIR' });
    if (problem) problems.push({ variable, ...problem });
  }
}

/**
 * The environment an app reads: `<root>/.env`, then `<root>/.env.<app>` over it (or `dotenvPath`),
 * then `env` (default `process.env`) over both. Warns when a file holding a secret is readable by
 * others. The bot SDK reads a bot's own variables from the same place.
 */
export function readEnvironment(
  options: Pick<LoadOptions<Section>, 'app' | 'env' | 'dotenvPath' | 'onWarning'> = {},
  warn: (message: string) => void = options.onWarning ?? warnOnStderr,
): Record<string, string | undefined> {
  return { ...readDotenv(options, warn), ...(options.env ?? process.env) };
}

const warnOnStderr = (message: string): void => void process.stderr.write(`warning: ${message}\n`);

function readDotenv(options: Pick<LoadOptions<Section>, 'app' | 'dotenvPath'>, warn: (message: string) => void): Record<string, string> {
  if (options.dotenvPath === false) return {};
  const files = options.dotenvPath
    ? [options.dotenvPath]
    : [join(projectRoot, '.env'), ...(options.app ? [join(projectRoot, `.env.${options.app}`)] : [])];
  const values: Record<string, string> = {};
  for (const file of files) {
    let text: Buffer;
    try {
      text = readFileSync(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    const parsed = parseDotenv(text);
    const secrets = Object.keys(parsed).filter((k) => isSecretName(k) && parsed[k] !== '');
    const mode = statSync(file).mode & 0o777;
    if (secrets.length > 0 && (mode & 0o077) !== 0) {
      warn(`${file} holds ${secrets.join(', ')} but is readable by others (mode ${mode.toString(8)}); run: chmod 600 ${file}`);
    }
    Object.assign(values, parsed);
  }
  return values;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
