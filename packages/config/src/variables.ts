import { z } from 'zod';

/** One environment variable: what it is for, its default, and the schema that parses it. */
export interface VariableDef<T = unknown> {
  /** One line for the README's config table. */
  readonly doc: string;
  /** The default, as it would be written in `.env`; undefined = required. */
  readonly default: string | undefined;
  readonly schema: z.ZodType<T, string>;
}

function variable<T>(doc: string, defaultValue: string | undefined, schema: z.ZodType<T, string>): VariableDef<T> {
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

const startBlock = z.union(
  [
    z.literal('head'),
    z.literal('irreversible'),
    z.string().regex(/^\d+$/).transform(Number).pipe(z.number().int().min(1).max(Number.MAX_SAFE_INTEGER)),
  ],
  { error: '"head", "irreversible" or a block number >= 1' },
);

/**
 * Every variable the apps read. Relative paths are resolved against the repository root, so an
 * app finds the same files whatever its working directory.
 */
export const variables = {
  SOCKET_DIR: variable(
    "Directory holding every app's Unix socket. Created 0700; an app refuses to start if it is group- or world-writable or owned by another user.",
    'var/run',
    z.string().min(1),
  ),
  DATA_DIR: variable("Directory of the apps' SQLite files and checkpoints.", 'var/data', z.string().min(1)),
  LOG_LEVEL: variable(
    'Lowest level logged: trace, debug, info, warn, error, fatal or silent.',
    'info',
    z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']),
  ),
  LOG_FORMAT: variable('`pretty` (one readable line per event, for `pm2 logs`) or `json`.', 'pretty', z.enum(['pretty', 'json'])),
  STEEM_NODES: variable(
    'Comma-separated Steem JSON-RPC node URLs, tried in order with failover.',
    'https://api.steemit.com,https://api.justyy.com,https://steemd.steemworld.org,https://api.steem.fans',
    urlList,
  ),
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
    'A node whose head is more than this many blocks behind the best one is left as stale.',
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
  BUS_MAX_MESSAGE_BYTES: variable('Largest bus frame accepted or sent, in bytes.', '1048576', positiveInt),
  BUS_SUBSCRIBER_BUFFER_BYTES: variable(
    'Unsent bytes a subscriber may fall behind before it is cut off (it then resumes from its position).',
    '4194304',
    positiveInt,
  ),
  BUS_REPLAY_BYTES: variable(
    'Size of the replay window a publishing app keeps for subscribers that reconnect, in bytes of encoded events.',
    '16777216',
    positiveInt,
  ),
  BUS_TASK_TIMEOUT_MS: variable(
    'How long a task or call waits for its acknowledgement or reply before it is retried or fails.',
    '5000',
    positiveInt,
  ),
} as const satisfies Record<string, VariableDef>;

export type VariableName = keyof typeof variables;

/** The parsed, frozen configuration: one property per variable, already converted. */
export type Config = { readonly [K in VariableName]: z.output<(typeof variables)[K]['schema']> };
