import { createBot, type Mail } from '@steem-bot/bot';
import { AppError } from '@steem-bot/config';

// `@name` where name is a Steem account name (3-16 chars), not part of an email address or URL.
const MENTION = /(?:^|[^\w@./-])@([a-z][a-z0-9-.]{1,14}[a-z0-9])(?![\w-]|\.[a-z])/g;

/** The watched accounts a body mentions, each once. */
export function mentionsIn(body: string, watched: ReadonlySet<string>): string[] {
  const found = new Set<string>();
  for (const match of body.matchAll(MENTION)) if (watched.has(match[1] as string)) found.add(match[1] as string);
  return [...found];
}

let watched: ReadonlySet<string> = new Set();
let to = '';

const notify = (mail: Mail, subject: string, text: string): Promise<unknown> => mail.send({ to, subject, text });

/**
 * Emails WATCHER_EMAIL about incoming transfers, replies and mentions of the WATCHER_ACCOUNTS:
 * one email per event and account, never a second one for a replayed op.
 */
export const watcher = createBot({
  name: 'watcher',
  setup({ config }) {
    const problems = [
      config.WATCHER_ACCOUNTS.length === 0 ? 'WATCHER_ACCOUNTS (the accounts to watch)' : '',
      config.WATCHER_EMAIL === '' ? 'WATCHER_EMAIL (where to send the emails)' : '',
    ].filter(Boolean);
    if (problems.length > 0) throw new AppError('ERR_CONFIG_INVALID', `the watcher needs ${problems.join(' and ')}`);
    watched = new Set(config.WATCHER_ACCOUNTS);
    to = config.WATCHER_EMAIL;
  },
  on: {
    async transfer(op, { mail, log }) {
      if (!watched.has(op.to)) return;
      log.info(`transfer of ${op.amount} from @${op.from} to @${op.to}: emailing`);
      await notify(
        mail,
        `@${op.to} received ${op.amount} from @${op.from}`,
        `@${op.from} sent ${op.amount} to @${op.to} in block ${op.block_num}.\nMemo: ${op.memo}`,
      );
    },
    async comment(op, { mail, log }) {
      if (op.body.startsWith('@@ ')) return; // an edit: its mentions were announced with the original
      const url = `https://steemit.com/@${op.author}/${op.permlink}`;
      const replyTo = op.parent_author !== op.author && watched.has(op.parent_author) ? op.parent_author : undefined;
      if (replyTo) {
        log.info(`reply to @${replyTo} by @${op.author}: emailing`);
        await notify(
          mail,
          `@${op.author} replied to @${replyTo}`,
          `@${op.author} replied to @${replyTo}/${op.parent_permlink}:\n\n${op.body}\n\n${url}`,
        );
      }
      for (const name of mentionsIn(op.body, watched)) {
        if (name === op.author || name === replyTo) continue;
        log.info(`mention of @${name} by @${op.author}: emailing`);
        await notify(mail, `@${op.author} mentioned @${name}`, `@${op.author} mentioned @${name}:\n\n${op.body}\n\n${url}`);
      }
    },
  },
});
