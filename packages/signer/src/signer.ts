import { type ActionState, AppError, type Logger } from '@steem-bot/config';

import {
  CHAIN_SPACING,
  type CommentInput,
  CUSTOM_JSON_PER_BLOCK,
  type CustomJsonInput,
  type Spacing,
  spacingRule,
  toAction,
  type TransferInput,
  type VoteInput,
} from './actions';
import type { Keys } from './keys';
import { type NodeClient, NodeUnavailable, RpcRefusal } from './node-client';
import { signTransaction, transactionId } from './steem';
import type { Action, ActionKind, SignerStore } from './store';

export interface SignerOptions {
  store: SignerStore;
  keys: Keys;
  client: NodeClient;
  logger: Logger;
  /** Broadcast (SIGNER_LIVE=1); otherwise log the exact transaction and end in `dry-run`. */
  live: boolean;
  expirationS: number;
  maxSigns: number;
  pollMs: number;
  minRc: number;
  rcWaitMs: number;
  /** Publish an outcome; rejected promises are retried from the outbox. */
  publish(event: Outcome): Promise<void>;
  spacing?: Spacing;
  now?: () => number;
}

export type Outcome =
  | { name: 'transaction.confirmed'; payload: { action_id: string; key: string; trx_id: string; block_num: number } }
  | { name: 'transaction.failed'; payload: { action_id: string; key: string; reason: string; retryable: boolean } };

interface Tapos {
  ref_block_num: number;
  ref_block_prefix: number;
  /** Head block time, ms. */
  chainTime: number;
  at: number;
}

type FindStatus =
  | 'unknown'
  | 'within_mempool'
  | 'within_reversible_block'
  | 'within_irreversible_block'
  | 'expired_reversible'
  | 'expired_irreversible'
  | 'too_old';

const iso = (ms: number): string => new Date(ms).toISOString().slice(0, 19);

/** Refusals that the same transaction will always get: the action fails at once. */
const PERMANENT =
  /missing required|Missing (Posting|Active|Owner) Authority|irrelevant signature|Parse Error|exceeds the maximum|required_active\.size|Invalid parameters|does not accept|insufficient|Insufficient/;
const DUPLICATE = /Duplicate transaction check failed/;
const NO_RC = /Please wait to transact/;
/** TaPoS of another fork: the node answering is not on the chain the transaction refers to. */
const WRONG_FORK = /tapos|ref_block_prefix/i;
/** How long a node that refused a transaction's TaPoS is left alone. */
const WRONG_FORK_AVOID_MS = 60_000;

/**
 * The signer's engine. Each action is recorded first (`accept`), then, per account in order and
 * spaced by the chain's rules: RC checked, signed once (TaPoS from the last irreversible block,
 * expiration from chain time), stored with its id, broadcast. Transactions not yet confirmed are
 * looked up and the same signed transaction is rebroadcast until it is in an irreversible block
 * (confirmed) or has expired irreversibly (signed again, at most `maxSigns` times in all).
 */
export class Signer {
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private tapos: Tapos | undefined;
  private readonly now: () => number;
  private readonly spacing: Spacing;
  private readonly log: Logger;

  constructor(private readonly options: SignerOptions) {
    this.now = options.now ?? Date.now;
    this.spacing = options.spacing ?? CHAIN_SPACING;
    this.log = options.logger.child({ component: 'signer' });
  }

  start(): void {
    this.wake();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.ticking;
  }

  /**
   * Record an action under its idempotency key (durably, before anything else) and return
   * `{action_id, state}`; the same key again returns the same action.
   */
  async accept(
    kind: ActionKind,
    payload: VoteInput | CommentInput | TransferInput | CustomJsonInput,
    ctx: { key: string | undefined; tid: string },
  ): Promise<{ action_id: string; state: ActionState }> {
    if (ctx.key === undefined) throw new AppError('ERR_SIGNER_INPUT', `signer ${kind} tasks need an idempotency key`);
    const action = toAction(kind, payload);
    if (!this.options.keys.get(action.account, action.role))
      throw new AppError('ERR_SIGNER_NO_KEY', `the signer has no ${action.role} key for @${action.account}`);
    const recorded = await this.options.store.record({ ...action, key: ctx.key, tid: ctx.tid }, this.now());
    this.wake();
    return { action_id: recorded.id, state: recorded.state };
  }

