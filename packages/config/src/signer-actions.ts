import { z } from 'zod';

/** Steem account names: 3-16 characters, lower case, digits, dots and dashes. */
const account = z.string().regex(/^[a-z][a-z0-9.-]{2,15}$/, 'a Steem account name');

/** `signer.vote.cast`: `account` votes on `@author/permlink` with `weight` (-10000..10000 = -100 %..100 %). */
export const voteAction = z.object({
  account,
  author: account,
  permlink: z.string().min(1).max(256),
  weight: z.number().int().min(-10_000).max(10_000),
});

/** `signer.comment.post`: a root post (`parent_author` empty) or a reply. */
export const commentAction = z.object({
  account,
  parent_author: z.union([z.literal(''), account]),
  parent_permlink: z.string().min(1).max(256),
  permlink: z.string().min(1).max(256),
  title: z.string().max(255).optional(),
  body: z.string().min(1),
  json_metadata: z.string().optional(),
});

/** `signer.transfer.send`: `amount` as the chain writes it, `"1.000 STEEM"` or `"0.500 SBD"`. */
export const transferAction = z.object({
  account,
  to: account,
  amount: z.string().regex(/^\d+\.\d{3} (STEEM|SBD)$/, 'an amount like "1.000 STEEM" or "0.500 SBD"'),
  memo: z.string().max(2048).optional(),
});

/** `signer.custom_json.send`: `id` at most 32 characters, `json` valid JSON of at most 8,192 bytes. */
export const customJsonAction = z.object({
  account,
  id: z.string().min(1).max(32),
  json: z
    .string()
    .refine((s) => Buffer.byteLength(s) <= 8192, 'at most 8192 bytes')
    .refine((s) => {
      try {
        JSON.parse(s);
        return true;
      } catch {
        return false;
      }
    }, 'valid JSON'),
  auth: z.enum(['posting', 'active']).optional(),
});

/** The states of a chain action. */
export const actionStates = ['pending', 'waiting-rc', 'sent', 'confirmed', 'failed', 'dry-run'] as const;
export type ActionState = (typeof actionStates)[number];

/** The acknowledgement of an action task: it is recorded. */
export const actionReply = z.object({ action_id: z.string(), state: z.enum(actionStates) });

/** `signer.action.get`'s reply. */
export const actionState = z.object({
  action_id: z.string(),
  key: z.string(),
  kind: z.enum(['vote', 'comment', 'transfer', 'custom_json']),
  account: z.string(),
  state: z.enum(actionStates),
  trx_id: z.string().nullable(),
  block_num: z.number().int().nullable(),
  signed: z.number().int(),
  reason: z.string().nullable(),
  /** For a failed action: whether the same action may succeed if sent again under a new key. */
  retryable: z.boolean().nullable(),
});

/** `signer.key.list`'s reply: the accounts the signer holds keys for, and the roles (never a key). */
export const keyList = z.object({
  live: z.boolean(),
  accounts: z.record(z.string(), z.array(z.enum(['posting', 'active']))),
});
