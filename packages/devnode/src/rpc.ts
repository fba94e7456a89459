/** JSON-RPC 2.0 errors in steemd's and jussi's shapes. */

export interface RpcError {
  code: number;
  message: string;
  data?: unknown;
}

export const rpcErrors = {
  parse: (): RpcError => ({ code: -32700, message: 'Parse Error' }),
  invalidRequest: (why: string): RpcError => ({ code: -32600, message: 'Invalid Request', data: { message: why } }),
  methodNotFound: (method: string): RpcError => ({ code: -32601, message: `Method not found: ${method}` }),
  invalidParams: (why: string): RpcError => ({ code: -32602, message: `Invalid parameters: ${why}` }),
  /** What steemd answers when a block number is not a uint64 (fixtures/invalid_input.json). */
  badUint: (): RpcError => ({ code: -32000, message: "Parse Error:Couldn't parse uint64_t" }),
  /** An FC exception from steemd (-32003), with its stack and format string. */
  fcAssert: (method: string): RpcError => ({
    code: -32003,
    message: 'Assert Exception:_db.head_block_num() > 0: Unable to acquire database lock',
    data: {
      code: 10,
      name: 'assert_exception',
      message: 'Assert Exception',
      stack: [
        {
          context: {
            level: 'error',
            file: 'database_api.cpp',
            line: 57,
            method,
            hostname: '',
            timestamp: new Date().toISOString().slice(0, 19),
          },
          format: '_db.head_block_num() > 0: Unable to acquire database lock',
          data: {},
        },
      ],
    },
  }),
  /** jussi's error for an upstream it could not read. */
  jussiUpstream: (): RpcError => ({
    code: 1100,
    message: 'Unable to decode upstream response',
    data: { error_id: '9b0d1a8e-4c2f-4a1b-8f3e-2d7c6b5a4e3f', jussi_request_id: '000000000000000' },
  }),
};

export const MAX_BATCH = 50;

/**
 * An FC exception as steemd answers it (-32003): `message` is the exception's description, a
 * colon, then the failed assertion and its text; `data` carries the name, code and stack.
 */
export function fcException(
  exception: { name: string; code: number; description: string },
  format: string,
  data: Record<string, unknown>,
  where: { file: string; line: number; method: string },
): RpcError {
  const text = format.replace(/\$\{(\w+)\}/g, (_, k: string) =>
    typeof data[k] === 'string' ? (data[k] as string) : JSON.stringify(data[k]),
  );
  return {
    code: -32003,
    message: `${exception.description}:${text}`,
    data: {
      code: exception.code,
      name: exception.name,
      message: exception.description,
      stack: [
        {
          context: { level: 'error', ...where, hostname: '', timestamp: new Date().toISOString().slice(0, 19) },
          format,
          data,
        },
      ],
    },
  };
}

const assertException = { name: 'assert_exception', code: 10, description: 'Assert Exception' };
const applyTrx = { file: 'database.cpp', line: 3324, method: '_apply_transaction' };

/**
 * steemd's rejections of a broadcast transaction, reconstructed from steemd's sources
 * (libraries/chain/database.cpp, libraries/protocol/transaction.cpp, plugins/rc): the same
 * assertion texts, exception names and codes.
 */
export const chainErrors = {
  duplicate: (id: string): RpcError =>
    fcException(
      assertException,
      '(skip & skip_transaction_dupe_check) || trx_idx.indices().get<by_trx_id>().find(trx_id) == trx_idx.indices().get<by_trx_id>().end(): Duplicate transaction check failed',
      { trx_ix: id },
      applyTrx,
    ),
  missingPosting: (account: string): RpcError =>
    fcException(
      { name: 'tx_missing_posting_auth', code: 3030000, description: 'missing required posting authority' },
      'Missing Posting Authority ${id}',
      { id: account },
      { file: 'transaction.cpp', line: 133, method: 'verify_authority' },
    ),
  missingActive: (account: string): RpcError =>
    fcException(
      { name: 'tx_missing_active_auth', code: 3010000, description: 'missing required active authority' },
      'Missing Active Authority ${id}',
      { id: account },
      { file: 'transaction.cpp', line: 160, method: 'verify_authority' },
    ),
  irrelevantSignature: (keys: string[]): RpcError =>
    fcException(
      { name: 'tx_irrelevant_sig', code: 3050000, description: 'irrelevant signature included' },
      'Unnecessary signature(s) detected',
      { remaining: keys },
      { file: 'transaction.cpp', line: 178, method: 'verify_authority' },
    ),
  postingMixed: (): RpcError =>
    fcException(assertException, 'required_active.size() == 0: ', {}, { file: 'transaction.cpp', line: 112, method: 'verify_authority' }),
  tapos: (prefix: number, expected: number): RpcError =>
    fcException(
      assertException,
      'trx.ref_block_prefix == tapos_block_summary.block_id._hash[1]: ',
      { 'trx.ref_block_prefix': prefix, tapos_block_summary: expected },
      applyTrx,
    ),
  expirationTooFar: (expiration: string, now: string): RpcError =>
    fcException(
      assertException,
      'trx.expiration <= now + fc::seconds(STEEM_MAX_TIME_UNTIL_EXPIRATION): ',
      { 'trx.expiration': expiration, now, max_til_exp: 3600 },
      applyTrx,
    ),
  expired: (expiration: string, now: string): RpcError =>
    fcException(assertException, 'now < trx.expiration: ', { now, 'trx.exp': expiration }, applyTrx),
  tooLarge: (size: number): RpcError =>
    fcException(
      assertException,
      'trx_size <= STEEM_MAX_TRANSACTION_SIZE: Transaction size ${size} exceeds the maximum ${max}',
      { size, max: 65536 },
      { file: 'database.cpp', line: 870, method: '_push_transaction' },
    ),
  rc: (account: string, needed: number): RpcError =>
    fcException(
      { name: 'plugin_exception', code: 4080000, description: 'plugin exception' },
      'Account: ${account} has ${rc_current} RC, needs ${rc_needed} RC. Please wait to transact, or power up STEEM.',
      { account, rc_needed: needed, rc_current: 0 },
      { file: 'rc_plugin.cpp', line: 222, method: 'use_account_rcs' },
    ),
  /** A transaction the serializer cannot read (unknown op, missing field, bad asset). */
  badTransaction: (why: string): RpcError => ({ code: -32000, message: `Parse Error:${why}` }),
  /** devnode-only: the chain it serves has no block left to include a transaction in. */
  chainEnded: (): RpcError =>
    fcException(
      assertException,
      'devnode: no block left to include the transaction in (start it with more --synthetic blocks)',
      {},
      applyTrx,
    ),
};
