import { AppError } from './errors';

/**
 * Positions of the broadcaster's stream: `block * 1,000,000 + index in block`. Ops take their
 * index in the block (0, 1, ...); `block.applied` takes the last index, so it sorts after every op
 * of its block. The one place that knows the scheme: every package, script and test uses these.
 */
export const POSITIONS_PER_BLOCK = 1_000_000;

/** The index of a block's `block.applied` event: the last position of the block. */
export const APPLIED_INDEX = POSITIONS_PER_BLOCK - 1;

/** The position of the op at `index` in block `block` (throws ERR_BUS_POSITION outside the scheme). */
export function positionOf(block: number, index: number): number {
  if (!Number.isSafeInteger(block) || block < 0 || !Number.isInteger(index) || index < 0 || index > APPLIED_INDEX) {
    throw new AppError('ERR_BUS_POSITION', `no position for block ${block}, index ${index}`);
  }
  const pos = block * POSITIONS_PER_BLOCK + index;
  if (!Number.isSafeInteger(pos)) throw new AppError('ERR_BUS_POSITION', `block ${block} is beyond the position scheme`);
  return pos;
}

/** The position of block `block`'s `block.applied`: the checkpoint of a block fully handled. */
export const appliedPosition = (block: number): number => positionOf(block, APPLIED_INDEX);

/** The block number of a position. */
export const blockOfPosition = (pos: number): number => Math.floor(pos / POSITIONS_PER_BLOCK);

/** The index in its block of a position. */
export const indexOfPosition = (pos: number): number => pos % POSITIONS_PER_BLOCK;
