import { createBot } from '@steem-bot/bot';

// A post can be edited for as long as it exists, but edits of old posts are rare; remembering
// the posts of the last 30 days bounds the state.
const KEEP_MS = 30 * 86_400_000;
const POST = 'post:';

/**
 * Logs the URL of every new root post: not replies (a parent author), not edits (a permlink
 * already seen, or a body sent as a diff patch).
 */
export const newPosts = createBot({
  name: 'new-posts',
  on: {
    async comment(op, { kv, log, position }) {
      if (op.parent_author !== '') return; // a reply
      if (op.body.startsWith('@@ ')) return; // an edit, sent as a diff-match-patch patch
      // The position the post was first seen at: this op's, unless an earlier op was the post.
      const first = await kv.update<number>(`${POST}${op.author}/${op.permlink}`, (seen) => seen ?? position);
      if (first !== position) return; // an edit: the post was first seen at another position
      log.info({ author: op.author, permlink: op.permlink }, `new post: https://steemit.com/@${op.author}/${op.permlink}`);
    },
    async 'block.applied'(block, { kv }) {
      if (block.block_num % 1200 === 0) await kv.prune(POST, KEEP_MS);
    },
  },
});
