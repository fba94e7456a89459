import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import {
  type ApiBlock,
  blockNumFromId,
  condenserBlock,
  condenserBlockJson,
  DevNode,
  FIXTURES,
  legacyAsset,
  loadRealBlocks,
  naiAsset,
  opsInBlock,
} from '../src';

const blocks = loadRealBlocks();
const fixture = (name: string): unknown => JSON.parse(readFileSync(join(FIXTURES, name), 'utf8'));

describe('block_api -> condenser_api rendering', () => {
  test('block 1,000,000 renders exactly as a real node served it (condenser_api.get_block)', () => {
    expect(condenserBlock(blocks[0] as ApiBlock)).toEqual(fixture('milion.json'));
  });

  test('every op type in the fixture gets its legacy name and legacy asset strings', () => {
    const seen = new Map<string, Record<string, unknown>>();
    for (const b of blocks) for (const t of condenserBlock(b).transactions) for (const [name, value] of t.operations) seen.set(name, value);
    expect([...seen.keys()].sort()).toEqual([
      'account_create',
      'account_witness_proxy',
      'account_witness_vote',
      'comment',
      'feed_publish',
      'pow',
      'transfer',
      'vote',
      'withdraw_vesting',
    ]);
    const text = JSON.stringify([...seen.values()]);
    expect(text).not.toMatch(/"nai"|_operation"|"[a-z_]*(hbd|hive)[a-z_]*":/);
    expect(seen.get('transfer')).toEqual({ amount: '10.000 STEEM', from: 'openledger', memo: '', to: 'register' });
    expect(seen.get('withdraw_vesting')?.vesting_shares).toMatch(/^\d+\.\d{6} VESTS$/);
    expect(seen.get('feed_publish')?.exchange_rate).toEqual({
      base: expect.stringMatching(/ SBD$/),
      quote: expect.stringMatching(/ STEEM$/),
    });
    expect(seen.get('pow')?.props).toHaveProperty('sbd_interest_rate');
  });

  test('transactions carry transaction_id, block_num and transaction_num, with the keys of a real condenser block', () => {
    const real = fixture('check_trx_hash_uniqness.json') as { transactions: Array<Record<string, unknown>> };
    const withTrx = blocks.find((b) => b.transactions.length > 0) as ApiBlock;
    const ours = condenserBlock(withTrx);
    expect(Object.keys(ours).sort()).toEqual(Object.keys(real).sort());
    expect(Object.keys(ours.transactions[0] as object).sort()).toEqual(Object.keys(real.transactions[0] as object).sort());
    expect(ours.transactions[0]).toMatchObject({
      transaction_id: withTrx.transaction_ids[0],
      block_num: blockNumFromId(withTrx.block_id),
      transaction_num: 0,
    });
  });

  test('get_ops_in_block entries have the shape a real Steem node serves', () => {
    const real = (fixture('condenser-get-ops-in-block-23035025.json') as Array<Record<string, unknown>>)[0] as Record<string, unknown>;
    const withTrx = blocks.find((b) => b.transactions.length > 0) as ApiBlock;
    const ours = opsInBlock(withTrx)[0] as Record<string, unknown>;
    expect(Object.keys(ours).sort()).toEqual(Object.keys(real).sort());
  });

  test('the fast JSON rendering equals the plain one, for real and synthetic blocks', async () => {
    const node = await DevNode.start({ intervalMs: 0, synthetic: 20 });
    try {
      for (const n of [1_000_000, 1_000_333, 1_000_999, 1_001_000, 1_001_019]) {
        const block = node.chain.block(n) as ApiBlock;
        expect(JSON.parse(condenserBlockJson(block))).toEqual(condenserBlock(block));
      }
    } finally {
      await node.stop();
    }
  });

  test('assets convert both ways, including precision 6 and small amounts', () => {
    expect(legacyAsset({ amount: '1', precision: 3, nai: '@@000000021' })).toBe('0.001 STEEM');
    expect(legacyAsset({ amount: '123456789', precision: 6, nai: '@@000000037' })).toBe('123.456789 VESTS');
    expect(naiAsset('1.000 SBD')).toEqual({ amount: '1000', precision: 3, nai: '@@000000013' });
    expect(naiAsset('0.000001 VESTS')).toEqual({ amount: '1', precision: 6, nai: '@@000000037' });
  });
});