  /** Run a pass soon (a new action, an event). */
  wake(): void {
    if (this.stopped) return;
    if (this.ticking) {
      this.again = true;
      return;
    }
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.run(), 0);
  }

  /** The broadcaster streamed an op of transaction `trxId` in block `blockNum`. */
  async onChainOp(trxId: string, blockNum: number): Promise<void> {
    const action = await this.options.store.openByTrxId(trxId);
    if (!action) return;
    await this.confirm(action, trxId, blockNum, 'the broadcaster streamed it');
  }

  /**
   * The operator's Retry (`signer.action.retry`): a failed, retryable action is signed again with
   * a fresh budget of SIGNER_MAX_SIGNS. `retryable` is true only once the node said
   * `expired_irreversible` for its last transaction (and each earlier one was replaced only after
   * the same answer), so none can still land; the chain's clock is checked too: a transaction of
   * the action whose expiration is not yet past refuses the retry.
   */
  async retry(actionId: string): Promise<{ action_id: string; state: ActionState }> {
    const before = await this.options.store.byId(actionId);
    if (before?.state === 'failed' && before.retryable) {
      const signedFor = await this.options.store.transactions(actionId);
      const latest = Math.max(0, ...signedFor.map((t) => t.expiration));
      // The head's time now (not the cached TaPoS: at devnode's speed a second is 30 s of chain time).
      const props = await this.options.client
        .call<{ time: string }>('condenser_api.get_dynamic_global_properties', [])
        .catch((err: unknown) => {
          throw new AppError(
            'ERR_SIGNER_NOT_RETRYABLE',
            `action ${actionId}: no node answered to check its transactions have expired; try again`,
            {
              data: { action_id: actionId, state: before.state },
              retryable: true,
              cause: err,
            },
          );
        });
      const chainTime = Date.parse(`${props.time}Z`);
      if (latest >= chainTime)
        throw new AppError(
          'ERR_SIGNER_NOT_RETRYABLE',
          `action ${actionId}: a transaction signed for it can still be included until ${iso(latest)} (chain time ${iso(chainTime)})`,
          { data: { action_id: actionId, state: before.state }, retryable: true },
        );
    }
    const action = await this.options.store.retry(actionId, 'retried by the operator: signing again', this.now());
    this.log.warn(
      { action: action.id, key: action.key },
      `action ${action.key} retried by the operator: signed again with a fresh budget of ${this.options.maxSigns}`,
    );
    this.wake();
    return { action_id: action.id, state: action.state };
  }

  private async run(): Promise<void> {
    this.ticking = this.pass().catch((err: unknown) => this.log.error({ err }, 'signer pass failed; retrying'));
    await this.ticking;
    this.ticking = undefined;
    if (this.stopped) return;
    const delay = this.again ? 0 : await this.nextDelay().catch(() => this.options.pollMs);
    this.again = false;
    this.timer = setTimeout(() => void this.run(), delay);
  }

  /** Until the earliest next_at, at most pollMs. */
  private async nextDelay(): Promise<number> {
    const now = this.now();
    let delay = this.options.pollMs;
    for (const a of await this.options.store.open()) delay = Math.min(delay, Math.max(20, a.next_at - now));
    return delay;
  }

  private async pass(): Promise<void> {
    await this.publishOutbox();
    const open = await this.options.store.open();
    const queues = new Map<string, Action[]>();
    for (const a of open) if (a.trx === null) queues.set(a.account, [...(queues.get(a.account) ?? []), a]);
    const now = this.now();
    const tracked = open.filter((a) => a.trx !== null && a.next_at <= now);
    await Promise.all([...[...queues.values()].map((q) => this.write(q)), this.trackAll(tracked)]);
    await this.publishOutbox();
  }

  private async trackAll(actions: Action[]): Promise<void> {
    for (let i = 0; i < actions.length && !this.stopped; i += 10) await Promise.all(actions.slice(i, i + 10).map((a) => this.track(a)));
  }

  /** One account's unsigned actions, in order: each goes out once its spacing and RC allow. */
  private async write(queue: Action[]): Promise<void> {
    for (const action of queue) {
      if (this.stopped) return;
      const now = this.now();
      if (action.next_at > now) return;
      const wait = await this.spacingWait(action, now);
      if (wait > 0) {
        await this.options.store.update(action.id, { next_at: now + wait }, now);
        return;
      }
      try {
        if (this.options.live && !(await this.hasRc(action))) return;
        await this.signAndSend(action);
      } catch (err) {
        if (err instanceof NodeUnavailable) {
          this.log.warn({ action: action.id, err: err.message }, 'no node answered; will retry');
          return;
        }
        throw err;
      }
    }
  }

  private async spacingWait(action: Action, now: number): Promise<number> {
    if (action.kind === 'custom_json') {
      // Delayed, not failed: the sixth of a block waits until the first is a block interval old.
      const block = this.spacing.block ?? 3_000;
      const { count, earliest } = await this.options.store.signedSince(action.account, 'custom_json', action.id, now - block);
      return count >= CUSTOM_JSON_PER_BLOCK && earliest !== null ? earliest + block - now : 0;
    }
    const rule = spacingRule(action.op);
    if (!rule) return 0;
    const last = await this.options.store.lastSigned(action.account, action.kind, action.id, rule === 'vote' ? undefined : rule === 'root');
    return last === null ? 0 : last + this.spacing[rule] - now;
  }

  private async hasRc(action: Action): Promise<boolean> {
    const res = await this.options.client.call<{ rc_accounts: Array<{ account: string; rc_manabar: { current_mana: string } }> }>(
      'rc_api.find_rc_accounts',
      { accounts: [action.account] },
    );
    const mana = Number(res.rc_accounts.find((a) => a.account === action.account)?.rc_manabar.current_mana ?? 0);
    if (mana >= this.options.minRc) return true;
    await this.waitRc(action, `@${action.account} has ${mana} RC, needs ${this.options.minRc}`);
    return false;
  }

  private async waitRc(action: Action, why: string): Promise<void> {
    const now = this.now();
    await this.options.store.update(
      action.id,
      { state: 'waiting-rc', reason: `waiting for resource credits: ${why}`, next_at: now + this.options.rcWaitMs },
      now,
    );
    this.log.warn({ action: action.id, key: action.key }, `action ${action.key} waits for resource credits: ${why}`);
  }

  private async signAndSend(action: Action): Promise<void> {
    const wif = this.options.keys.get(action.account, action.role);
    if (!wif) return this.fail(action, `no ${action.role} key for @${action.account}`, false);
    const tapos = await this.currentTapos();
    const trx = signTransaction(
      {
        ref_block_num: tapos.ref_block_num,
        ref_block_prefix: tapos.ref_block_prefix,
        expiration: iso(tapos.chainTime + this.options.expirationS * 1000),
        operations: [action.op],
        extensions: [],
      },
      wif,
    );
    const trxId = transactionId(trx);
    const now = this.now();
    if (!this.options.live) {
      this.log.info(
        { action: action.id, key: action.key, trx_id: trxId, trx },
        `dry run: would broadcast ${JSON.stringify(trx)} (set SIGNER_LIVE=1 to broadcast)`,
      );
      await this.options.store.finish(action.id, { state: 'dry-run', reason: 'dry run: not broadcast (SIGNER_LIVE=0)' }, now);
      return;
    }
    // On disk before it can be on a node: after a crash the same transaction is rebroadcast.
    if (!(await this.options.store.signed(action.id, trx, trxId, Date.parse(`${trx.expiration}Z`), now))) {
      // It changed meanwhile (finished, or a transaction already in flight): this one is never broadcast.
      this.log.warn({ action: action.id, trx_id: trxId }, `${action.key} changed while being signed; ${trxId} dropped unbroadcast`);
      return;
    }
    this.log.info(
      { action: action.id, key: action.key, trx_id: trxId, signed: action.signed + 1 },
      `signed ${action.kind} ${action.key} as ${trxId}`,
    );
    const stored = await this.options.store.byId(action.id);
    if (stored) await this.broadcast(stored);
  }

  /** TaPoS from the last irreversible block (as steem-js does), and the head's time; cached 1 s. */
  private async currentTapos(): Promise<Tapos> {
    if (this.tapos && this.now() - this.tapos.at < 1_000) return this.tapos;
    const client = this.options.client;
    const props = await client.call<{ time: string; head_block_number: number; last_irreversible_block_num: number }>(
      'condenser_api.get_dynamic_global_properties',
      [],
    );
    const lib = props.last_irreversible_block_num;
    let id: string | undefined;
    if (lib < props.head_block_number)
      id = (await client.call<{ previous: string } | null>('condenser_api.get_block_header', [lib + 1]))?.previous;
    id ??= (await client.call<{ block_id: string } | null>('condenser_api.get_block', [lib]))?.block_id;
    if (!id) throw new NodeUnavailable(`the node has no block ${lib}`);
    this.tapos = {
      ref_block_num: lib & 0xffff,
      ref_block_prefix: Buffer.from(id, 'hex').readUInt32LE(4),
      chainTime: Date.parse(`${props.time}Z`),
      at: this.now(),
    };
    return this.tapos;
  }

  /** Broadcast the stored signed transaction and act on the answer. */
  private async broadcast(action: Action): Promise<void> {
    const trx = action.trx;
    if (!trx) return;
    const now = (): number => this.now();
    try {
      await this.options.client.call('condenser_api.broadcast_transaction', [trx]);
      await this.options.store.update(
        action.id,
        { state: 'sent', broadcast_at: now(), reason: null, next_at: now() + this.options.pollMs },
        now(),
      );
      this.log.info({ action: action.id, trx_id: action.trx_id }, `broadcast ${action.trx_id}`);
    } catch (err) {
      if (err instanceof NodeUnavailable) {
        // It may have been accepted: the lookup decides, and the same transaction goes again.
        await this.options.store.update(
          action.id,
          { state: 'sent', reason: `broadcast answer lost: ${err.message}`, next_at: now() + this.options.pollMs },
          now(),
        );
        this.log.warn(
          { action: action.id, trx_id: action.trx_id, err: err.message },
          `broadcast of ${action.trx_id} unanswered; will look it up`,
        );
        return;
      }
      if (!(err instanceof RpcRefusal)) throw err;
      if (DUPLICATE.test(err.message)) {
        await this.options.store.update(
          action.id,
          { state: 'sent', broadcast_at: now(), reason: null, next_at: now() + this.options.pollMs },
          now(),
        );
        this.log.info({ action: action.id, trx_id: action.trx_id }, `${action.trx_id} is already known to the node; confirming by lookup`);
      } else if (WRONG_FORK.test(err.message) && err.node !== undefined) {
        // The transaction refers to a block this node does not have: ask the other nodes (the
        // lookup, then the same transaction again) and take the next TaPoS from them too.
        this.options.client.avoid(err.node, WRONG_FORK_AVOID_MS, `it refused ${action.trx_id}'s TaPoS (another fork?)`);
        this.tapos = undefined;
        await this.options.store.update(action.id, { reason: `TaPoS refused by ${err.node}: ${err.message}`, next_at: now() }, now());
        this.log.warn(
          { action: action.id, trx_id: action.trx_id },
          `${err.node} refused the TaPoS of ${action.trx_id}; moving to another node`,
        );
      } else if (NO_RC.test(err.message)) await this.waitRc(action, err.message);
      else if (PERMANENT.test(err.message)) await this.fail(action, err.message, false);
      else {
        // Expired, TaPoS of another fork, a node's own trouble: the lookup decides what comes next.
        await this.options.store.update(action.id, { reason: err.message, next_at: now() + this.options.pollMs }, now());
        this.log.warn({ action: action.id, trx_id: action.trx_id }, `broadcast of ${action.trx_id} refused: ${err.message}`);
      }
    }
  }

  /** Where the signed transaction stands on chain, and the next step. */
  private async track(action: Action): Promise<void> {
    const trx = action.trx;
    if (!trx || !action.trx_id) return;
    let found: { status: FindStatus; block_num?: number };
    try {
      found = await this.options.client.call('transaction_status_api.find_transaction', {
        transaction_id: action.trx_id,
        expiration: trx.expiration,
      });
    } catch (err) {
      if (!(err instanceof NodeUnavailable) && !(err instanceof RpcRefusal)) throw err;
      await this.options.store.update(action.id, { next_at: this.now() + this.options.pollMs }, this.now());
      return;
    }
    const now = this.now();
    switch (found.status) {
      case 'within_irreversible_block':
        return this.confirm(action, action.trx_id, found.block_num ?? 0, 'find_transaction');
      case 'within_reversible_block':
      case 'within_mempool':
      case 'expired_reversible':
        await this.options.store.update(action.id, { next_at: now + this.options.pollMs }, now);
        return;
      case 'expired_irreversible':
        return this.resignOrFail(action);
      case 'too_old':
        return this.fail(action, `outcome unknown: the node no longer tracks ${action.trx_id}`, false);
      default: {
        // The node does not hold it (a lost answer, a node restart): the same transaction again,
        // while it can still be included.
        const tapos = await this.currentTapos().catch(() => undefined);
        if (tapos && tapos.chainTime >= (action.expiration ?? 0)) {
          await this.options.store.update(action.id, { next_at: now + this.options.pollMs }, now);
          return;
        }
        if (action.state === 'waiting-rc' && this.options.live && !(await this.hasRc(action).catch(() => false))) return;
        return this.broadcast(action);
      }
    }
  }

  private async resignOrFail(action: Action): Promise<void> {
    const now = this.now();
    if (action.signed - action.signs_base < this.options.maxSigns) {
      await this.options.store.update(
        action.id,
        { state: 'pending', trx: null, reason: `${action.trx_id} expired without inclusion; signing again`, next_at: 0 },
        now,
      );
      this.log.warn(
        { action: action.id, trx_id: action.trx_id },
        `${action.trx_id} expired without inclusion; signing ${action.key} again`,
      );
      this.wake();
      return;
    }
    await this.fail(action, `expired: none of the ${action.signed} transactions signed for it was included`, true);
  }

  private async confirm(action: Action, trxId: string, blockNum: number, how: string): Promise<void> {
    if (await this.options.store.finish(action.id, { state: 'confirmed', trx_id: trxId, block_num: blockNum }, this.now())) {
      this.log.info(
        { action: action.id, key: action.key, trx_id: trxId, block_num: blockNum },
        `confirmed ${action.key}: ${trxId} in block ${blockNum} (${how})`,
      );
      this.wake();
    }
  }

  private async fail(action: Action, reason: string, retryable: boolean): Promise<void> {
    if (await this.options.store.finish(action.id, { state: 'failed', reason, retryable }, this.now())) {
      this.log.error({ action: action.id, key: action.key, retryable }, `action ${action.key} failed: ${reason}`);
      this.wake();
    }
  }

  /** Publish the outcome of every finished action not yet published (at least once). */
  private async publishOutbox(): Promise<void> {
    for (const a of await this.options.store.unpublished()) {
      const event: Outcome =
        a.state === 'confirmed'
          ? { name: 'transaction.confirmed', payload: { action_id: a.id, key: a.key, trx_id: a.trx_id ?? '', block_num: a.block_num ?? 0 } }
          : {
              name: 'transaction.failed',
              payload: { action_id: a.id, key: a.key, reason: a.reason ?? '', retryable: a.retryable ?? false },
            };
      try {
        await this.options.publish(event);
        await this.options.store.markPublished(a.id);
      } catch (err) {
        this.log.warn({ err, action: a.id }, `could not publish ${event.name}; will retry`);
        return;
      }
    }
  }
}

/** `signer.action.get`'s reply. */
export function actionView(a: Action): {
  action_id: string;
  key: string;
  kind: Action['kind'];
  account: string;
  state: ActionState;
  trx_id: string | null;
  block_num: number | null;
  signed: number;
  reason: string | null;
  retryable: boolean | null;
} {
  return {
    action_id: a.id,
    key: a.key,
    kind: a.kind,
    account: a.account,
    state: a.state,
    trx_id: a.trx_id,
    block_num: a.block_num,
    signed: a.signed,
    reason: a.reason,
    retryable: a.retryable,
  };
}
