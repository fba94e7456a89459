/**
 * Keeping secrets out of log lines, error messages and the bus. A value is secret when its key
 * names one (`*KEY`, `*TOKEN`, `*SECRET`, `*PASSWORD`, `pass`, `authorization`, ...), at any
 * depth; a URL's user info (`smtp://user:pass@host`) is masked wherever it appears in a string.
 */

export const REDACTED = '[redacted]';

const SECRET_NAME = /(key|token|secret|password|passwd|passphrase|pass|pwd|wif|authorization|cookie|credentials?)$/i;

// Names that end like a secret but hold none: idempotency and routing keys must stay readable,
// since operators trace messages by them.
const NOT_SECRET = new Set(['key', 'idempotencykey', 'idempotency_key', 'routingkey', 'routing_key', 'sortkey', 'sort_key']);

/** Whether a property or variable named `name` holds a secret. */
export function isSecretName(name: string): boolean {
  return SECRET_NAME.test(name) && !NOT_SECRET.has(name.toLowerCase());
}

// scheme://user:password@ or scheme://token@ (anything between :// and @ without a slash).
const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@]+@/gi;

/** `smtp://user:pass@host` -> `smtp://***@host`, for every URL in the text. */
export function maskUrlCredentials(text: string): string {
  return text.includes('@') ? text.replace(URL_CREDENTIALS, '$1***@') : text;
}

const MAX_DEPTH = 10;

/**
 * A copy of `value` with every secret-named property replaced by `[redacted]` and URL
 * credentials masked in every string, at any depth (an error with something to hide becomes a
 * copy of the same class). Values with nothing to hide are returned as they are.
 */
export function redactSecrets<T>(value: T): T {
  return redact(value, 0, new WeakSet()) as T;
}

function redact(value: unknown, depth: number, seen: WeakSet<object>): unknown {
  if (typeof value === 'string') return maskUrlCredentials(value);
  if (value === null || typeof value !== 'object' || depth >= MAX_DEPTH || seen.has(value)) return value;
  seen.add(value);
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    value.forEach((item, i) => {
      const r = redact(item, depth + 1, seen);
      if (r !== item) (out ??= value.slice())[i] = r;
    });
    return out ?? value;
  }
  if (value instanceof Error) return redactError(value, depth, seen);
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value; // Buffers, Dates, class instances
  let out: Record<string, unknown> | undefined;
  for (const [k, v] of Object.entries(value)) {
    const r = isSecretName(k) && v !== undefined && v !== null && v !== '' ? REDACTED : redact(v, depth + 1, seen);
    if (r !== v) (out ??= { ...(value as Record<string, unknown>) })[k] = r;
  }
  return out ?? value;
}

function redactError(err: Error, depth: number, seen: WeakSet<object>): Error {
  const props: Record<string, unknown> = { ...Object.fromEntries(Object.entries(err)), message: err.message, stack: err.stack };
  if (err.cause !== undefined) props.cause = err.cause;
  const redacted = redact(props, depth, seen) as Record<string, unknown>;
  if (redacted === props) return err;
  const copy = Object.create(Object.getPrototypeOf(err) as object) as Error;
  for (const [k, v] of Object.entries(redacted))
    Object.defineProperty(copy, k, { value: v, enumerable: k !== 'stack' && k !== 'message', writable: true, configurable: true });
  return copy;
}
