import { createBot, type OpContext, type OpHandlers, type OpName } from '@steem-bot/bot';
import { chainOpNames, emailAddress, variable } from '@steem-bot/config';
import { z } from 'zod';

const TOP_AUTHORS = 10;

/** What the digest's handlers share (from `setup`). */
interface DigestState {
  to: string;
}

/** The digest's own variable; without it the digest idles (see the bot SDK). */
export const digestVariables = {
  DIGEST_EMAIL: variable('Where the digest bot sends its digest.', undefined, emailAddress),
};

/**
 * Counts ops per type and comment authors; on its daily `digest.report.send` task (from the
 * clock) emails the counts since the last digest. Counting is exactly-once: each count moves
 * with the position it counted, in one transaction, so a replayed op is not counted twice.
 */
function count(op: Record<string, unknown>, { db, name, position }: OpContext<OpName, DigestState>): void {
  db.transaction(() => {
    const counted = db.prepare('UPDATE digest_state SET position = ? WHERE id = 1 AND position < ?').run(position, position);
    if (counted.changes === 0) return;
    db.prepare('INSERT INTO op_counts (type, n) VALUES (?, 1) ON CONFLICT (type) DO UPDATE SET n = n + 1').run(name);
    if (name === 'comment' && typeof op.author === 'string') {
      db.prepare('INSERT INTO author_counts (author, n) VALUES (?, 1) ON CONFLICT (author) DO UPDATE SET n = n + 1').run(op.author);
    }
  })();
}

/** The digest's own task, declared here (not in `config`); the clock sends it by name. */
export const digestTasks = {
  /** Send the digest of the ops counted since the last one (fired by the clock). */
  'digest.report.send': {
    payload: z.object({ period: z.string().default('day') }),
    reply: z.object({ ops: z.number().int() }),
  },
};

export const digest = createBot({
  name: 'digest',
  variables: digestVariables,
  catalogue: { tasks: digestTasks },
  setup({ db, vars }): DigestState {
    db.exec(`
      CREATE TABLE IF NOT EXISTS digest_state (id INTEGER PRIMARY KEY CHECK (id = 1), position INTEGER NOT NULL, since INTEGER NOT NULL);
      INSERT OR IGNORE INTO digest_state (id, position, since) VALUES (1, -1, unixepoch() * 1000);
      CREATE TABLE IF NOT EXISTS op_counts (type TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS author_counts (author TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS reports (key TEXT PRIMARY KEY, subject TEXT NOT NULL, body TEXT NOT NULL, ops INTEGER NOT NULL, created_at INTEGER NOT NULL);
    `);
    return { to: vars.DIGEST_EMAIL };
  },
  on: Object.fromEntries(chainOpNames.map((name) => [name, count])) as OpHandlers<DigestState>,
  tasks: {
    async 'digest.report.send'({ period }, { db, mail, log, tid, key: taskKey, state: { to } }) {
      // One report per task key: a retried task re-sends the same report, never a second one.
      const key = `${period}:${taskKey ?? tid}`;
      type Report = { subject: string; body: string; ops: number };
      const report = db
        .transaction((): Report => {
          const existing = db.prepare('SELECT subject, body, ops FROM reports WHERE key = ?').get(key) as Report | undefined;
          if (existing) return existing;
          const types = db.prepare('SELECT type, n FROM op_counts ORDER BY n DESC, type').all() as Array<{ type: string; n: number }>;
          const authors = db.prepare('SELECT author, n FROM author_counts ORDER BY n DESC, author LIMIT ?').all(TOP_AUTHORS) as Array<{
            author: string;
            n: number;
          }>;
          const since = db.prepare('SELECT since FROM digest_state WHERE id = 1').pluck().get() as number;
          const ops = types.reduce((sum, t) => sum + t.n, 0);
          const body = [
            `Steem ops since ${new Date(since).toISOString()}: ${ops}`,
            '',
            'Per type:',
            ...types.map((t) => `  ${t.type.padEnd(28)} ${t.n}`),
            '',
            'Top authors (posts and comments):',
            ...(authors.length ? authors.map((a) => `  @${a.author.padEnd(20)} ${a.n}`) : ['  (none)']),
          ].join('\n');
          const subject = `Steem ${period} digest: ${ops} ops`;
          db.prepare('INSERT INTO reports (key, subject, body, ops, created_at) VALUES (?, ?, ?, ?, ?)').run(
            key,
            subject,
            body,
            ops,
            Date.now(),
          );
          db.exec('DELETE FROM op_counts; DELETE FROM author_counts;');
          db.prepare('UPDATE digest_state SET since = ? WHERE id = 1').run(Date.now());
          db.prepare('DELETE FROM reports WHERE created_at < ?').run(Date.now() - 30 * 86_400_000);
          return { subject, body, ops };
        })
        .immediate();
      await mail.send({ to, subject: report.subject, text: report.body });
      log.info(`digest of ${report.ops} ops sent to the mailer`);
      return { ops: report.ops };
    },
  },
});
