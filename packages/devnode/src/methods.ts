import type { Chain } from './chain';
import { type ApiBlock, condenserBlockJson, naiAsset, opsInBlock } from './convert';
import { type RpcError, rpcErrors } from './rpc';

/** Per-request data faults the handlers apply. */
export interface DataFaults {
  nullBlock: boolean;
  wrongBlock: boolean;
}

/** A method's result, already JSON (cached renderings are spliced in as they are). */
export type Result = { json: string } | { error: RpcError };

const json = (value: unknown): Result => ({ json: JSON.stringify(value) ?? 'null' });

/** The static part of get_dynamic_global_properties: a real answer from a Steem node. */
export interface GlobalProps {
  [key: string]: unknown;
}

/**
 * Public key of every devnode account's authorities: the key of
 * `steem.auth.toWif('devnode', 'devnode-test-password', 'posting')`, that is
 * 5JufocMGFc1KCxbsVba9MHyi5XfFd1CCdzXjFKGvsSstRP6e4h3 (a test key that guards nothing).
 */
export const DEVNODE_PUBLIC_KEY = 'STM5nadSiQ5QqtC3iRdZAUydHe3LiX9RmniTY6Z9uHQsoR1q7TwbB';

/** An account as condenser_api.get_accounts renders it, with the devnode test key everywhere. */
function testAccount(name: string): Record<string, unknown> {
  const authority = { weight_threshold: 1, account_auths: [], key_auths: [[DEVNODE_PUBLIC_KEY, 1]] };
  return { name, owner: authority, active: authority, posting: authority, memo_key: DEVNODE_PUBLIC_KEY, json_metadata: '' };
}

/** Serves the chain methods; renders each block once and keeps the JSON. */
export class Methods {
  private readonly rendered = new Map<string, string>();

  constructor(
    private readonly chain: Chain,
    private readonly staticProps: GlobalProps,
  ) {}

  call(method: string, params: unknown, faults: DataFaults): Result {
    switch (method) {
      case 'condenser_api.get_dynamic_global_properties':
        return json(this.props());
      case 'database_api.get_dynamic_global_properties':
        return json(this.databaseProps());
      case 'condenser_api.get_accounts': {
        const names = Array.isArray(params) && Array.isArray(params[0]) ? (params[0] as unknown[]) : undefined;
        if (!names || names.some((n) => typeof n !== 'string')) return { error: rpcErrors.invalidParams('expected [["account", ...]]') };
        return json(names.map((name) => testAccount(name as string)));
      }
      case 'condenser_api.get_block':
        return this.withBlockNum(params, faults, (block) => (block ? { json: this.condenserJson(block) } : json(null)));
      case 'condenser_api.get_block_header':
        return this.withBlockNum(params, faults, (b) =>
          json(
            b && {
              previous: b.previous,
              timestamp: b.timestamp,
              witness: b.witness,
              transaction_merkle_root: b.transaction_merkle_root,
              extensions: b.extensions,
            },
          ),
        );
      case 'condenser_api.get_ops_in_block': {
        if (Array.isArray(params) && params.length === 2 && typeof params[1] !== 'boolean')
          return { error: rpcErrors.invalidParams('only_virtual must be a boolean') };
        const onlyVirtual = Array.isArray(params) && params[1] === true;
        return this.withBlockNum(Array.isArray(params) ? params.slice(0, 1) : params, faults, (b) =>
          json(b && !onlyVirtual ? opsInBlock(b) : []),
        );
      }
      case 'block_api.get_block': {
        if (typeof params !== 'object' || params === null || Array.isArray(params))
          return { error: rpcErrors.invalidParams('expected {"block_num": n}') };
        const n = (params as { block_num?: unknown }).block_num;
        return this.withBlockNum([n], faults, (b) => (b ? { json: `{"block":${JSON.stringify(b)}}` } : json({})));
      }
      default:
        return { error: rpcErrors.methodNotFound(method) };
    }
  }

  /** condenser_api.get_dynamic_global_properties, consistent with the blocks served. */
  props(): Record<string, unknown> {
    const head = this.chain.head();
    const headBlock = this.chain.block(head) as ApiBlock;
    return {
      ...this.staticProps,
      head_block_number: head,
      head_block_id: headBlock.block_id,
      time: headBlock.timestamp,
      current_witness: headBlock.witness,
      last_irreversible_block_num: this.chain.lib(),
    };
  }

  private databaseProps(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(this.props()))
      out[k] = typeof v === 'string' && /^-?\d+\.\d+ (STEEM|SBD|VESTS)$/.test(v) ? naiAsset(v) : v;
    return out;
  }

  private withBlockNum(params: unknown, faults: DataFaults, render: (block: ApiBlock | null) => Result): Result {
    if (!Array.isArray(params) || params.length !== 1) return { error: rpcErrors.invalidParams('expected [block_num]') };
    const raw = params[0];
    const num = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : raw;
    if (typeof num !== 'number' || !Number.isSafeInteger(num) || num < 0) return { error: rpcErrors.badUint() };
    if (faults.nullBlock) return render(null);
    if (faults.wrongBlock) return render(this.chain.block(num + 1) ?? this.chain.block(num - 1));
    return render(this.chain.block(num));
  }

  private condenserJson(block: ApiBlock): string {
    let text = this.rendered.get(block.block_id);
    if (text === undefined) {
      text = condenserBlockJson(block);
      this.rendered.set(block.block_id, text);
      if (this.rendered.size > 4096) this.rendered.delete(this.rendered.keys().next().value as string);
    }
    return text;
  }
}
