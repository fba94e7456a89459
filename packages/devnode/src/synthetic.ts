import type { ApiBlock, ApiTransaction } from './convert';
import { blockId, prng, sha1 } from './random';

export interface SyntheticOptions {
  seed: number;
  /** Ops per synthetic block, inclusive range. */
  opsPerBlock: readonly [number, number];
}

type Op = ApiTransaction['operations'][number];
const steem = (milli: number): { amount: string; precision: number; nai: string } => ({ amount: String(milli), precision: 3, nai: '@@000000021' });

/**
 * Ops in the proportions of a busy Steem block: votes, comments (a third of them root posts),
 * custom_json (follows, reblogs), transfers, plus the real fixture ops for variety.
 */
function makeOp(rand: () => number, n: number, i: number, accounts: readonly string[], real: readonly Op[]): Op {
  const who = (): string => accounts[Math.floor(rand() * accounts.length)] as string;
  const r = rand();
  if (r < 0.4) return { type: 'vote_operation', value: { voter: who(), author: who(), permlink: `post-${n % 997}`, weight: 100 * Math.ceil(rand() * 100) } };
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
      value: { required_auths: [], required_posting_auths: [follower], id: 'follow', json: JSON.stringify(['follow', { follower, following: who(), what: ['blog'] }]) },
    };
  }
  if (r < 0.95) return { type: 'transfer_operation', value: { from: who(), to: who(), amount: steem(1 + Math.floor(rand() * 100_000)), memo: `memo ${n}/${i}` } };
  return real[Math.floor(rand() * real.length)] as Op;
}

/** Generates blocks after the real ones, deterministically from the seed and the block number. */
export class SyntheticBlocks {
  private readonly accounts: string[];
  private readonly realOps: Op[];

  constructor(
    private readonly options: SyntheticOptions,
    private readonly lastReal: ApiBlock,
    realBlocks: readonly ApiBlock[],
  ) {
    const ops = realBlocks.flatMap((b) => b.transactions.flatMap((t) => t.operations));
    this.realOps = ops.length > 0 ? ops : [{ type: 'vote_operation', value: { voter: 'a', author: 'b', permlink: 'c', weight: 1 } }];
    const names = new Set<string>(['steemit', 'alice', 'bob']);
    for (const op of ops) for (const k of ['author', 'voter', 'from', 'to', 'account', 'worker_account', 'publisher']) if (typeof op.value[k] === 'string') names.add(op.value[k] as string);
    this.accounts = [...names];
  }

  id(num: number, branch = ''): string {
    return blockId(num, sha1(branch, this.options.seed, num));
  }

  /** Block `num` (> the last real one); `branch` names an alternative fork of the same height. */
  block(num: number, previous: string, branch = ''): ApiBlock {
    const lastNum = Number.parseInt(this.lastReal.block_id.slice(0, 8), 16);
    const rand = prng(Number.parseInt(sha1(branch, this.options.seed, num).slice(0, 8), 16));
    const [min, max] = this.options.opsPerBlock;
    const count = min + Math.floor(rand() * (max - min + 1));
    const transactions: ApiTransaction[] = [];
    const ids: string[] = [];
    const expiration = new Date(Date.parse(`${this.lastReal.timestamp}Z`) + (num - lastNum) * 3000 + 600_000).toISOString().slice(0, 19);
    for (let i = 0; i < count; i++) {
      transactions.push({ ref_block_num: (num - 1) & 0xffff, ref_block_prefix: 0, expiration, operations: [makeOp(rand, num, i, this.accounts, this.realOps)], extensions: [], signatures: [] });
      ids.push(sha1('trx', branch, this.options.seed, num, i).slice(0, 40));
    }
    return {
      block_id: this.id(num, branch),
      previous,
      timestamp: new Date(Date.parse(`${this.lastReal.timestamp}Z`) + (num - lastNum) * 3000).toISOString().slice(0, 19),
      witness: this.accounts[num % this.accounts.length] as string,
      transaction_merkle_root: sha1('merkle', branch, num).slice(0, 40),
      extensions: [],
      witness_signature: '',
      signing_key: this.lastReal.signing_key,
      transaction_ids: ids,
      transactions,
    };
  }
}
