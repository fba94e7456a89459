import { APPLIED_INDEX, positionOf } from '@steem-bot/config';

import type { ChainBlock } from './chain-types';

/** One event to publish for a block: an op (named by its type) or the closing block.applied. */
export interface BlockEvent {
  name: string;
  payload: Record<string, unknown>;
  /** The natural position (block, index); after a fork the broadcaster may publish it higher. */
  pos: number;
}

/** Every op of the block with its chain metadata at the top level, then block.applied. */
export function blockEvents(block: ChainBlock, num: number): BlockEvent[] {
  const events: BlockEvent[] = [];
  let index = 0;
  block.transactions.forEach((trx, trxIndex) => {
    trx.operations.forEach(([name, value], opIndex) => {
      events.push({
        name,
        pos: positionOf(num, index),
        payload: {
          ...value,
          block_num: num,
          block_id: block.block_id,
          timestamp: block.timestamp,
          trx_id: block.transaction_ids[trxIndex],
          trx_in_block: trxIndex,
          op_in_trx: opIndex,
          op_in_block: index,
        },
      });
      index++;
    });
  });
  events.push({
    name: 'block.applied',
    pos: positionOf(num, APPLIED_INDEX),
    payload: { block_num: num, block_id: block.block_id, timestamp: block.timestamp, op_count: index },
  });
  return events;
}
