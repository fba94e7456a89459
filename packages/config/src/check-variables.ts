import { AppError } from './errors';
import { isSecretName, maskUrlCredentials } from './redact';
import type { VariableDef } from './variables';

/** One violation: which variable, what was expected, what was found (never a secret). */
export interface ConfigProblem {
  variable: string;
  expected: string;
  got: string;
}

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
 * Validate variable definitions against `env` (empty = unset = the default): `loadConfig` does it
 * for the config's sections, the bot SDK for a bot's own variables. Unset required ones are
 * reported apart, so that the caller decides what a missing one means (a bot idles).
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
    else problems.push({ variable: name, expected: result.error.issues.map((i) => i.message).join('; '), got: shown(name, raw) });
  }
  return { values: Object.freeze(values) as VariableValues<V>, problems, missing };
}

/** A refused value as a problem shows it: never a secret, never a URL's password. */
function shown(name: string, raw: string): string {
  if (isSecretName(name)) return `a value of ${raw.length} characters (not shown)`;
  return JSON.stringify(maskUrlCredentials(raw));
}

/** The ERR_CONFIG_INVALID error `loadConfig` throws, for problems found elsewhere (same message, `data`). */
export function configError(problems: ConfigProblem[]): AppError {
  const lines = problems.map((p) => `  ${p.variable}: expected ${p.expected}; got ${p.got}`);
  return new AppError('ERR_CONFIG_INVALID', `invalid configuration:\n${lines.join('\n')}`, { data: problems });
}
