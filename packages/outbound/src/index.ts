export type { LookupFunction } from './address-guard';
export {
  addressAllowed,
  addressBlocked,
  embeddedIpv4,
  guardedLookup,
  literalHostRefused,
  RefusedAddressError,
  urlHost,
  urlProblem,
} from './address-guard';
export type { OutboundFailure, OutboundOptions, OutboundResponse, OutboundResult } from './request';
export { outboundRequest } from './request';
export { standardSignature } from './sign';
