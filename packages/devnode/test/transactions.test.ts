import steem from 'steem';

import { DevNode, type FaultSpec, parseFault } from '../src';
import { call, rpc } from './helpers';
import { type Signed, signFast } from './sign';

type Op = [string, Record<string, unknown>];
// eslint-disable-next-line @typescript-eslint/no-require-imports
const auth = require('steem/lib/auth') as { toWif(name: string, password: string, role: string): string };

const TEST_KEY = '5JufocMGFc1KCxbsVba9MHyi5XfFd1CCdzXjFKGvsSstRP6e4h3';

// The first test signs with steem-js (seconds per signature inside jest on a busy machine); the
// others sign with ./sign (same bytes, @noble/secp256k1's ECDSA).
jest.setTimeout(60_000);
const OTHER_KEY = auth.toWif('someone', 'else', 'active');

const vote = (voter = 'alice'): Op => ['vote', { voter, author: 'bob', permlink: 'a-post', weight: 10000 }];
const transfer = (from = 'alice', memo = 'thanks'): Op => ['transfer', { from, to: 'bob', amount: '1.000 STEEM', memo }];

interface SignOptions {
  key?: string | string[];
  /** Seconds of chain time after the head block. */
  expiresIn?: number;
  prefix?: number;
}

/** Sign as steem-js's broadcast does (TaPoS from the last irreversible block, expiration from chain time), with ./sign. */
async function sign(node: DevNode, ops: Op[], options: SignOptions = {}): Promise<Signed> {
  const props = (await rpc(node.url, call('condenser_api.get_dynamic_global_properties', []))).json as {
    result: { last_irreversible_block_num: number; time: string };
  };
  const lib = props.result.last_irreversible_block_num;
  const block = (await rpc(node.url, call('condenser_api.get_block_header', [lib + 1]))).json as { result: { previous: string } | null };
  const id = block.result?.previous ?? (node.chain.block(lib)?.block_id as string);
  const expiration = new Date(Date.parse(`${props.result.time}Z`) + (options.expiresIn ?? 600) * 1000).toISOString().slice(0, 19);
  return signFast(
    {
      ref_block_num: lib & 0xffff,
      ref_block_prefix: options.prefix ?? Buffer.from(id, 'hex').readUInt32LE(4),
      expiration,
      operations: ops,
      extensions: [],
    },
    typeof options.key === 'object' ? options.key : [options.key ?? TEST_KEY],
  );
}

async function broadcast(node: DevNode, trx: Signed, method = 'condenser_api.broadcast_transaction'): Promise<Record<string, unknown>> {
  return (await rpc(node.url, call(method, [trx]))).json as Record<string, unknown>;
}

/**
 * Find `trx_id` in the blocks produced from now on, producing up to `blocks` more (the test's
 * clock moves the chain); return that block's number and the transaction's ops.
 */
async function waitIncluded(node: DevNode, trxId: string, blocks = 3): Promise<{ block: number; ops: Op[] }> {
  let from = node.chain.head();
  for (let i = 0; i <= blocks; i++) {
    const head = node.chain.head();
    for (; from <= head; from++) {
      const res = (await rpc(node.url, call('condenser_api.get_block', [from]))).json as {
        result: { transactions: Array<{ transaction_id: string; operations: Op[] }> };
      };
      const trx = res.result.transactions.find((t) => t.transaction_id === trxId);
      if (trx) return { block: from, ops: trx.operations };
    }
    clock.advance(1);
  }
  throw new Error(`${trxId} not included within ${blocks} blocks`);
}

const findTransaction = async (node: DevNode, id: string): Promise<{ status: string; block_num?: number }> =>
  ((await rpc(node.url, call('transaction_status_api.find_transaction', { transaction_id: id }))).json as { result: { status: string } })
    .result;

const idOf = (trx: Signed): string => {
  // The id a node derives: sha256 of the serialized transaction without signatures, 20 bytes.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { ops } = require('steem/lib/auth/serializer') as {
    ops: { transaction: { toBuffer(t: unknown): Buffer; fromObject(t: unknown): unknown } };
  };
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { createHash } = require('node:crypto') as typeof import('node:crypto');
  return createHash('sha256')
    .update(ops.transaction.toBuffer(ops.transaction.fromObject(trx)))
    .digest('hex')
    .slice(0, 40);
};

