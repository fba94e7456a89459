import { AppError, type Logger } from '@steem-bot/config';

/** Which private key an action signs with. */
export type KeyRole = 'posting' | 'active';

export interface ChainOptions {
  /** Broadcast for real (BOT_LIVE=1); otherwise log what would be broadcast. */
  live: boolean;
  account: string;
  keys: Partial<Record<KeyRole, string>>;
  /** The keys the bot declared it needs: checked at start-up, not at the first vote. */
  needs: readonly KeyRole[];
  /** Least time between two broadcasts (BOT_CHAIN_INTERVAL_MS). */
  intervalMs: number;
  nodes: readonly string[];
  logger: Logger;
}

export interface VoteInput {
  author: string;
  permlink: string;
  /** -10000 .. 10000 (100.00 %). */
  weight: number;
}
export interface CommentInput {
  parent_author: string;
  parent_permlink: string;
  permlink: string;
  title?: string;
  body: string;
  json_metadata?: string;
}
export interface TransferInput {
  to: string;
  /** "1.000 STEEM" or "0.500 SBD". */
  amount: string;
  memo?: string;
}
export interface CustomJsonInput {
  id: string;
  json: string;
  /** Sign with the posting key (default) or the active key. */
  auth?: KeyRole;
}

type SteemJs = typeof import('steem').default;

/**
 * Chain actions of one bot, through steem-js. Keys come from the environment and never reach a
 * log line or a bus message. Dry run (the default) logs exactly the operation it would sign.
 * Broadcasts are spaced by `intervalMs` (the bot's rate limit).
 */
export class Chain {
  private queue: Promise<unknown> = Promise.resolve();
  private last = 0;

  private constructor(
    private readonly options: ChainOptions,
    private readonly steem: SteemJs | undefined,
  ) {}

  /**
   * Check the declared keys (present, valid WIF, and in live mode: an authority of the account on
   * chain) and return the actions, or throw an AppError that says which key is wrong.
   */
  static async create(options: ChainOptions): Promise<Chain> {
    if (options.needs.length === 0) return new Chain(options, undefined);
    if (!/^[a-z][a-z0-9.-]{2,15}$/.test(options.account)) {
      throw new AppError('ERR_BOT_KEY_MISSING', `STEEM_ACCOUNT must name the account the bot acts as (got "${options.account}")`);
    }
    // steem-js is large: only bots that act on the chain load it (a CommonJS module).
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const steem = require('steem') as SteemJs;
    for (const role of options.needs) {
      const variable = `STEEM_${role.toUpperCase()}_KEY`;
      const wif = options.keys[role];
      if (!wif) throw new AppError('ERR_BOT_KEY_MISSING', `${variable} is not set; this bot needs the ${role} key of @${options.account}`);
      if (!steem.auth.isWif(wif)) throw new AppError('ERR_BOT_KEY_INVALID', `${variable} is not a valid private key (WIF)`);
    }
    if (options.live) await checkAuthorities(steem, options);
    return new Chain(options, steem);
  }

  vote(input: VoteInput): Promise<void> {
    if (!Number.isInteger(input.weight) || Math.abs(input.weight) > 10_000) {
      return Promise.reject(new AppError('ERR_BOT_CHAIN_INPUT', `vote weight must be an integer in -10000..10000 (got ${input.weight})`));
    }
    const op = { voter: this.options.account, ...input };
    return this.broadcast('vote', 'posting', op, (s, wif) => s.broadcast.voteAsync(wif, op.voter, op.author, op.permlink, op.weight));
  }

  comment(input: CommentInput): Promise<void> {
    const op = { author: this.options.account, title: '', json_metadata: '{}', ...input };
    return this.broadcast('comment', 'posting', op, (s, wif) =>
      s.broadcast.commentAsync(wif, op.parent_author, op.parent_permlink, op.author, op.permlink, op.title, op.body, op.json_metadata),
    );
  }

  transfer(input: TransferInput): Promise<void> {
    if (!/^\d+\.\d{3} (STEEM|SBD)$/.test(input.amount)) {
      return Promise.reject(new AppError('ERR_BOT_CHAIN_INPUT', `transfer amount must look like "1.000 STEEM" (got "${input.amount}")`));
    }
    const op = { from: this.options.account, memo: '', ...input };
    return this.broadcast('transfer', 'active', op, (s, wif) => s.broadcast.transferAsync(wif, op.from, op.to, op.amount, op.memo));
  }

  customJson(input: CustomJsonInput): Promise<void> {
    const role = input.auth ?? 'posting';
    const op = {
      required_auths: role === 'active' ? [this.options.account] : [],
      required_posting_auths: role === 'posting' ? [this.options.account] : [],
      id: input.id,
      json: input.json,
    };
    return this.broadcast('custom_json', role, op, (s, wif) =>
      s.broadcast.customJsonAsync(wif, op.required_auths, op.required_posting_auths, op.id, op.json),
    );
  }

  private broadcast(
    name: string,
    role: KeyRole,
    op: Record<string, unknown>,
    send: (steem: SteemJs, wif: string) => Promise<unknown>,
  ): Promise<void> {
    const wif = this.options.keys[role];
    if (!this.steem || !wif || !this.options.needs.includes(role)) {
      return Promise.reject(
        new AppError(
          'ERR_BOT_KEY_MISSING',
          `${name} needs the ${role} key: declare keys: ['${role}'] in createBot and set STEEM_${role.toUpperCase()}_KEY`,
        ),
      );
    }
    const steem = this.steem;
    const run = async (): Promise<void> => {
      const wait = this.last + this.options.intervalMs - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      this.last = Date.now();
      if (!this.options.live) {
        this.options.logger.info(
          { op: [name, op] },
          `dry run: would broadcast ${name} ${JSON.stringify(op)} (set BOT_LIVE=1 to broadcast)`,
        );
        return;
      }
      await send(steem, wif);
      this.options.logger.info({ op: [name, op] }, `broadcast ${name}`);
    };
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }
}

async function checkAuthorities(steem: SteemJs, options: ChainOptions): Promise<void> {
  steem.api.setOptions({ url: options.nodes[0] as string });
  const [account] = await steem.api.getAccountsAsync([options.account]);
  if (!account) throw new AppError('ERR_BOT_KEY_MISMATCH', `account @${options.account} does not exist on ${options.nodes[0]}`);
  for (const role of options.needs) {
    const publicKey = steem.auth.wifToPublic(options.keys[role] as string);
    if (!account[role].key_auths.some(([key]) => key === publicKey)) {
      throw new AppError('ERR_BOT_KEY_MISMATCH', `STEEM_${role.toUpperCase()}_KEY is not a ${role} key of @${options.account}`);
    }
  }
}
