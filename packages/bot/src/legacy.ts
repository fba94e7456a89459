import type { Json } from './store';
import type { SqliteBotFile } from './store-sqlite';

type Row = Record<string, unknown>;
type Entry = { key: string; value: Json; at: number };

/**
 * The tables the shipped bots created themselves through `ctx.db`, before `ctx.kv`: each bot's,
 * turned into the state keys its code now reads. Keys already in the state win.
 */
const LEGACY: Record<string, { tables: string[]; entries(all: (sql: string) => Row[], now: number): Entry[] }> = {
  digest: {
    tables: ['digest_state', 'op_counts', 'author_counts', 'reports'],
    entries(all, now) {
      const [state] = all('SELECT position, since FROM digest_state WHERE id = 1');
      const counts = {
        position: Number(state?.position ?? -1),
        since: Number(state?.since ?? now),
        types: Object.fromEntries(all('SELECT type, n FROM op_counts').map((r) => [String(r.type), Number(r.n)])),
      };
      const shards: Record<string, Record<string, number>> = {};
      for (const r of all('SELECT author, n FROM author_counts'))
        (shards[digestShard(String(r.author))] ??= {})[String(r.author)] = Number(r.n);
      const reports = all('SELECT key, subject, body, ops, created_at FROM reports').map((r) => ({
        key: `report:${String(r.key)}`,
        value: { subject: String(r.subject), body: String(r.body), ops: Number(r.ops) },
        at: Number(r.created_at),
      }));
      const authors = Object.entries(shards).map(([key, value]) => ({ key, value, at: now }));
      return [{ key: 'counts', value: counts, at: now }, ...authors, ...reports];
    },
  },
  'new-posts': {
    tables: ['posts'],
    entries: (all, now) =>
      all('SELECT author, permlink, position FROM posts').map((r) => ({
        key: `post:${String(r.author)}/${String(r.permlink)}`,
        value: Number(r.position),
        at: now,
      })),
  },
  tipper: {
    tables: ['answered'],
    entries: (all, now) =>
      all('SELECT author, permlink, position, action_id FROM answered').map((r) => ({
        key: `answered:${String(r.author)}/${String(r.permlink)}`,
        value: { position: Number(r.position), action_id: r.action_id === null ? null : String(r.action_id) },
        at: now,
      })),
  },
};

/** The digest's key for an author's count (as `authorShard` in bots/digest: its tests check they agree). */
function digestShard(author: string): string {
  let h = 0;
  for (let i = 0; i < author.length; i++) h = (h * 31 + author.charCodeAt(i)) >>> 0;
  return `authors:${h % 32}`;
}

/**
 * Move a shipped bot's own tables (from before `ctx.kv`) into its state, once, in one
 * transaction, and drop them: an upgraded digest keeps its counts, and new-posts and tipper keep
 * the posts they have seen (tipper would otherwise answer an edit of an answered post again).
 * Returns the number of state keys written; 0 when there is nothing to move.
 */
export function importLegacyState(file: SqliteBotFile, bot: string): number {
  const legacy = LEGACY[bot];
  if (!legacy) return 0;
  const { db } = file;
  const exists = (table: string): boolean =>
    db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(table) !== undefined;
  if (!legacy.tables.every(exists)) return 0;
  return db
    .transaction(() => {
      const entries = legacy.entries((sql) => db.prepare(sql).all() as Row[], Date.now());
      const insert = db.prepare('INSERT OR IGNORE INTO state (key, value, updated_at) VALUES (?, ?, ?)');
      let written = 0;
      for (const e of entries) written += insert.run(e.key, JSON.stringify(e.value), e.at).changes;
      for (const table of legacy.tables) db.exec(`DROP TABLE ${table}`);
      return written;
    })
    .immediate();
}
