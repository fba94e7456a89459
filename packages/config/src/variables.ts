import { z } from 'zod';

/** One environment variable: what it is for, its default, and the schema that parses it. */
export interface VariableDef<T = unknown> {
  /** One line for the README's config table. */
  readonly doc: string;
  /** The default, as it would be written in `.env`; undefined = required. */
  readonly default: string | undefined;
  readonly schema: z.ZodType<T, string>;
}

/** Declare one variable (also how a bot package declares its own; see `checkVariables`). */
export function variable<T>(doc: string, defaultValue: string | undefined, schema: z.ZodType<T, string>): VariableDef<T> {
  return { doc, default: defaultValue, schema };
}

const positiveInt = z
  .string()
  .regex(/^\d+$/, 'a whole number')
  .transform(Number)
  .pipe(z.number().int().positive().max(Number.MAX_SAFE_INTEGER));

const httpUrl = z.url({ protocol: /^https?$/, error: 'an http(s) URL' });

const urlList = z
  .string()
  .transform((s) =>
    s
      .split(',')
      .map((u) => u.trim())
      .filter((u) => u.length > 0),
  )
  .pipe(z.array(httpUrl).min(1, 'at least one URL'));

const flag = z.enum(['0', '1'], { error: '0 or 1' }).transform((v) => v === '1');

const optionalText = z.string();

const list = z.string().transform((s) =>
  s
    .split(',')
    .map((v) => v.trim())
    .filter((v) => v.length > 0),
);

const port = z.string().regex(/^\d+$/, 'a port number').transform(Number).pipe(z.number().int().min(0).max(65535));

const amqpUrlList = z
  .string()
  .transform((s) =>
    s
      .split(',')
      .map((u) => u.trim())
      .filter((u) => u.length > 0),
  )
  .pipe(z.array(z.url({ protocol: /^amqps?$/, error: 'an amqp(s) URL' })).min(1, 'at least one URL'));

const startBlock = z.union(
  [
    z.literal('head'),
    z.literal('irreversible'),
    z.string().regex(/^\d+$/).transform(Number).pipe(z.number().int().min(1).max(Number.MAX_SAFE_INTEGER)),
  ],
  { error: '"head", "irreversible" or a block number >= 1' },
);

/** The schemas the project's variables use, for variables declared outside this package (a bot's own). */
export const variableSchemas = { positiveInt, httpUrl, urlList, flag, optionalText, list, port } as const;

/** Variables every app reads (sockets, files, logs). */
const shared = {
  SOCKET_DIR: variable(
    "Directory holding every app's Unix socket. Created 0700; an app refuses to start if it is group- or world-writable or owned by another user.",
    'var/run',
    z.string().min(1),
  ),
  DATA_DIR: variable(
    "Directory of the apps' SQLite files and checkpoints. Created 0700; an app refuses to start if others can read it.",
    'var/data',
    z.string().min(1),
  ),
  LOG_LEVEL: variable(
    'Lowest level logged: trace, debug, info, warn, error, fatal or silent.',
    'info',
    z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']),
  ),
  LOG_FORMAT: variable('`pretty` (one readable line per event, for `pm2 logs`) or `json`.', 'pretty', z.enum(['pretty', 'json'])),
} as const satisfies Record<string, VariableDef>;

/** The Steem nodes: read by the apps that talk to the chain (broadcaster, bots). */
const chain = {
  STEEM_NODES: variable(
    'Comma-separated Steem JSON-RPC node URLs, tried in order with failover.',
    'https://api.steemit.com,https://api.justyy.com,https://steemd.steemworld.org,https://api.steem.fans',
    urlList,
  ),
} as const satisfies Record<string, VariableDef>;

