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

/** The counts per type since the last digest, with the position of the last op counted. */
type Counts = { position: number; since: number; types: { [type: string]: number } };
/** Comments per author since the last digest, in one of AUTHOR_SHARDS keys. */
type Authors = { [author: string]: number };

/** A digest as sent: kept per task key, so a retried task re-sends the same one. */
type Report = { subject: string; body: string; ops: number };

const COUNTS = 'counts';
const REPORTS = 'report:';
const KEEP_REPORTS_MS = 30 * 86_400_000;
// Authors are spread over a fixed set of keys: a count rewrites one small value, not all of a
// day's authors, and the report still knows every key to read and reset. (packages/bot/src/legacy.ts
// shards the same way.)
const AUTHOR_SHARDS = 32;
const SHARDS = Array.from({ length: AUTHOR_SHARDS }, (_, i) => `authors:${i}`);

/** The key of `author`'s count. */
function authorShard(author: string): string {
  let h = 0;
  for (let i = 0; i < author.length; i++) h = (h * 31 + author.charCodeAt(i)) >>> 0;
  return SHARDS[h % AUTHOR_SHARDS] as string;
}

const fresh = (): Counts => ({ position: -1, since: Date.now(), types: {} });

/**
 * Counts ops per type and comment authors; on its daily `digest.report.send` task (from the
 * clock) emails the counts since the last digest. Counting is exactly-once: the counts keep the
 * position they counted up to and move with it (and the author's count) in one atomic update,
 * so a replayed op is not counted twice.
 */
async function count(op: Record<string, unknown>, { kv, name, position }: OpContext<OpName, DigestState>): Promise<void> {
  const author = name === 'comment' && typeof op.author === 'string' ? op.author : undefined;
  const shard = author === undefined ? undefined : authorShard(author);
  await kv.updateMany(shard === undefined ? [COUNTS] : [COUNTS, shard], (current) => {
    // `current` is the update's own copy: changed in place.
    const counts = (current[COUNTS] as Counts | undefined) ?? fresh();
    if (counts.position >= position) return {}; // counted before (a redelivery)
    counts.position = position;
    counts.types[name] = (counts.types[name] ?? 0) + 1;
    if (shard === undefined || author === undefined) return { [COUNTS]: counts };
    const authors = (current[shard] as Authors | undefined) ?? {};
    authors[author] = (authors[author] ?? 0) + 1;
    return { [COUNTS]: counts, [shard]: authors };
  });
}

/** The digest of `counts` and `authors`. */
function report(period: string, counts: Counts, authorCounts: Authors): Report {
  const types = Object.entries(counts.types).sort(([a, x], [b, y]) => y - x || (a < b ? -1 : 1));
  const authors = Object.entries(authorCounts)
    .sort(([a, x], [b, y]) => y - x || (a < b ? -1 : 1))
    .slice(0, TOP_AUTHORS);
  const ops = types.reduce((sum, [, n]) => sum + n, 0);
  const body = [
    `Steem ops since ${new Date(counts.since).toISOString()}: ${ops}`,
    '',
    'Per type:',
    ...types.map(([type, n]) => `  ${type.padEnd(28)} ${n}`),
    '',
    'Top authors (posts and comments):',
    ...(authors.length ? authors.map(([author, n]) => `  @${author.padEnd(20)} ${n}`) : ['  (none)']),
  ].join('\n');
  return { subject: `Steem ${period} digest: ${ops} ops`, body, ops };
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
  async setup({ kv, vars }): Promise<DigestState> {
    // Since when the first digest counts.
    await kv.update<Counts>(COUNTS, (current) => current ?? fresh());
    return { to: vars.DIGEST_EMAIL };
  },
  on: Object.fromEntries(chainOpNames.map((name) => [name, count])) as OpHandlers<DigestState>,
  tasks: {
    async 'digest.report.send'({ period }, { kv, mail, log, tid, key: taskKey, state: { to } }) {
      // One report per task key: a retried task re-sends the same report, never a second one.
      // The report and the reset of the counts are one atomic update.
      const key = `${REPORTS}${period}:${taskKey ?? tid}`;
      const after = await kv.updateMany([key, COUNTS, ...SHARDS], (current) => {
        if (current[key] !== undefined) return {};
        const counts = (current[COUNTS] as Counts | undefined) ?? fresh();
        const authors = Object.assign({}, ...SHARDS.map((shard) => current[shard] ?? {})) as Authors;
        const reset = Object.fromEntries(SHARDS.map((shard) => [shard, undefined]));
        return { ...reset, [key]: report(period, counts, authors), [COUNTS]: { ...fresh(), position: counts.position } };
      });
      const sent = after[key] as Report;
      await kv.prune(REPORTS, KEEP_REPORTS_MS);
      await mail.send({ to, subject: sent.subject, text: sent.body });
      log.info(`digest of ${sent.ops} ops sent to the mailer`);
      return { ops: sent.ops };
    },
  },
});
