export type { BackfillOptions } from './backfill';
export { Backfills } from './backfill';
export type { BroadcasterOptions } from './broadcaster';
export { Broadcaster, EXIT_OFF_CHAIN } from './broadcaster';
export type { ChainBlock, ChainProps } from './chain-types';
export { blockNumFromId, blockProblem } from './chain-types';
export type { Checkpoint } from './checkpoint';
export { CheckpointFile } from './checkpoint';
export { createBroadcaster } from './create';
export type { BlockEvent } from './events';
export { blockEvents } from './events';
export type { FetcherOptions, RangeOptions } from './fetcher';
export { BlockFetcher } from './fetcher';
export type { NodeHealth, NodeState, PoolOptions, RequestOptions } from './nodes';
export { AllNodesFailed, confirmedValue, NodePool } from './nodes';
export type { FailureKind, RpcCall } from './rpc';
export { DEFAULT_MAX_RESPONSE_BYTES, NodeFailure, rpcBatch } from './rpc';
// The position scheme lives in @steem-bot/config; re-exported for the broadcaster's users.
export { APPLIED_INDEX, blockOfPosition, positionOf, POSITIONS_PER_BLOCK } from '@steem-bot/config';
