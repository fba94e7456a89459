import { maskUrlCredentials, redactSecrets } from './redact';

/**
 * Every stable error code the project raises, with its HTTP status (what a REST API answers with
 * it; 500 for codes that never reach a client), whether a caller may retry and what it means.
 * The README's "Error codes" table is checked against this map by a test.
 */
export const errorCodes = {
  ERR_CONFIG_INVALID: {
    http: 500,
    retryable: false,
    doc: 'The environment or .env has invalid values, or SOCKET_DIR/DATA_DIR is unsafe (every problem is listed in `data`).',
  },
  ERR_BUS_UNKNOWN_NAME: {
    http: 400,
    retryable: false,
    doc: "An event or task name is not in the catalogue (for a task sent by name, the receiving app's), or is not a name at all.",
  },
  ERR_BUS_INVALID_PAYLOAD: {
    http: 400,
    retryable: false,
    doc: "A payload does not match its catalogue schema (for a task sent by name, the receiving app's), or carries a forbidden key.",
  },
  ERR_BUS_WRONG_APP: { http: 400, retryable: false, doc: 'A task reached an app its first segment does not name.' },
  ERR_BUS_NO_HANDLER: { http: 503, retryable: true, doc: 'The app is up but has no handler for the task (yet).' },
  ERR_BUS_HANDLER_FAILED: { http: 500, retryable: true, doc: 'The task handler threw; the task was not accepted.' },
  ERR_BUS_TIMEOUT: { http: 504, retryable: true, doc: 'No acknowledgement or reply arrived within the timeout.' },
  ERR_BUS_CLOSED: { http: 503, retryable: false, doc: 'The bus was closed while the operation was pending.' },
  ERR_BUS_POSITION: {
    http: 500,
    retryable: false,
    doc: 'An event position is not a safe integer above the last published one.',
  },
  ERR_BUS_FRAME_TOO_LARGE: { http: 413, retryable: false, doc: 'An outgoing message exceeds BUS_MAX_MESSAGE_BYTES.' },
  ERR_BUS_UNKNOWN_APP: { http: 404, retryable: false, doc: 'RabbitMQ transport: no queue for the app a task names (it never served).' },
  ERR_BUS_UNAVAILABLE: {
    http: 503,
    retryable: true,
    doc: 'RabbitMQ transport: no broker reachable, or it refused or lost a message before confirming it.',
  },
  ERR_BOT_KEY_MISSING: {
    http: 500,
    retryable: false,
    doc: 'A bot declares an account the signer holds no key (of the needed role) for; checked with the signer at start-up (exit 78).',
  },
  ERR_BOT_CHAIN_INPUT: {
    http: 400,
    retryable: false,
    doc: 'A chain action got an invalid argument (an account the bot did not declare, an unknown action id).',
  },
  ERR_BOT_ACTION_FAILED: {
    http: 500,
    retryable: false,
    doc: '`ctx.chain.confirmed(id)`: the signer reported `transaction.failed` for the action; `data` has its reason and whether a new action may succeed.',
  },
  ERR_BOT_HANDLER_TIMEOUT: {
    http: 500,
    retryable: true,
    doc: 'A bot handler try outlived BOT_HANDLER_TIMEOUT_MS: it counts as failed, its `ctx.signal` is aborted.',
  },
  ERR_BOT_INVALID: { http: 500, retryable: false, doc: 'A bot definition is invalid (name, handler or task names).' },
  ERR_BOT_STATE: {
    http: 400,
    retryable: false,
    doc: "A bot's state (`ctx.kv`) got a key that is not a string of 1 to 512 characters, or a value JSON cannot carry.",
  },
  ERR_BOT_STORE_UNAVAILABLE: {
    http: 503,
    retryable: true,
    doc: "A bot's PostgreSQL store is out of reach (refused, reset, ended): the op is retried at the longest delay, never dead-lettered.",
  },
  ERR_BOT_NOT_FOUND: {
    http: 404,
    retryable: false,
    doc: 'The bot has no dead letter with that id waiting for an operator (Replay, Discard).',
  },
  ERR_CONSOLE_UNAUTHORIZED: {
    http: 401,
    retryable: false,
    doc: 'A console action without the right CONSOLE_TOKEN (header `X-Console-Token`).',
  },
  ERR_CONSOLE_FORBIDDEN: {
    http: 403,
    retryable: false,
    doc: 'A console action refused: no CONSOLE_TOKEN is set, or the request came from another origin or host.',
  },
  ERR_MAILER_INVALID_REQUEST: {
    http: 400,
    retryable: false,
    doc: 'A mailer request (body, query, header, client name) is invalid; `fields` lists each problem.',
  },
  ERR_MAILER_UNAUTHORIZED: { http: 401, retryable: false, doc: 'No valid `Authorization: Bearer` token (missing, wrong or revoked).' },
  ERR_MAILER_NOT_FOUND: { http: 404, retryable: false, doc: 'No such message (or it belongs to another client), or no such route.' },
  ERR_MAILER_CONFLICT: {
    http: 409,
    retryable: false,
    doc: 'Idempotency key reused with another body, the message can no longer be cancelled, or the client name is taken (active, revoked or reserved).',
  },
  ERR_MAILER_TOO_LARGE: {
    http: 413,
    retryable: false,
    doc: 'A mailer request is over a size limit (MAILER_BODY_LIMIT_BYTES, MAILER_MAX_MESSAGE_BYTES, MAILER_MAX_RECIPIENTS).',
  },
  ERR_MAILER_UNSUPPORTED_MEDIA_TYPE: { http: 415, retryable: false, doc: 'A mailer request body that is not `application/json`.' },
  ERR_MAILER_TOO_MANY_PENDING: {
    http: 429,
    retryable: true,
    doc: 'A REST client has MAILER_MAX_PENDING messages not yet sent; retry once some are.',
  },
  ERR_MAILER_RATE_LIMITED: {
    http: 429,
    retryable: true,
    doc: 'More than MAILER_RATE_LIMIT requests a minute from one client; see `Retry-After`.',
  },
  ERR_MAILER_INTERNAL: { http: 500, retryable: true, doc: 'A bug in the mailer API; the details are in its log.' },
  ERR_CHECKPOINT_INVALID: {
    http: 500,
    retryable: false,
    doc: 'A checkpoint file exists but is empty or corrupt; the app exits 78 instead of guessing where to resume.',
  },
  ERR_CLOCK_SCHEDULES_INVALID: { http: 500, retryable: false, doc: 'The schedule file is missing or invalid (every problem is listed).' },
  ERR_SIGNER_INPUT: {
    http: 400,
    retryable: false,
    doc: 'A chain action breaks a rule the chain would refuse it for, or has no idempotency key; not recorded.',
  },
  ERR_SIGNER_NO_KEY: { http: 400, retryable: false, doc: 'The signer has no key (of the needed role) for the account of an action.' },
  ERR_SIGNER_CONFLICT: { http: 409, retryable: false, doc: 'An idempotency key was reused for another chain action.' },
  ERR_SIGNER_NOT_FOUND: {
    http: 404,
    retryable: false,
    doc: 'No chain action has this idempotency key (or, for `signer.action.retry`, this id).',
  },
  ERR_SIGNER_NOT_RETRYABLE: {
    http: 409,
    retryable: false,
    doc: '`signer.action.retry` of an action not failed, or failed for good; retryable if a transaction of it may still land.',
  },
} as const satisfies Record<string, { http: number; retryable: boolean; doc: string }>;

