import { type CommentInput, createBot, type TransferInput } from '@steem-bot/bot';
import { variable } from '@steem-bot/config';
import { z } from 'zod';

const ACCOUNT = /^[a-z][a-z0-9-.]{1,14}[a-z0-9]$/;

/** The tipper's own variables; without TIPPER_ACCOUNT it idles (see the bot SDK). */
export const tipperVariables = {
  TIPPER_ACCOUNT: variable(
    'The account the tipper bot acts as; it answers posts and comments that mention @it. The signer must hold its key.',
    undefined,
    z.string().regex(ACCOUNT, 'a Steem account name (lower-case, 3-16 characters)'),
  ),
  TIPPER_MODE: variable(
    '`reply` (posting key: a thank-you reply to each mention) or `pay` (active key: TIPPER_AMOUNT to its author).',
    'reply',
    z.enum(['reply', 'pay'], { error: 'reply or pay' }),
  ),
  TIPPER_AMOUNT: variable(
    'What the tipper pays per mention in `pay` mode.',
    '0.001 STEEM',
    z.string().regex(/^\d+\.\d{3} (STEEM|SBD)$/, 'an amount like "0.001 STEEM" or "0.010 SBD"'),
  ),
};

/** Whether `body` mentions `@account` (not inside an email address or a longer name). */
export function mentions(body: string, account: string): boolean {
  const escaped = account.replace(/[.-]/g, '\\$&');
  return new RegExp(`(?:^|[^\\w@./-])@${escaped}(?![\\w-]|\\.[a-z])`).test(body);
}

type Op = { author: string; permlink: string; parent_author: string; body: string };

/** The action one comment op calls for: none for the tipper's own posts, edits and posts that do not mention it. */
export function actionFor(
  op: Op,
  settings: { account: string; mode: 'reply' | 'pay'; amount: string },
): { reply: CommentInput } | { pay: TransferInput } | undefined {
  if (op.author === settings.account || op.body.startsWith('@@ ') || !mentions(op.body, settings.account)) return undefined;
  if (settings.mode === 'pay')
    return {
      pay: { to: op.author, amount: settings.amount, memo: `Thanks for mentioning @${settings.account} in @${op.author}/${op.permlink}` },
    };
  return {
    reply: {
      parent_author: op.author,
      parent_permlink: op.permlink,
      // Deterministic, so a retried handler asks the signer for the same reply.
      permlink: `re-${op.author}-${op.permlink}`
        .toLowerCase()
        .replace(/[^a-z0-9-]/g, '-')
        .slice(0, 255),
      body: `Thanks for the mention, @${op.author}!`,
    },
  };
}

/** A post answered: the position of its first op, and the signer's action once sent. */
type Answered = { position: number; action_id: string | null };

/**
 * Answers every post or comment that mentions TIPPER_ACCOUNT: a reply, or (TIPPER_MODE=pay) a
 * transfer to its author. One action per post, not per edit; each goes through the signer, so it
 * is on chain at most once and, while the signer is in dry run (its default), only logged there.
 */
export const tipper = createBot({
  name: 'tipper',
  variables: tipperVariables,
  accounts: (vars) => [{ account: vars.TIPPER_ACCOUNT, roles: [vars.TIPPER_MODE === 'pay' ? 'active' : 'posting'] }],
  setup: ({ vars }) => ({ account: vars.TIPPER_ACCOUNT, mode: vars.TIPPER_MODE, amount: vars.TIPPER_AMOUNT }),
  on: {
    async comment(op, { kv, chain, log, position, state }) {
      const action = actionFor(op, state);
      if (!action) return;
      // The first op of a post decides; its edits (other positions) are not answered again.
      const key = `answered:${op.author}/${op.permlink}`;
      const first = await kv.update<Answered>(key, (answered) => answered ?? { position, action_id: null });
      if (first?.position !== position) return;
      const id = 'pay' in action ? await chain.transfer(action.pay) : await chain.comment(action.reply);
      await kv.set(key, { position, action_id: id });
      const what = `${'pay' in action ? `paying ${action.pay.amount} to` : 'replying to'} @${op.author}/${op.permlink}`;
      log.info({ action: id, author: op.author, permlink: op.permlink }, `${what} (signer action ${id})`);
      // Not awaited: the next ops need not wait for the chain (the signer never doubles the action anyway).
      chain.confirmed(id).then(
        (o) =>
          log.info(
            { action: id, trx_id: o.trx_id, block_num: o.block_num },
            o.state === 'confirmed'
              ? `${what}: confirmed on chain, transaction ${o.trx_id} in block ${o.block_num}`
              : `${what}: dry run, logged by the signer, not broadcast (SIGNER_LIVE=1 broadcasts)`,
          ),
        (err: unknown) =>
          (err as { code?: string }).code === 'ERR_BUS_CLOSED'
            ? log.info({ action: id }, `${what}: stopping before its outcome (the signer still carries it out)`)
            : log.warn({ err, action: id }, `${what}: not on chain`),
      );
    },
  },
});