/** The broadcaster's variables. */
const broadcaster = {
  STEEM_START_BLOCK: variable(
    'Where the broadcaster starts when it has no checkpoint: a block number, `head` or `irreversible`.',
    'irreversible',
    startBlock,
  ),
  STEEM_MODE: variable(
    '`irreversible` follows the last irreversible block (no forks); `head` follows the head and reports reverted blocks.',
    'irreversible',
    z.enum(['irreversible', 'head']),
  ),
  BROADCASTER_RPC_TIMEOUT_MS: variable('Per-call timeout of a JSON-RPC request to a Steem node.', '5000', positiveInt),
  BROADCASTER_POLL_MS: variable(
    'How often every node is asked for its head (stale detection, and the wait when caught up).',
    '3000',
    positiveInt,
  ),
  BROADCASTER_STALE_BLOCKS: variable(
    'A node more than this many blocks behind the agreed head is stale; ahead of it, suspect.',
    '30',
    positiveInt,
  ),
  BROADCASTER_STALE_MS: variable(
    "A node whose head has not moved for this long while another's has is left as stale.",
    '60000',
    positiveInt,
  ),
  BROADCASTER_BATCH: variable('Blocks per JSON-RPC batch while catching up (public nodes allow up to 50).', '50', positiveInt),
  BROADCASTER_AHEAD_BLOCKS: variable(
    'Blocks fetched ahead of the one being published while catching up (bounds memory).',
    '500',
    positiveInt,
  ),
  BROADCASTER_BACKFILLS: variable(
    "Backfills (refetches for subscribers resuming from before the bus's replay window) the broadcaster runs at once; others wait.",
    '2',
    positiveInt,
  ),
  BROADCASTER_MAX_REPLY_BYTES: variable(
    "Largest JSON-RPC answer accepted from a Steem node, in bytes; a larger one is that node's failure (a 50-block batch is a few MB).",
    '33554432',
    positiveInt,
  ),
} as const satisfies Record<string, VariableDef>;

/** The bus: read by every app, since every app is on the bus. */
const bus = {
  BUS_MAX_MESSAGE_BYTES: variable('Largest bus frame accepted or sent, in bytes.', '1048576', positiveInt),
  BUS_RETENTION_HOURS: variable(
    "How long each app's event stream keeps events for subscribers that fall behind or resume (older ones are pruned).",
    '168',
    positiveInt,
  ),
  BUS_RETENTION_BYTES: variable(
    "Most bytes of events each app's event stream keeps; the oldest are pruned past it (a week of Steem ops is ~7.5 GB).",
    '8589934592',
    positiveInt,
  ),
  BUS_TASK_TIMEOUT_MS: variable(
    'How long a task or call waits for its acknowledgement or reply before it is retried or fails.',
    '5000',
    positiveInt,
  ),
  BUS_TRANSPORT: variable(
    '`ipc` (the embedded default: a SQLite stream per app served over Unix sockets) or `rabbitmq` (stream, quorum queues and direct reply-to on the brokers of BUS_AMQP_URLS).',
    'ipc',
    z.enum(['ipc', 'rabbitmq']),
  ),
  BUS_AMQP_URLS: variable(
    'With BUS_TRANSPORT=rabbitmq: comma-separated broker URLs (every node of the cluster), tried in order; a dropped connection moves to the next.',
    'amqp://guest:guest@127.0.0.1:5672',
    amqpUrlList,
  ),
} as const satisfies Record<string, VariableDef>;

/** Read by every bot (the bot SDK). A bot's own variables are declared by its package. */
const bot = {
  BOT_RETRY_ATTEMPTS: variable('Tries of a failing bot handler before its op is dead-lettered.', '5', positiveInt),
  BOT_RETRY_BASE_MS: variable(
    'First retry delay of a failing bot handler; it doubles up to BOT_RETRY_MAX_MS, with jitter.',
    '1000',
    positiveInt,
  ),
  BOT_RETRY_MAX_MS: variable('Longest delay between two tries of a failing bot handler.', '60000', positiveInt),
  BOT_HANDLER_TIMEOUT_MS: variable(
    "Longest try of a bot handler; past it the try fails (and is retried) and the handler's `ctx.signal` is aborted.",
    '300000',
    positiveInt,
  ),
} as const satisfies Record<string, VariableDef>;

