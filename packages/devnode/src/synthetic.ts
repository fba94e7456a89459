import { type ApiBlock, type ApiTransaction, deriveOp } from './convert';
import { blockId, prng, sha1 } from './random';

export interface SyntheticOptions {
  seed: number;
  /** Ops per synthetic block, inclusive range. */
  opsPerBlock: readonly [number, number];
}

type Op = ApiTransaction['operations'][number];
const steem = (milli: number): { amount: string; precision: number; nai: string } => ({
  amount: String(milli),
  precision: 3,
  nai: '@@000000021',
});

/**
 * Ops in the proportions of a busy Steem block: votes, comments (a third of them root posts),
 * custom_json (follows, reblogs), transfers, plus the real fixture ops for variety.
 */
function makeOp(rand: () => number, n: number, i: number, accounts: readonly string[], real: readonly Op[]): Op {
  const who = (): string => accounts[Math.floor(rand() * accounts.length)] as string;
  const r = rand();
  if (r < 0.4)
    return {
      type: 'vote_operation',
      value: { voter: who(), author: who(), permlink: `post-${n % 997}`, weight: 100 * Math.ceil(rand() * 100) },
    };
  if (r < 0.6) {
    const root = rand() < 0.34;
    return {
      type: 'comment_operation',
      value: {
        parent_author: root ? '' : who(),
        parent_permlink: root ? 'steem' : `post-${n % 997}`,
        author: who(),
        permlink: `synthetic-${n}-${i}`,
        title: root ? `Synthetic post ${n}/${i}` : '',
        body: `Synthetic body for block ${n}, op ${i}. Mentions @${who()} now and then.`,
        json_metadata: '{"tags":["steem"]}',
      },
    };
  }
  if (r < 0.85) {
    const follower = who();
    return {
      type: 'custom_json_operation',
      value: {
        required_auths: [],
        required_posting_auths: [follower],
        id: 'follow',
        json: JSON.stringify(['follow', { follower, following: who(), what: ['blog'] }]),
      },
    };
  }
  if (r < 0.95)
    return {
      type: 'transfer_operation',
      value: { from: who(), to: who(), amount: steem(1 + Math.floor(rand() * 100_000)), memo: `memo ${n}/${i}` },
    };
  return real[Math.floor(rand() * real.length)] as Op;
}

const POOL = 1024;

/**
 * Generates blocks after the real ones, deterministically from the seed and the block number.
 * Ops are drawn from a pool built once (shared objects, so renderings can be cached per op);
 * comments get a fresh, unique permlink so that every synthetic post is a new post.
 */
export class SyntheticBlocks {
  private readonly pool: Op[];

  constructor(
    private readonly options: SyntheticOptions,
    private readonly lastReal: ApiBlock,
    realBlocks: readonly ApiBlock[],
  ) {
    const ops = realBlocks.flatMap((b) => b.transactions.flatMap((t) => t.operations));
    const realOps = ops.length > 0 ? ops : [{ type: 'vote_operation', value: { voter: 'a', author: 'b', permlink: 'c', weight: 1 } }];
    const names = new Set<string>(['steemit', 'alice', 'bob']);
    for (const op of ops)
      for (const k of ['author', 'voter', 'from', 'to', 'account', 'worker_account', 'publisher'])
        if (typeof op.value[k] === 'string') names.add(op.value[k] as string);
    const accounts = [...names];
    const rand = prng(options.seed);
    this.pool = Array.from({ length: POOL }, (_, i) => makeOp(rand, i, 0, accounts, realOps));
  }

  id(num: number, branch = ''): string {
    return blockId(num, sha1(branch, this.options.seed, num));
  }

  /** Block `num` (> the last real one); `branch` names an alternative fork of the same height; `empty`: no ops. */
  block(num: number, previous: string, branch = '', empty = false): ApiBlock {
    const lastNum = Number.parseInt(this.lastReal.block_id.slice(0, 8), 16);
    const hash = sha1(branch, this.options.seed, num);
    const rand = prng(Number.parseInt(hash.slice(0, 8), 16));
    const [min, max] = this.options.opsPerBlock;
    const count = empty ? 0 : min + Math.floor(rand() * (max - min + 1));
    const time = Date.parse(`${this.lastReal.timestamp}Z`) + (num - lastNum) * 3000;
    const expiration = new Date(time + 600_000).toISOString().slice(0, 19);
    const transactions: ApiTransaction[] = [];
    const ids: string[] = [];
    for (let i = 0; i < count;) {
      const size = Math.min(count - i, 1 + Math.floor(rand() * 3)); // 1-3 ops per transaction
      const operations: Op[] = [];
      for (let k = 0; k < size; k++, i++) {
        const op = this.pool[Math.floor(rand() * POOL)] as Op;
        if (op.type !== 'comment_operation') operations.push(op);
        else {
          const permlink = `synthetic-${branch}${num}-${i}`;
          operations.push(deriveOp({ type: op.type, value: { ...op.value, permlink } }, op, op.value.permlink as string, permlink));
        }
      }
      transactions.push({ ref_block_num: (num - 1) & 0xffff, ref_block_prefix: 0, expiration, operations, extensions: [], signatures: [] });
      ids.push(hash.slice(0, 32) + transactions.length.toString(16).padStart(8, '0'));
    }
    return {
      block_id: blockId(num, hash),
      previous,
      timestamp: new Date(time).toISOString().slice(0, 19),
      witness: 'synthetic',
      transaction_merkle_root: hash,
      extensions: [],
      witness_signature: '',
      signing_key: this.lastReal.signing_key,
      transaction_ids: ids,
      transactions,
    };
  }
}