/** The nodes' clock: the chain moves only when a test says so (signing is slow on a busy machine). */
const clock = {
  t: 0,
  advance(blocks: number): void {
    this.t += blocks * 3000;
  },
  /** Run `fn` while a block is produced every 20 ms (for synchronous broadcasts, which wait for one). */
  async ticking<T>(fn: () => Promise<T>): Promise<T> {
    const timer = setInterval(() => clock.advance(1), 20);
    try {
      return await fn();
    } finally {
      clearInterval(timer);
    }
  },
};

async function withNode(faults: FaultSpec[], fn: (node: DevNode) => Promise<void>): Promise<void> {
  // The head starts at the last real block, synthetic ones follow as the test's clock moves.
  clock.t = Date.now();
  const node = await DevNode.start({
    intervalMs: 3000,
    initialBlocks: 1000,
    synthetic: 3000,
    opsPerBlock: [1, 3],
    faults,
    now: () => clock.t,
  });
  try {
    await fn(node);
  } finally {
    await node.stop();
  }
}

const errorOf = (answer: Record<string, unknown>): { code: number; message: string; data: { name: string } } =>
  answer.error as { code: number; message: string; data: { name: string } };

describe('devnode accepts transactions', () => {
  test('steem.broadcast.voteAsync (steem-js end to end): included in the next block with its id, found by find_transaction', () =>
    withNode([], async (node) => {
      steem.api.setOptions({ url: node.url });
      const head = node.chain.head();
      const result = (await clock.ticking(() => steem.broadcast.voteAsync(TEST_KEY, 'alice', 'bob', 'a-post', 10000))) as {
        id: string;
        block_num: number;
        trx_num: number;
        expired: boolean;
      };
      expect(result.expired).toBe(false);
      expect(result.block_num).toBeGreaterThan(head);
      expect(result.block_num).toBeLessThanOrEqual(node.chain.head());
      const block = node.chain.block(result.block_num);
      expect(block?.transaction_ids[result.trx_num]).toBe(result.id);
      expect(block?.transactions[result.trx_num]?.operations).toEqual([
        { type: 'vote_operation', value: { voter: 'alice', author: 'bob', permlink: 'a-post', weight: 10000 } },
      ]);
      const found = await findTransaction(node, result.id);
      expect(found).toEqual({ status: expect.stringMatching(/^within_(reversible|irreversible)_block$/), block_num: result.block_num });
    }));

  test('a transfer through condenser_api.broadcast_transaction is in the next block: get_block and get_ops_in_block carry it with its trx_id', () =>
    withNode([], async (node) => {
      const trx = await sign(node, [transfer()]);
      const head = node.chain.head();
      expect(await broadcast(node, trx)).toMatchObject({ result: {} });
      expect((await findTransaction(node, idOf(trx))).status).toMatch(/within_mempool|within_reversible_block/);
      const { block, ops } = await waitIncluded(node, idOf(trx));
      expect(block).toBe(head + 1);
      expect(ops).toEqual([transfer()]);
      const inBlock = (await rpc(node.url, call('condenser_api.get_ops_in_block', [block, false]))).json as {
        result: Array<{ trx_id: string; op: Op }>;
      };
      expect(inBlock.result.filter((o) => o.trx_id === idOf(trx)).map((o) => o.op)).toEqual([transfer()]);
      expect(await findTransaction(node, idOf(trx))).toEqual({ status: 'within_reversible_block', block_num: block });
    }));

  test('network_broadcast_api.broadcast_transaction {trx} and broadcast_transaction_synchronous {id, block_num, trx_num, expired}', () =>
    withNode([], async (node) => {
      const a = await sign(node, [vote('carol')]);
      expect((await rpc(node.url, call('network_broadcast_api.broadcast_transaction', { trx: a, max_block_age: -1 }))).json).toMatchObject({
        result: {},
      });
      await waitIncluded(node, idOf(a));
      const b = await sign(node, [transfer('dave')]);
      const sync = (await clock.ticking(() => broadcast(node, b, 'condenser_api.broadcast_transaction_synchronous'))).result as Record<
        string,
        unknown
      >;
      expect(sync).toEqual({ id: idOf(b), block_num: expect.any(Number), trx_num: expect.any(Number), expired: false });
      expect(node.chain.block(sync.block_num as number)?.transaction_ids[sync.trx_num as number]).toBe(idOf(b));
    }));

  test("each bad transaction gets steemd's error", () =>
    withNode([], async (node) => {
      const wrongActive = errorOf(await broadcast(node, await sign(node, [transfer()], { key: OTHER_KEY })));
      expect(wrongActive.code).toBe(-32003);
      expect(wrongActive.message).toBe('missing required active authority:Missing Active Authority alice');
      expect(wrongActive.data.name).toBe('tx_missing_active_auth');

      const wrongPosting = errorOf(await broadcast(node, await sign(node, [vote()], { key: OTHER_KEY })));
      expect(wrongPosting.message).toBe('missing required posting authority:Missing Posting Authority alice');

      const custom = ['custom_json', { required_auths: ['alice'], required_posting_auths: [], id: 'x', json: '{}' }] as Op;
      expect(errorOf(await broadcast(node, await sign(node, [custom], { key: OTHER_KEY }))).message).toMatch(
        /Missing Active Authority alice/,
      );

      const tapos = errorOf(await broadcast(node, await sign(node, [vote()], { prefix: 12345 })));
      expect(tapos.message).toBe('Assert Exception:trx.ref_block_prefix == tapos_block_summary.block_id._hash[1]: ');

      const expired = errorOf(await broadcast(node, await sign(node, [vote()], { expiresIn: -3 })));
      expect(expired.message).toBe('Assert Exception:now < trx.expiration: ');
      const tooFar = errorOf(await broadcast(node, await sign(node, [vote()], { expiresIn: 3700 })));
      expect(tooFar.message).toBe('Assert Exception:trx.expiration <= now + fc::seconds(STEEM_MAX_TIME_UNTIL_EXPIRATION): ');

      const big = [
        'custom_json',
        { required_auths: [], required_posting_auths: ['alice'], id: 'x', json: JSON.stringify('y'.repeat(70_000)) },
      ] as Op;
      expect(errorOf(await broadcast(node, await sign(node, [big]))).message).toMatch(/Transaction size \d+ exceeds the maximum 65536/);

      const twice = await sign(node, [vote()], { key: [TEST_KEY, OTHER_KEY] });
      const irrelevant = errorOf(await broadcast(node, twice));
      expect(irrelevant.message).toBe('irrelevant signature included:Unnecessary signature(s) detected');
      expect(irrelevant.data.name).toBe('tx_irrelevant_sig');

      const ok = await sign(node, [vote('erin')]);
      expect(await broadcast(node, ok)).toMatchObject({ result: {} });
      const dup = errorOf(await broadcast(node, ok));
      expect(dup.message).toMatch(/: Duplicate transaction check failed$/);
      expect(node.chain.faults).toEqual([]);
    }));

  test('fault drop: accepted, never included; find_transaction says within_mempool, then expired; the synchronous form answers expired: true', () =>
    withNode([{ kind: 'drop' }], async (node) => {
      const trx = await sign(node, [transfer()], { expiresIn: 60 });
      expect(await broadcast(node, trx)).toMatchObject({ result: {} });
      expect((await findTransaction(node, idOf(trx))).status).toBe('within_mempool');
      const sync = await sign(node, [vote()], { expiresIn: 60 });
      const started = node.chain.head();
      expect((await clock.ticking(() => broadcast(node, sync, 'condenser_api.broadcast_transaction_synchronous'))).result).toEqual({
        id: idOf(sync),
        block_num: -1,
        trx_num: -1,
        expired: true,
      });
      // It answered once the expiration had passed (20 blocks of 3 s), not before.
      expect(node.chain.head() - started).toBeGreaterThanOrEqual(20);
      expect((await findTransaction(node, idOf(trx))).status).toMatch(/^expired_/);
      await expect(waitIncluded(node, idOf(trx))).rejects.toThrow(/not included/);
      expect(node.stats.faults.drop).toBe(2);
    }));

  test('faults accept-timeout and accept-reset: the client gets no answer, yet the transaction is included', async () => {
    await withNode([{ kind: 'accept-timeout' }], async (node) => {
      const trx = await sign(node, [transfer()]);
      await expect(
        fetch(node.url, {
          method: 'POST',
          body: JSON.stringify(call('condenser_api.broadcast_transaction', [trx])),
          signal: AbortSignal.timeout(400),
        }),
      ).rejects.toThrow(/abort|timeout/i);
      await waitIncluded(node, idOf(trx));
    });
    await withNode([{ kind: 'accept-reset', method: 'broadcast' }], async (node) => {
      const trx = await sign(node, [transfer()]);
      await expect(broadcast(node, trx)).rejects.toThrow(/fetch failed/);
      await waitIncluded(node, idOf(trx));
      expect(node.stats.faults['accept-reset']).toBe(1);
      // Rebroadcasting the same transaction after the reset: steemd's duplicate error.
      node.setFaults([]);
      expect(errorOf(await broadcast(node, trx)).message).toMatch(/Duplicate transaction check failed$/);
    });
  });

  test('fault expire: the synchronous broadcast answers expired: true at once and nothing is included', () =>
    withNode([{ kind: 'expire' }], async (node) => {
      const trx = await sign(node, [vote()]);
      expect((await broadcast(node, trx, 'condenser_api.broadcast_transaction_synchronous')).result).toEqual({
        id: idOf(trx),
        block_num: -1,
        trx_num: -1,
        expired: true,
      });
      // At once: long before the transaction's expiration in chain time.
      expect(node.chain.timeOf(node.chain.head())).toBeLessThan(Date.parse(`${trx.expiration}Z`) - 300_000);
      await expect(waitIncluded(node, idOf(trx))).rejects.toThrow(/not included/);
    }));

  test('fault rc: rejected with the RC error for that account only; rc_api.find_rc_accounts shows no mana', () =>
    withNode([{ kind: 'rc', account: 'alice' }], async (node) => {
      const rc = errorOf(await broadcast(node, await sign(node, [transfer('alice')])));
      expect(rc.message).toMatch(/^plugin exception:Account: alice has 0 RC, needs \d+ RC\. Please wait to transact, or power up STEEM\.$/);
      expect(await broadcast(node, await sign(node, [transfer('bob')]))).toMatchObject({ result: {} });
      const accounts = (await rpc(node.url, call('rc_api.find_rc_accounts', { accounts: ['alice', 'bob'] }))).json as {
        result: { rc_accounts: Array<{ account: string; rc_manabar: { current_mana: string }; max_rc: string }> };
      };
      expect(accounts.result.rc_accounts.map((a) => [a.account, a.rc_manabar.current_mana])).toEqual([
        ['alice', '0'],
        ['bob', accounts.result.rc_accounts[1]?.max_rc],
      ]);
    }));

  test('fault duplicate: the answer is the duplicate error, but the transaction is in (it came through another node)', () =>
    withNode([{ kind: 'duplicate' }], async (node) => {
      const trx = await sign(node, [transfer()]);
      expect(errorOf(await broadcast(node, trx)).message).toMatch(/Duplicate transaction check failed$/);
      const { block } = await waitIncluded(node, idOf(trx));
      expect(await findTransaction(node, idOf(trx))).toEqual({ status: 'within_reversible_block', block_num: block });
    }));

  test('the CLI form parses the broadcast faults', () => {
    expect(parseFault('accept-reset,rate=0.2,method=broadcast')).toEqual({ kind: 'accept-reset', rate: 0.2, method: 'broadcast' });
    expect(parseFault('rc,account=alice,forMs=5000')).toEqual({ kind: 'rc', account: 'alice', forMs: 5000 });
    for (const kind of ['drop', 'accept-timeout', 'expire', 'duplicate']) expect(parseFault(kind)).toEqual({ kind });
  });
});