/** The mailer (mailer-api and mailer-worker). */
const mailer = {
  MAILER_HOST: variable('Address the mailer API listens on; loopback unless you mean to expose it.', '127.0.0.1', z.string().min(1)),
  MAILER_PORT: variable('Port of the mailer REST API.', '8025', port),
  MAILER_FROM: variable(
    'Sender of messages that give no `from`.',
    'steem-bot@localhost.localdomain',
    z.email({ error: 'an email address' }),
  ),
  SMTP_URL: variable(
    'SMTP server (`smtp://user:pass@host:587`, `smtps://...`). Empty: messages are written as .eml files to MAILER_OUTBOX.',
    '',
    z.union([z.literal(''), z.url({ protocol: /^smtps?$/, error: 'an smtp:// or smtps:// URL' })]),
  ),
  MAILER_OUTBOX: variable(
    'Directory of the .eml files written when SMTP_URL is empty. Created 0700; the worker refuses one that group or others can read.',
    'var/outbox',
    z.string().min(1),
  ),
  MAILER_MAX_ATTEMPTS: variable('Delivery tries of a message before it is dead.', '8', positiveInt),
  MAILER_RETRY_BASE_MS: variable(
    'First delay after a temporary delivery failure; it doubles up to MAILER_RETRY_MAX_MS.',
    '60000',
    positiveInt,
  ),
  MAILER_RETRY_MAX_MS: variable('Longest delay between two delivery tries.', '21600000', positiveInt),
  MAILER_LEASE_MS: variable(
    "How long a worker owns a message it is sending (renewed while the send is in flight); a crashed worker's messages are retried after it.",
    '120000',
    positiveInt,
  ),
  MAILER_SMTP_TIMEOUT_MS: variable('Connection, greeting and socket timeout of an SMTP delivery.', '30000', positiveInt),
  MAILER_KEEP_DAYS: variable(
    'Days a finished (sent, dead, skipped, cancelled) message is kept; pending ones are never purged.',
    '30',
    positiveInt,
  ),
  MAILER_KEY_KEEP_DAYS: variable(
    'Days an Idempotency-Key (and a bus task key) is remembered, so a replayed request or op never sends twice; at least MAILER_KEEP_DAYS.',
    '400',
    positiveInt,
  ),
  MAILER_CHECK_TIMEOUT_MS: variable(
    "One deadline for the whole call to a message's check_url (DNS, connect, headers and body); past it the check is a failed attempt.",
    '5000',
    positiveInt,
  ),
  MAILER_CHECK_MAX_BYTES: variable('Largest answer read from a check_url; a longer one is a failed attempt.', '65536', positiveInt),
  MAILER_CHECK_ALLOW: variable(
    'Comma-separated hosts or IPs a check_url may reach although private, loopback or link-local (e.g. `127.0.0.1`).',
    '',
    list,
  ),
  MAILER_RATE_LIMIT: variable('Requests per minute a REST client may make (429 with Retry-After beyond).', '600', positiveInt),
  MAILER_BODY_LIMIT_BYTES: variable('Largest REST request body (413 beyond).', '2097152', positiveInt),
  MAILER_MAX_PENDING: variable(
    'Messages one REST client may have not yet sent (scheduled, sending or retrying); 429 beyond. Bounds what one client can store.',
    '1000',
    positiveInt,
  ),
  MAILER_MAX_MESSAGE_BYTES: variable(
    'Largest message, counted as its JSON request (addresses, subject, text, html, headers, metadata); 413 beyond (also for the bus task).',
    '1048576',
    positiveInt,
  ),
  MAILER_MAX_RECIPIENTS: variable(
    'Most recipients of one message, to, cc and bcc together; 413 beyond (also for the bus task).',
    '50',
    positiveInt,
  ),
} as const satisfies Record<string, VariableDef>;

