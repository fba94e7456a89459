import { z } from 'zod';

import { defineCatalogue } from './catalogue-shape';
import { commonOps, otherOps } from './chain-ops';
import { emailRequest, emailStatuses } from './email';
import { actionReply, actionState, commentAction, customJsonAction, keyList, transferAction, voteAction } from './signer-actions';

const nodeHealth = z.object({
  url: z.string(),
  state: z.enum(['healthy', 'open', 'stale', 'suspect']),
  head: z.number().int().nullable(),
  failures: z.number().int(),
  lastError: z.string().nullable(),
});

const messageId = z.object({ id: z.string().min(1).max(100) });
const messageReply = z.object({ id: z.string(), status: z.enum(emailStatuses) });

const emailEvent = z.object({
  id: z.string(),
  /** The REST client that asked for it, or `bus:<app>` for internal apps. */
  client: z.string(),
});

/**
 * The project's catalogue of events and tasks. Processes talk only through these names; the bus
 * rejects anything else at compile time and at run time. A bot's own tasks are declared by its
 * package (`extendCatalogue`; the bot SDK adds `<bot>.deadletter.replay|discard` to every bot's),
 * and senders that do not import it send them by name (`Bus.sendByName`).
 */
export const catalogue = defineCatalogue({
  events: {
    ...commonOps,
    ...otherOps,
    /** The broadcaster published every op of a block (sent after the block's last op). */
    'block.applied': z.object({
      block_num: z.number().int().positive(),
      block_id: z.string(),
      timestamp: z.string(),
      op_count: z.number().int().nonnegative(),
    }),
    /** Head mode only: a published block left the canonical chain; its ops are void and replacements follow. */
    'block.reverted': z.object({
      block_num: z.number().int().positive(),
      block_id: z.string(),
      replaced_by: z.string().nullable(),
    }),
    /** The mailer stored a message (REST or bus); it will be sent at `send_at`. */
    'email.queued': emailEvent.extend({ send_at: z.string() }),
    /** The SMTP server accepted a message. */
    'email.sent': emailEvent.extend({ message_id: z.string(), attempts: z.number().int() }),
    /** A message is dead: a permanent failure, or the last retry failed. */
    'email.failed': emailEvent.extend({ error: z.string(), attempts: z.number().int() }),
    /** The requesting app's check_url said the message is no longer needed. */
    'email.skipped': emailEvent,
    /** A client cancelled a message before it was sent. */
    'email.cancelled': emailEvent,
    /** The signer found an action's transaction in a block (irreversible, or as the broadcaster streams it). */
    'transaction.confirmed': z.object({
      action_id: z.string(),
      key: z.string(),
      trx_id: z.string(),
      block_num: z.number().int().positive(),
    }),
    /** An action will not reach the chain: a permanent error, or its last signed transaction expired. */
    'transaction.failed': z.object({
      action_id: z.string(),
      key: z.string(),
      reason: z.string(),
      retryable: z.boolean(),
    }),
    /** The webhooks app stopped delivering to an endpoint (410, retries exhausted, failing too long). */
    'endpoint.disabled': z.object({
      client: z.string(),
      endpoint: z.string(),
      url: z.string(),
      reason: z.string(),
    }),
    /** An outside app posted an event of a type it owns (`POST /v1/events/{type}` of the webhooks app). */
    'event.posted': z.object({
      client: z.string(),
      type: z.string(),
      data: z.record(z.string(), z.unknown()),
    }),
  },
  tasks: {
    /** Queue an email (trusted internal intake); acknowledged once it is on disk. */
    'mailer.email.send': {
      payload: emailRequest,
      reply: z.object({ id: z.string(), status: z.enum(emailStatuses) }),
    },
    /** The operator's recovery hook for a dead message: queue it again now with a fresh attempt budget (the console's Retry). */
    'mailer.email.retry': { payload: messageId, reply: messageReply },
    /** Cancel a scheduled or retrying message, whichever client queued it (the console's Cancel). */
    'mailer.email.cancel': { payload: messageId, reply: messageReply },
    /** Vote (posting key of `account`); acknowledged once recorded: `{action_id, state}`. */
    'signer.vote.cast': { payload: voteAction, reply: actionReply },
    /** Post or reply (posting key); root posts 5 min apart, replies 3 s apart per account. */
    'signer.comment.post': { payload: commentAction, reply: actionReply },
    /** Transfer STEEM or SBD (active key). */
    'signer.transfer.send': { payload: transferAction, reply: actionReply },
    /** custom_json (posting key by default, `auth: 'active'` for the active key). */
    'signer.custom_json.send': { payload: customJsonAction, reply: actionReply },
    /** An action's state, by the idempotency key it was sent with. */
    'signer.action.get': { payload: z.object({ key: z.string().min(1) }), reply: actionState },
    /**
     * The operator's recovery hook for a failed action whose failure may pass (retryable: RC, an
     * expiry after its last signing): sign it again with a fresh budget (the console's Retry).
     */
    'signer.action.retry': { payload: z.object({ action_id: z.string().min(1) }), reply: actionReply },
    /** The accounts the signer holds keys for, with their roles (a bot's start-up check), and whether it is live. */
    'signer.key.list': { payload: z.object({}), reply: keyList },
    /** Deliver to a disabled endpoint again, from its stored cursor (the console's Enable). */
    'webhooks.endpoint.enable': {
      payload: z.object({ client: z.string().min(1), endpoint: z.string().min(1) }),
      reply: z.object({ client: z.string(), endpoint: z.string(), disabled: z.boolean() }),
    },
    /** Report the broadcaster's current block, head, LIB, lag and node health. */
    'broadcaster.status.get': {
      payload: z.object({}),
      reply: z.object({
        mode: z.enum(['irreversible', 'head']),
        current_block: z.number().int().nullable(),
        head_block: z.number().int().nullable(),
        irreversible_block: z.number().int().nullable(),
        lag_blocks: z.number().int().nullable(),
        lag_seconds: z.number().nullable(),
        nodes: z.array(nodeHealth),
        /** Why the stream is not advancing (no node answers, halted off the canonical chain, ...); null while it streams. */
        problem: z.string().nullable(),
      }),
    },
  },
  publishers: {
    broadcaster: [
      ...(Object.keys(commonOps) as Array<keyof typeof commonOps>),
      ...(Object.keys(otherOps) as Array<keyof typeof otherOps>),
      'block.applied',
      'block.reverted',
    ] as const,
    /** mailer-api: REST and bus intake. */
    mailer: ['email.queued', 'email.cancelled'] as const,
    /** SMTP delivery. */
    'mailer-worker': ['email.sent', 'email.failed', 'email.skipped'] as const,
    /** Chain actions' outcomes. */
    signer: ['transaction.confirmed', 'transaction.failed'] as const,
    /** Endpoints it gave up on, and events outside apps posted. */
    webhooks: ['endpoint.disabled', 'event.posted'] as const,
  },
});

export type Catalogue = typeof catalogue;
