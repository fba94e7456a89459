import { AppError } from '@steem-bot/config';

import type { KeyRole } from './keys';
import { type Operation, transactionSize } from './steem';
import type { ActionKind } from './store';

export interface VoteInput {
  account: string;
  author: string;
  permlink: string;
  weight: number;
}
export interface CommentInput {
  account: string;
  parent_author: string;
  parent_permlink: string;
  permlink: string;
  title?: string | undefined;
  body: string;
  json_metadata?: string | undefined;
}
export interface TransferInput {
  account: string;
  to: string;
  amount: string;
  memo?: string | undefined;
}
export interface CustomJsonInput {
  account: string;
  id: string;
  json: string;
  auth?: KeyRole | undefined;
}

/** An action as the signer records it: the op, and the key it signs with. */
export interface ActionInput {
  kind: ActionKind;
  account: string;
  role: KeyRole;
  op: Operation;
}

/** steemd's STEEM_MAX_TRANSACTION_SIZE. */
export const MAX_TRANSACTION_SIZE = 64 * 1024;

/**
 * The op of a task payload (already checked against the catalogue schema: names, weight range,
 * amount format, custom_json id <= 32 chars and json <= 8,192 bytes), and a last check of the
 * transaction's size.
 */
export function toAction(kind: ActionKind, input: VoteInput | CommentInput | TransferInput | CustomJsonInput): ActionInput {
  let action: ActionInput;
  switch (kind) {
    case 'vote': {
      const v = input as VoteInput;
      action = {
        kind,
        account: v.account,
        role: 'posting',
        op: ['vote', { voter: v.account, author: v.author, permlink: v.permlink, weight: v.weight }],
      };
      break;
    }
    case 'comment': {
      const c = input as CommentInput;
      const op = {
        parent_author: c.parent_author,
        parent_permlink: c.parent_permlink,
        author: c.account,
        permlink: c.permlink,
        title: c.title ?? '',
        body: c.body,
        json_metadata: c.json_metadata ?? '{}',
      };
      action = { kind, account: c.account, role: 'posting', op: ['comment', op] };
      break;
    }
    case 'transfer': {
      const t = input as TransferInput;
      action = {
        kind,
        account: t.account,
        role: 'active',
        op: ['transfer', { from: t.account, to: t.to, amount: t.amount, memo: t.memo ?? '' }],
      };
      break;
    }
    case 'custom_json': {
      const j = input as CustomJsonInput;
      const role = j.auth ?? 'posting';
      const op = {
        required_auths: role === 'active' ? [j.account] : [],
        required_posting_auths: role === 'posting' ? [j.account] : [],
        id: j.id,
        json: j.json,
      };
      action = { kind, account: j.account, role, op: ['custom_json', op] };
      break;
    }
  }
  // A transaction of this op with one signature: what the chain will measure.
  const size = transactionSize({
    ref_block_num: 0,
    ref_block_prefix: 0,
    expiration: '2016-01-01T00:00:00',
    operations: [action.op],
    extensions: [],
    signatures: ['00'.repeat(65)],
  });
  if (size > MAX_TRANSACTION_SIZE)
    throw new AppError('ERR_SIGNER_INPUT', `the transaction would be ${size} bytes; the chain refuses more than ${MAX_TRANSACTION_SIZE}`);
  return action;
}

/** The chain's per-account spacing rules (Steem HF20+), in ms. */
export interface Spacing {
  /** STEEM_MIN_VOTE_INTERVAL_SEC: "Can only vote once every 3 seconds." */
  vote: number;
  /** STEEM_MIN_ROOT_COMMENT_INTERVAL: "You may only post once every 5 minutes." */
  root: number;
  /** STEEM_MIN_REPLY_INTERVAL_HF20: "You may only comment once every 3 seconds." */
  reply: number;
  /**
   * The block interval, for "Account ... already submitted 5 custom json operation(s) this block":
   * at most CUSTOM_JSON_PER_BLOCK custom_json of an account are signed within it. Default 3000.
   */
  block?: number;
}

export const CHAIN_SPACING: Spacing = { vote: 3_000, root: 300_000, reply: 3_000, block: 3_000 };

/** The chain's limit of custom_json operations per account per block. */
export const CUSTOM_JSON_PER_BLOCK = 5;

/** Which spacing rule an op falls under, if any. */
export function spacingRule(op: Operation): 'vote' | 'root' | 'reply' | undefined {
  if (op[0] === 'vote') return 'vote';
  if (op[0] === 'comment') return op[1].parent_author === '' ? 'root' : 'reply';
  return undefined;
}
