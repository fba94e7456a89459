import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { parse as parseDotenv } from 'dotenv';

import { AppError } from './errors';
import type { ConfigProblem, LoadOptions } from './load';
import { projectRoot } from './paths';
import type { VariableDef } from './variables';

/** Variables declared outside this package (a bot's own), in the `variable(doc, default, schema)` shape. */
export type VariableDefs = Record<string, VariableDef>;

/** The parsed values of `V`: one property per variable, already converted. */
export type VariableValues<V extends VariableDefs> = {
  readonly [K in keyof V]: V[K] extends VariableDef<infer T> ? T : never;
};

/** What `checkVariables` found: the values it could parse, the invalid ones, the unset required ones. */
export interface VariableCheck<V extends VariableDefs> {
  /** Complete only when `problems` and `missing` are both empty. */
  values: VariableValues<V>;
  /** Values that are set but invalid, in `loadConfig`'s shape. */
  problems: ConfigProblem[];
  /** Required variables (no default) that are unset or empty. */
  missing: Array<keyof V & string>;
}

/**
 * The environment an app reads: `<root>/.env` (or `dotenvPath`) under `env` (default
 * `process.env`), as `loadConfig` reads it.
 */
export function readEnvironment(options: LoadOptions = {}): Record<string, string | undefined> {
  const file = options.dotenvPath === false ? undefined : (options.dotenvPath ?? join(projectRoot, '.env'));
  const dotenv = file !== undefined && existsSync(file) ? parseDotenv(readFileSync(file)) : {};
  return { ...dotenv, ...(options.env ?? process.env) };
}

/**
 * Validate variables declared outside the config package against `env`, with the same rules as
 * `loadConfig` (empty = unset = the default), but report unset required ones apart, so that the
 * caller decides what a missing one means (a bot idles; see the bot SDK).
 */
export function checkVariables<V extends VariableDefs>(defs: V, env: Record<string, string | undefined>): VariableCheck<V> {
  const values: Record<string, unknown> = {};
  const problems: ConfigProblem[] = [];
  const missing: Array<keyof V & string> = [];
  for (const [name, def] of Object.entries(defs) as Array<[keyof V & string, VariableDef]>) {
    const raw = env[name] === undefined || env[name] === '' ? def.default : env[name];
    if (raw === undefined) {
      missing.push(name);
      continue;
    }
    const result = def.schema.safeParse(raw);
    if (result.success) values[name] = result.data;
    else problems.push({ variable: name, expected: result.error.issues.map((i) => i.message).join('; '), got: JSON.stringify(raw) });
  }
  return { values: Object.freeze(values) as VariableValues<V>, problems, missing };
}

/** The ERR_CONFIG_INVALID error `loadConfig` throws, for problems found elsewhere (same message, `data`). */
export function configError(problems: ConfigProblem[]): AppError {
  const lines = problems.map((p) => `  ${p.variable}: expected ${p.expected}; got ${p.got}`);
  return new AppError('ERR_CONFIG_INVALID', `invalid configuration:\n${lines.join('\n')}`, { data: problems });
}
