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
