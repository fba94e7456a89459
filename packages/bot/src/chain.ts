import { setTimeout as delay } from 'node:timers/promises';

import type { Bus, TransportSubscription } from '@steem-bot/bus';
import { AppError, type Catalogue, type Logger, type TaskPayload } from '@steem-bot/config';

import { TRANSIENT } from './op-runner';

/** Which key of an account an action needs: votes, comments and custom_json posting; transfers active. */
export type KeyRole = 'posting' | 'active';

/** An account a bot acts for: a name (posting key) or a name with the roles it needs. */
export type AccountNeed = string | { account: string; roles: readonly KeyRole[] };

/** `account` defaults to the first account the bot declares. */
export interface VoteInput {
  account?: string;
  author: string;
  permlink: string;
  /** -10000 .. 10000 (100.00 %). */
  weight: number;
}
export interface CommentInput {
  account?: string;
  parent_author: string;
  parent_permlink: string;
  permlink: string;
  title?: string;
  body: string;
  json_metadata?: string;
}
export interface TransferInput {
  account?: string;
  to: string;
  /** "1.000 STEEM" or "0.500 SBD". */
  amount: string;
  memo?: string;
}
export interface CustomJsonInput {
  account?: string;
  id: string;
  json: string;
  /** Sign with the posting key (default) or the active key. */
  auth?: KeyRole;
}

/** How an action ended well: on chain, or (signer in dry run) logged and not broadcast. */
export interface ActionOutcome {
  action_id: string;
  state: 'confirmed' | 'dry-run';
  trx_id: string | null;
  block_num: number | null;
}

/**
 * `ctx.chain`: chain actions as tasks to the signer, the only holder of keys. Each call sends one
 * task with the idempotency key `<bot>:<position>:<n>` (the n-th chain action of the handler), so
 * a retried handler asks for the same action again and the signer puts it on chain once. Each
 * resolves with the action id once the signer has durably recorded the action.
 */
export interface Chain {
  vote(input: VoteInput): Promise<string>;
  comment(input: CommentInput): Promise<string>;
  transfer(input: TransferInput): Promise<string>;
  customJson(input: CustomJsonInput): Promise<string>;
  /**
   * Wait for the action's outcome: resolves when it is confirmed on chain (or ended in dry run),
   * rejects with ERR_BOT_ACTION_FAILED when the signer gave it up. Also rejects when the handler's
   * try is aborted (its deadline) or the bot stops.
   */
  confirmed(actionId: string): Promise<ActionOutcome>;
}

type Task = 'signer.vote.cast' | 'signer.comment.post' | 'signer.transfer.send' | 'signer.custom_json.send';

const POLL_MS = 1_000;
const REMEMBERED = 10_000;

interface Waiter {
  resolve(outcome: ActionOutcome): void;
  reject(err: unknown): void;
}

/** The roles each declared account needs, by account (a bare name needs the posting key). */
export function accountRoles(needs: readonly AccountNeed[]): Map<string, Set<KeyRole>> {
  const out = new Map<string, Set<KeyRole>>();
  for (const need of needs) {
    const [account, roles] = typeof need === 'string' ? [need, ['posting'] as const] : [need.account, need.roles];
    const set = out.get(account) ?? new Set<KeyRole>();
    for (const role of roles) set.add(role);
    out.set(account, set);
  }
  return out;
}

/**
 * One bot's link to the signer: the start-up check of its accounts, the tasks, and the outcomes
 * it waits for (from the signer's event stream, with `signer.action.get` as the fallback).
 */
