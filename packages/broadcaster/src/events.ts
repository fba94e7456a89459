import type { ChainBlock } from './chain-types';

/** Positions: block number * 1,000,000 + the op's index in the block; block.applied takes 999,999. */
export const POSITIONS_PER_BLOCK = 1_000_000;
export const APPLIED_INDEX = POSITIONS_PER_BLOCK - 1;

export const blockOfPosition = (pos: number): number => Math.floor(pos / POSITIONS_PER_BLOCK);
export const positionOf = (block: number, index: number): number => block * POSITIONS_PER_BLOCK + index;

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
