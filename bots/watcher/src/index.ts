import { createBot, type Mail } from '@steem-bot/bot';
import { emailAddress, variable, variableSchemas } from '@steem-bot/config';

// `@name` where name is a Steem account name (3-16 chars), not part of an email address or URL.
const MENTION = /(?:^|[^\w@./-])@([a-z][a-z0-9-.]{1,14}[a-z0-9])(?![\w-]|\.[a-z])/g;

/** The watched accounts a body mentions, each once. */
export function mentionsIn(body: string, watched: ReadonlySet<string>): string[] {
  const found = new Set<string>();
  for (const match of body.matchAll(MENTION)) if (watched.has(match[1] as string)) found.add(match[1] as string);
  return [...found];
}

export interface WatcherEmail {
  subject: string;
  text: string;
}

type Op = Record<string, unknown>;
const str = (v: unknown): string => (typeof v === 'string' ? v : '');

/**
 * The emails one op calls for: an incoming transfer to a watched account; a reply to one (not
 * by itself); a mention of one (not by itself, not the account replied to). Edits, sent as
 * diff patches, call for none: their mentions were announced with the original.
 */
export function emailsFor(name: 'transfer' | 'comment', op: Op, watched: ReadonlySet<string>): WatcherEmail[] {
  if (name === 'transfer') {
    const [from, to, amount] = [str(op.from), str(op.to), str(op.amount)];
    if (!watched.has(to)) return [];
    return [
      {
        subject: `@${to} received ${amount} from @${from}`,
        text: `@${from} sent ${amount} to @${to} in block ${String(op.block_num)}.\nMemo: ${str(op.memo)}`,
      },
    ];
  }
  const [author, parent, body] = [str(op.author), str(op.parent_author), str(op.body)];
  if (body.startsWith('@@ ')) return [];
  const url = `https://steemit.com/@${author}/${str(op.permlink)}`;
  const replyTo = parent !== author && watched.has(parent) ? parent : undefined;
  const emails: WatcherEmail[] = [];
  if (replyTo)
    emails.push({
      subject: `@${author} replied to @${replyTo}`,
      text: `@${author} replied to @${replyTo}/${str(op.parent_permlink)}:\n\n${body}\n\n${url}`,
    });
  for (const mentioned of mentionsIn(body, watched)) {
    if (mentioned !== author && mentioned !== replyTo)
      emails.push({ subject: `@${author} mentioned @${mentioned}`, text: `@${author} mentioned @${mentioned}:\n\n${body}\n\n${url}` });
  }
  return emails;
}

const ACCOUNT = /^[a-z][a-z0-9-.]{1,14}[a-z0-9]$/;

/** The watcher's own variables; without them it idles (see the bot SDK). */
export const watcherVariables = {
  WATCHER_ACCOUNTS: variable(
    'Comma-separated accounts the watcher bot watches (transfers in, replies, mentions).',
    undefined,
    variableSchemas.list
      .refine((names) => names.length > 0, 'at least one account name')
      .refine((names) => names.every((n) => ACCOUNT.test(n)), 'Steem account names (lower-case, 3-16 characters)'),
  ),
  WATCHER_EMAIL: variable('Where the watcher bot sends its emails.', undefined, emailAddress),
};

async function notify(emails: WatcherEmail[], to: string, mail: Mail, log: { info(msg: string): void }): Promise<void> {
  for (const email of emails) {
    log.info(`${email.subject}: emailing`);
    await mail.send({ to, ...email });
  }
}

/**
 * Emails WATCHER_EMAIL about incoming transfers, replies and mentions of the WATCHER_ACCOUNTS:
 * one email per event and account, never a second one for a replayed op.
 */
export const watcher = createBot({
  name: 'watcher',
  variables: watcherVariables,
  setup: ({ vars }) => ({ watched: new Set(vars.WATCHER_ACCOUNTS) as ReadonlySet<string>, to: vars.WATCHER_EMAIL }),
  on: {
    transfer: (op, { mail, log, state }) => notify(emailsFor('transfer', op, state.watched), state.to, mail, log),
    comment: (op, { mail, log, state }) => notify(emailsFor('comment', op, state.watched), state.to, mail, log),
  },
});