export class SignerLink {
  private readonly keys = new Map<string, string>();
  private readonly waiters = new Map<string, Set<Waiter>>();
  private subscription: TransportSubscription | undefined;
  private poller: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly bus: Bus<Catalogue>,
    /** Declared accounts, in declaration order: the first is the default. */
    private readonly accounts: readonly string[],
    private readonly logger: Logger,
    private readonly pollMs = POLL_MS,
  ) {}

  /**
   * Ask the signer which keys it holds and fail (ERR_BOT_KEY_MISSING) when it lacks one the bot
   * declared. While the signer is not there yet (started later by PM2), wait for it up to `waitMs`.
   */
  static async check(bus: Bus<Catalogue>, needs: Map<string, Set<KeyRole>>, logger: Logger, waitMs: number): Promise<void> {
    if (needs.size === 0) return;
    const deadline = Date.now() + waitMs;
    let said = false;
    let list;
    for (let attempt = 1; ; attempt++) {
      try {
        list = await bus.call('signer.key.list', {});
        break;
      } catch (err) {
        if (!(err instanceof AppError && TRANSIENT.has(err.code))) throw err;
        if (Date.now() >= deadline)
          throw new AppError(
            'ERR_BUS_TIMEOUT',
            `the signer did not answer signer.key.list within ${waitMs / 1000} s: is the signer app running?`,
          );
        if (!said) logger.warn('waiting for the signer to check the keys of the accounts this bot acts for');
        said = true;
        await delay(Math.min(200 * attempt, 2_000));
      }
    }
    const missing: string[] = [];
    for (const [account, roles] of needs) {
      for (const role of roles) if (!list.accounts[account]?.includes(role)) missing.push(`@${account} (${role})`);
    }
    if (missing.length > 0)
      throw new AppError(
        'ERR_BOT_KEY_MISSING',
        `the signer holds no key for ${missing.join(', ')}, which this bot declares in \`accounts\`; give the signer ${missing.length > 1 ? 'those keys' : 'that key'} (SIGNER_KEYS_FILE, or SIGNER_ACCOUNT and its key variables) and restart it`,
      );
    if (!list.live) logger.warn('the signer is in dry run: chain actions are logged by the signer, not broadcast (SIGNER_LIVE=1 there)');
  }

  /** The chain actions of one handler try (or task run): keys `<keyPrefix>:<n>`. */
  chainFor(keyPrefix: string, signal?: AbortSignal): Chain {
    let n = 0;
    const send = async (task: Task, input: { account?: string | undefined }, payload: Record<string, unknown>): Promise<string> => {
      const account = this.accountOf(input.account);
      const key = `${keyPrefix}:${n++}`;
      const reply = await this.bus.send(task, { ...payload, account } as TaskPayload<Catalogue, Task>, { idempotencyKey: key });
      this.remember(reply.action_id, key);
      return reply.action_id;
    };
    return {
      vote: (i) => send('signer.vote.cast', i, { author: i.author, permlink: i.permlink, weight: i.weight }),
      comment: (i) =>
        send('signer.comment.post', i, {
          parent_author: i.parent_author,
          parent_permlink: i.parent_permlink,
          permlink: i.permlink,
          body: i.body,
          ...(i.title === undefined ? {} : { title: i.title }),
          ...(i.json_metadata === undefined ? {} : { json_metadata: i.json_metadata }),
        }),
      transfer: (i) => send('signer.transfer.send', i, { to: i.to, amount: i.amount, ...(i.memo === undefined ? {} : { memo: i.memo }) }),
      customJson: (i) => send('signer.custom_json.send', i, { id: i.id, json: i.json, ...(i.auth === undefined ? {} : { auth: i.auth }) }),
      confirmed: (id) => this.wait(id, signal),
    };
  }

  close(): void {
    this.closed = true;
    this.subscription?.close();
    clearInterval(this.poller);
    const stopped = new AppError('ERR_BUS_CLOSED', 'the bot stopped while waiting for a chain action');
    for (const set of this.waiters.values()) for (const w of set) w.reject(stopped);
    this.waiters.clear();
  }

  private accountOf(account: string | undefined): string {
    if (this.accounts.length === 0)
      throw new AppError('ERR_BOT_CHAIN_INPUT', 'this bot declares no account to act for: add `accounts` to its createBot definition');
    if (account === undefined) return this.accounts[0] as string;
    if (!this.accounts.includes(account))
      throw new AppError('ERR_BOT_CHAIN_INPUT', `@${account} is not one of the accounts this bot declares (${this.accounts.join(', ')})`);
    return account;
  }

  private remember(id: string, key: string): void {
    this.keys.delete(id);
    this.keys.set(id, key);
    if (this.keys.size > REMEMBERED) this.keys.delete(this.keys.keys().next().value as string);
  }

  private wait(id: string, signal: AbortSignal | undefined): Promise<ActionOutcome> {
    if (this.closed) return Promise.reject(new AppError('ERR_BUS_CLOSED', 'the bot is stopping'));
    if (!this.keys.has(id))
      return Promise.reject(
        new AppError('ERR_BOT_CHAIN_INPUT', `unknown action id ${id}: confirmed() takes an id that ctx.chain returned in this process`),
      );
    if (signal?.aborted) return Promise.reject(signal.reason);
    this.follow();
    return new Promise<ActionOutcome>((resolve, reject) => {
      const onAbort = (): void => {
        this.waiters.get(id)?.delete(waiter);
        reject(signal?.reason);
      };
      const waiter: Waiter = {
        resolve: (o) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(o);
        },
        reject: (e) => {
          signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const set = this.waiters.get(id) ?? new Set<Waiter>();
      set.add(waiter);
      this.waiters.set(id, set);
      // The outcome may be out already: the call answers for what the stream will not repeat.
      void this.lookUp(id);
    });
  }

  /** Subscribe to the signer's outcomes and poll as a fallback, from the first wait on. */
  private follow(): void {
    this.subscription ??= this.bus.subscribe(
      'signer',
      {
        'transaction.confirmed': (p) =>
          this.settle(p.action_id, { action_id: p.action_id, state: 'confirmed', trx_id: p.trx_id, block_num: p.block_num }),
        'transaction.failed': (p) => this.settle(p.action_id, undefined, p.reason, p.retryable),
      },
      { from: null },
    );
    this.poller ??= setInterval(() => {
      for (const id of this.waiters.keys()) void this.lookUp(id);
    }, this.pollMs);
    this.poller.unref();
  }

  private async lookUp(id: string): Promise<void> {
    const key = this.keys.get(id);
    if (key === undefined || !this.waiters.has(id)) return;
    try {
      const a = await this.bus.call('signer.action.get', { key });
      if (a.state === 'confirmed' || a.state === 'dry-run')
        this.settle(id, { action_id: id, state: a.state, trx_id: a.trx_id, block_num: a.block_num });
      else if (a.state === 'failed') this.settle(id, undefined, a.reason ?? 'failed', a.retryable ?? false);
    } catch (err) {
      this.logger.debug({ err, action: id }, 'signer.action.get failed; the next poll asks again');
    }
  }

  private settle(id: string, outcome: ActionOutcome | undefined, reason?: string, retryable?: boolean): void {
    const set = this.waiters.get(id);
    if (!set) return;
    this.waiters.delete(id);
    for (const w of set) {
      if (outcome) w.resolve(outcome);
      else
        w.reject(
          new AppError('ERR_BOT_ACTION_FAILED', `chain action ${this.keys.get(id) ?? id} failed: ${reason ?? ''}`, {
            data: { action_id: id, reason, retryable },
          }),
        );
    }
  }
}