/** The webhooks app. */
const webhooks = {
  WEBHOOKS_HOST: variable('Address the webhooks API listens on; loopback unless you mean to expose it.', '127.0.0.1', z.string().min(1)),
  WEBHOOKS_PORT: variable('Port of the webhooks REST API.', '8032', port),
  WEBHOOKS_ALLOW: variable(
    'Comma-separated hosts or IPs an endpoint URL may reach although private, loopback or link-local (e.g. `127.0.0.1`).',
    '',
    list,
  ),
  WEBHOOKS_TIMEOUT_MS: variable('Total time of one delivery (DNS, connect, response and its body).', '15000', positiveInt),
  WEBHOOKS_RETRY_SCHEDULE_MS: variable(
    'Delays between the tries of one delivery (each with up to 10% jitter); after the last failure the endpoint is disabled.',
    '5000,300000,1800000,7200000,18000000,36000000,36000000',
    z
      .string()
      .transform((s) => s.split(',').map((v) => v.trim()))
      .pipe(z.array(z.string().regex(/^\d+$/, 'whole numbers of ms').transform(Number)).min(1)),
  ),
  WEBHOOKS_RETRY_AFTER_MAX_MS: variable('Longest Retry-After (429/503) a delivery honours.', '3600000', positiveInt),
  WEBHOOKS_DISABLE_AFTER_HOURS: variable('An endpoint failing continuously for this long is disabled.', '120', positiveInt),
  WEBHOOKS_RATE_LIMIT: variable('Requests per minute a REST client may make (429 with Retry-After beyond).', '600', positiveInt),
  WEBHOOKS_MAX_ENDPOINTS: variable('Endpoints one client may register.', '50', positiveInt),
  WEBHOOKS_EVENTS_PER_MINUTE: variable('Events one client may post per minute (429 beyond).', '600', positiveInt),
  WEBHOOKS_BODY_LIMIT_BYTES: variable('Largest REST request body (413 beyond).', '262144', positiveInt),
} as const satisfies Record<string, VariableDef>;

/** Where apps keep their state: read by the apps whose stores have a PostgreSQL implementation (the clock, the mailer, webhooks, the signer, the bots, the broadcaster's lock). */
const store = {
  STORE: variable(
    '`sqlite` (one file per app under DATA_DIR) or `postgres` (DATABASE_URL; apps on several machines). Read by the clock, the mailer (mailer-api, mailer-worker), the webhooks app, the signer and the bots (their stores and single-active-instance locks), the broadcaster (its lock) and the console (read-only).',
    'sqlite',
    z.enum(['sqlite', 'postgres'], { error: 'sqlite or postgres' }),
  ),
  DATABASE_URL: variable(
    'PostgreSQL URL (`postgres://user:pass@host:5432/db`) when STORE=postgres. Its password is never logged.',
    '',
    z.union([z.literal(''), z.url({ protocol: /^postgres(ql)?$/, error: 'a postgres:// URL' })]),
  ),
  DATABASE_SCHEMA: variable(
    'PostgreSQL schema of the tables (created if missing by the apps that write; the console only reads).',
    'steembot',
    z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'a lower-case SQL name'),
  ),
} as const satisfies Record<string, VariableDef>;

