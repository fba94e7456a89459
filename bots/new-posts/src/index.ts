import { createBot } from '@steem-bot/bot';
import { positionOf } from '@steem-bot/config';

// A post can be edited for as long as it exists, but edits of old posts are rare; remembering
// 30 days of posts (864,000 three-second blocks) bounds the table.
const KEEP_BLOCKS = 864_000;

/**
 * Logs the URL of every new root post: not replies (a parent author), not edits (a permlink
 * already seen, or a body sent as a diff patch).
 */
export const newPosts = createBot({
  name: 'new-posts',
  setup({ db }) {
    db.exec(
      'CREATE TABLE IF NOT EXISTS posts (author TEXT NOT NULL, permlink TEXT NOT NULL, position INTEGER NOT NULL, PRIMARY KEY (author, permlink)) WITHOUT ROWID',
    );
    db.exec('CREATE INDEX IF NOT EXISTS posts_position ON posts (position)');
  },
  on: {
    comment(op, { db, log, position }) {
      if (op.parent_author !== '') return; // a reply
      if (op.body.startsWith('@@ ')) return; // an edit, sent as a diff-match-patch patch
      db.prepare('INSERT OR IGNORE INTO posts (author, permlink, position) VALUES (?, ?, ?)').run(op.author, op.permlink, position);
      const first = db.prepare('SELECT position FROM posts WHERE author = ? AND permlink = ?').pluck().get(op.author, op.permlink);
      if (first !== position) return; // an edit: the post was first seen at another position
      log.info({ author: op.author, permlink: op.permlink }, `new post: https://steemit.com/@${op.author}/${op.permlink}`);
    },
    'block.applied'(block, { db }) {
      if (block.block_num % 1200 === 0)
        db.prepare('DELETE FROM posts WHERE position < ?').run(positionOf(Math.max(0, block.block_num - KEEP_BLOCKS), 0));
    },
  },
});
