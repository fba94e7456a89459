export type { ApiBlock, ApiTransaction, CondenserBlock, CondenserOp, CondenserTransaction } from './convert';
export { blockNumFromId, condenserBlock, condenserBlockJson, condenserOp, legacyAsset, naiAsset, opsInBlock, toLegacy } from './convert';
export type { DevNodeOptions } from './devnode';
export { DevNode } from './devnode';
export type { FaultKind, FaultSpec } from './faults';
export { FAULT_KINDS, parseFault } from './faults';
export { FIXTURES, loadRealBlocks } from './fixtures';
export type { SinkMessage, SmtpFault, SmtpSinkOptions } from './smtp-sink';
export { SmtpSink } from './smtp-sink';