/** The signer: the only app that holds keys and acts on chain. */
const signer = {
  SIGNER_LIVE: variable(
    '`1` broadcasts signed transactions; otherwise (dry run) the signer logs the exact transaction it would broadcast and reports the action `dry-run`.',
    '0',
    flag,
  ),
  SIGNER_KEYS_FILE: variable(
    'JSON file `{"<account>": {"posting": "5...", "active": "5..."}}` of the keys the signer may use; refused unless mode 0600 and owned by the user. Never logged.',
    'signer.keys.json',
    z.string().min(1),
  ),
  SIGNER_ACCOUNT: variable(
    'Instead of SIGNER_KEYS_FILE: the one account whose keys are SIGNER_POSTING_KEY / SIGNER_ACTIVE_KEY.',
    '',
    z.union([z.literal(''), z.string().regex(/^[a-z][a-z0-9.-]{2,15}$/, 'a Steem account name')]),
  ),
  SIGNER_POSTING_KEY: variable(
    'Posting key (WIF) of SIGNER_ACCOUNT. Only in `.env` (chmod 600) or the environment, never in pm2.json. Never logged.',
    '',
    optionalText,
  ),
  SIGNER_ACTIVE_KEY: variable('Active key (WIF) of SIGNER_ACCOUNT; like SIGNER_POSTING_KEY. Never logged.', '', optionalText),
  SIGNER_EXPIRATION_S: variable(
    'Lifetime of a signed transaction in chain time (the chain allows 3600 s); the same transaction is rebroadcast until it is in a block or this has passed.',
    '600',
    positiveInt.pipe(z.number().max(3600, 'at most 3600 (the chain refuses more)')),
  ),
  SIGNER_MAX_SIGNS: variable(
    'Transactions signed for one action at most: after an expiry without inclusion it is signed again, up to this many times, then failed.',
    '3',
    positiveInt,
  ),
  SIGNER_POLL_MS: variable(
    'How often transactions not yet confirmed are looked up on the node (find_transaction), and rebroadcast when the node does not hold them.',
    '3000',
    positiveInt,
  ),
  SIGNER_RPC_TIMEOUT_MS: variable('Per-call timeout of a JSON-RPC request (broadcasts included) to a Steem node.', '5000', positiveInt),
  SIGNER_MIN_RC: variable(
    'Resource credits an account must have (rc_api.find_rc_accounts) before the signer broadcasts for it; below, the action waits in state `waiting-rc`.',
    '1000000000',
    positiveInt,
  ),
  SIGNER_RC_WAIT_MS: variable('How long an action waiting for resource credits waits before the next check.', '60000', positiveInt),
} as const satisfies Record<string, VariableDef>;

/** The clock. */
const clock = {
  CLOCK_SCHEDULES: variable("The clock's schedule file.", 'clock.schedules.json', z.string().min(1)),
  CLOCK_KEEP_DAYS: variable('Days the clock keeps its record of ticks.', '14', positiveInt),
  CLOCK_CLAIM_STALE_MS: variable(
    'A claimed tick whose owner has shown no sign of life for this long is taken over by another clock.',
    '15000',
    positiveInt,
  ),
} as const satisfies Record<string, VariableDef>;

/** The console: the operator's web page and /metrics. */
const consoleSection = {
  CONSOLE_HOST: variable(
    'Address the console listens on; loopback unless you mean to expose it (then CONSOLE_TOKEN is required).',
    '127.0.0.1',
    z.string().min(1),
  ),
  CONSOLE_PORT: variable('Port of the console page and /metrics.', '8031', port),
  CONSOLE_TOKEN: variable(
    'Token the console asks for before any action (replay, discard, retry, cancel); empty refuses every action. At least 16 characters. Never logged.',
    '',
    z.union([z.literal(''), z.string().min(16, 'at least 16 characters')]),
  ),
  CONSOLE_REFRESH_MS: variable('How often the console collects the status and pushes it to open pages.', '2000', positiveInt),
} as const satisfies Record<string, VariableDef>;

/**
 * Every variable, grouped by the app that reads it. `shared` and `bus` are read by every app; a
 * process validates those and its own section only, so a bad MAILER_FROM does not stop the
 * broadcaster. Relative paths are resolved against the repository root, so an app finds the same
 * files whatever its working directory.
 */
export const sections = { shared, bus, chain, store, broadcaster, bot, mailer, clock, signer, webhooks, console: consoleSection } as const;

/** A section an app may ask for; `shared` and `bus` always come with it. */
export type Section = Exclude<keyof typeof sections, 'shared' | 'bus'>;

/** The whole table (README, status screen, tests). */
export const variables = {
  ...shared,
  ...bus,
  ...chain,
  ...store,
  ...broadcaster,
  ...bot,
  ...mailer,
  ...clock,
  ...signer,
  ...webhooks,
  ...consoleSection,
} as const;

export type VariableName = keyof typeof variables;

type SectionName<S extends keyof typeof sections> = S extends keyof typeof sections ? keyof (typeof sections)[S] : never;

/**
 * The parsed, frozen configuration of an app that reads sections `S` (plus `shared` and `bus`):
 * one property per variable, already converted. `Config` alone is every section.
 */
export type Config<S extends Section = Section> = {
  readonly [K in SectionName<S | 'shared' | 'bus'>]: z.output<(typeof variables)[K]['schema']>;
};
