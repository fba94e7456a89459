import { z } from 'zod';

/**
 * Where an operation sits in the chain; published with every chain op, at the top level
 * beside the op's own fields.
 */
export const chainOpMeta = {
  /** Block number. */
  block_num: z.number().int().positive(),
  /** Block id (its first 8 hex digits are the block number). */
  block_id: z.string(),
  /** Block timestamp, UTC, as the chain renders it (`2016-04-29T04:00:03`). */
  timestamp: z.string(),
  /** Id of the transaction that carried the op. */
  trx_id: z.string(),
  /** Index of that transaction in the block. */
  trx_in_block: z.number().int().nonnegative(),
  /** Index of the op in its transaction. */
  op_in_trx: z.number().int().nonnegative(),
  /** Index of the op in its block, counting every op of every transaction: with block_num, its stable position. */
  op_in_block: z.number().int().nonnegative(),
};

const account = z.string();
const asset = z.string(); // condenser rendering: "1.000 STEEM", "0.500 SBD", "123.456789 VESTS"

function chainOp<S extends z.ZodRawShape>(fields: S) {
  return z.looseObject({ ...fields, ...chainOpMeta });
}

/** Payload schemas of the most common operations (condenser_api rendering). */
export const commonOps = {
  vote: chainOp({ voter: account, author: account, permlink: z.string(), weight: z.number().int() }),
  comment: chainOp({
    parent_author: z.string(),
    parent_permlink: z.string(),
    author: account,
    permlink: z.string(),
    title: z.string(),
    body: z.string(),
    json_metadata: z.string(),
  }),
  transfer: chainOp({ from: account, to: account, amount: asset, memo: z.string() }),
  custom_json: chainOp({
    required_auths: z.array(account),
    required_posting_auths: z.array(account),
    id: z.string(),
    json: z.string(),
  }),
  comment_options: chainOp({
    author: account,
    permlink: z.string(),
    max_accepted_payout: asset,
    percent_steem_dollars: z.number().int(),
    allow_votes: z.boolean(),
    allow_curation_rewards: z.boolean(),
    extensions: z.array(z.unknown()),
  }),
  delete_comment: chainOp({ author: account, permlink: z.string() }),
  account_update: chainOp({ account, memo_key: z.string(), json_metadata: z.string() }),
  claim_reward_balance: chainOp({ account, reward_steem: asset, reward_sbd: asset, reward_vests: asset }),
  transfer_to_vesting: chainOp({ from: account, to: account, amount: asset }),
  account_witness_vote: chainOp({ account, witness: account, approve: z.boolean() }),
};

/** Every other non-virtual Steem operation: published with its own fields, typed loosely. */
export const otherOpNames = [
  'withdraw_vesting',
  'limit_order_create',
  'limit_order_cancel',
  'feed_publish',
  'convert',
  'account_create',
  'witness_update',
  'account_witness_proxy',
  'pow',
  'custom',
  'report_over_production',
  'set_withdraw_vesting_route',
  'limit_order_create2',
  'claim_account',
  'create_claimed_account',
  'request_account_recovery',
  'recover_account',
  'change_recovery_account',
  'escrow_transfer',
  'escrow_dispute',
  'escrow_release',
  'pow2',
  'escrow_approve',
  'transfer_to_savings',
  'transfer_from_savings',
  'cancel_transfer_from_savings',
  'custom_binary',
  'decline_voting_rights',
  'reset_account',
  'set_reset_account',
  'delegate_vesting_shares',
  'account_create_with_delegation',
  'witness_set_properties',
  'account_update2',
  'create_proposal',
  'update_proposal_votes',
  'remove_proposal',
] as const;

export type OtherOpName = (typeof otherOpNames)[number];

const looseOp = chainOp({});

export const otherOps = Object.fromEntries(otherOpNames.map((n) => [n, looseOp])) as Record<OtherOpName, typeof looseOp>;

/** Every chain operation name the broadcaster publishes. */
export const chainOpNames = [...(Object.keys(commonOps) as (keyof typeof commonOps)[]), ...otherOpNames];
export type ChainOpName = (typeof chainOpNames)[number];
