import { createHash, timingSafeEqual } from 'node:crypto';

import type { Bus } from '@steem-bot/bus';
import type { Catalogue } from '@steem-bot/config';
import { z } from 'zod';

/** What the page posts to /api/actions. */
export const actionRequest = z.discriminatedUnion('action', [
  z.object({ action: z.literal('replay'), bot: z.string().regex(/^[a-z][a-z0-9-]{0,31}$/), id: z.number().int().positive() }),
  z.object({ action: z.literal('discard'), bot: z.string().regex(/^[a-z][a-z0-9-]{0,31}$/), id: z.number().int().positive() }),
  z.object({ action: z.literal('retry'), id: z.string().min(1).max(100) }),
  z.object({ action: z.literal('cancel'), id: z.string().min(1).max(100) }),
  /** Enable a disabled webhook endpoint (webhooks.endpoint.enable). */
  z.object({ action: z.literal('enable'), client: z.string().min(1).max(64), endpoint: z.string().min(1).max(64) }),
  /** Retry a failed chain action (signer.action.retry); `id` is its action id. */
  z.object({ action: z.literal('retry-action'), id: z.string().min(1).max(100) }),
]);
export type ActionRequest = z.infer<typeof actionRequest>;

/**
 * The owning app's task an action goes through. A bot's `<bot>.deadletter.*` tasks are declared by
 * the bot SDK for every bot, not in the project's catalogue: the bot checks them.
 */
export function taskOf(request: ActionRequest): {
  name: string;
  payload: { id: number } | { id: string } | { client: string; endpoint: string } | { action_id: string };
} {
  if (request.action === 'enable')
    return { name: 'webhooks.endpoint.enable', payload: { client: request.client, endpoint: request.endpoint } };
  if (request.action === 'retry-action') return { name: 'signer.action.retry', payload: { action_id: request.id } };
  if (request.action === 'retry' || request.action === 'cancel')
    return { name: `mailer.email.${request.action}`, payload: { id: request.id } };
  return { name: `${request.bot}.deadletter.${request.action}`, payload: { id: request.id } };
}

/** Send the action's task to its owner; resolves with the owner's reply. */
export function runAction(bus: Pick<Bus<Catalogue>, 'sendByName'>, request: ActionRequest): Promise<unknown> {
  const { name, payload } = taskOf(request);
  // One attempt: the operator sees the answer (or the error) and decides.
  return bus.sendByName(name, payload, { attempts: 1, timeoutMs: 5_000 });
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** Constant-time comparison of the given token with the configured one. */
export function tokenMatches(given: string | undefined, expected: string): boolean {
  if (expected === '' || given === undefined || given === '') return false;
  return timingSafeEqual(digest(given), digest(expected));
}

const LOOPBACK = /^(127(?:\.\d{1,3}){3}|::1|\[::1\]|localhost)$/i;

/** Whether a host name or address is loopback (127.0.0.0/8, ::1, localhost). */
export const isLoopback = (host: string): boolean => LOOPBACK.test(host);