export type ErrorCode = keyof typeof errorCodes;

/** A plain-object form of an error, for logs and for crossing the bus. */
export interface SerializedError {
  name: string;
  code: string;
  message: string;
  retryable: boolean;
  data?: unknown;
}

/** Base error: a stable `code`, whether the operation may be retried, and structured `data`. */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly data: unknown;

  constructor(code: ErrorCode, message: string, options: { data?: unknown; retryable?: boolean; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options.retryable ?? errorCodes[code].retryable;
    this.data = options.data;
  }

  /** The wire form; secrets in the message or data are masked (see redactSecrets). */
  toJSON(): SerializedError {
    return redactSecrets({ name: this.name, code: this.code, message: this.message, retryable: this.retryable, data: this.data });
  }
}

/** Turn anything thrown into the wire form; unknown errors become ERR_BUS_HANDLER_FAILED. */
export function serializeError(err: unknown): SerializedError {
  if (err instanceof AppError) return err.toJSON();
  const message = err instanceof Error ? err.message : String(err);
  const retryable = (err as { retryable?: unknown } | null)?.retryable;
  return {
    name: err instanceof Error ? err.name : 'Error',
    code: 'ERR_BUS_HANDLER_FAILED',
    message: maskUrlCredentials(message),
    retryable: typeof retryable === 'boolean' ? retryable : true,
  };
}

/** Rebuild an error that crossed the bus; unknown codes keep their text under ERR_BUS_HANDLER_FAILED. */
export function deserializeError(wire: SerializedError): AppError {
  const code: ErrorCode = wire.code in errorCodes ? (wire.code as ErrorCode) : 'ERR_BUS_HANDLER_FAILED';
  const err = new AppError(code, wire.message, { data: wire.data, retryable: wire.retryable });
  return err;
}
