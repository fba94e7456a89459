/** A block as condenser_api.get_block renders it (the part the broadcaster reads). */
export interface ChainBlock {
  block_id: string;
  previous: string;
  timestamp: string;
  transaction_ids: string[];
  transactions: Array<{ operations: Array<[string, Record<string, unknown>]>; transaction_id?: string }>;
}

/** The part of get_dynamic_global_properties the broadcaster reads. */
export interface ChainProps {
  head_block_number: number;
  last_irreversible_block_num: number;
  time: string;
}

/** The block number encoded in a block id: its first 8 hex digits. */
export function blockNumFromId(id: string): number {
  return Number.parseInt(id.slice(0, 8), 16);
}

/** Check the shape of a get_block answer; returns the reason it is unusable, or undefined. */
export function blockProblem(value: unknown, expected: number): string | undefined {
  if (value instanceof Error) return value.message;
  if (value === null || value === undefined) return 'null block';
  if (typeof value !== 'object') return 'not an object';
  const b = value as Partial<ChainBlock>;
  if (typeof b.block_id !== 'string' || !/^[0-9a-f]{40}$/.test(b.block_id)) return 'no valid block_id';
  if (blockNumFromId(b.block_id) !== expected) return `block ${blockNumFromId(b.block_id)} instead of ${expected}`;
  if (typeof b.previous !== 'string' || typeof b.timestamp !== 'string' || !Array.isArray(b.transactions)) return 'missing fields';
  if (!Array.isArray(b.transaction_ids) || b.transaction_ids.length !== b.transactions.length)
    return 'transaction_ids do not match transactions';
  for (const t of b.transactions) {
    if (
      !t ||
      !Array.isArray(t.operations) ||
      !t.operations.every((op) => Array.isArray(op) && typeof op[0] === 'string' && typeof op[1] === 'object' && op[1] !== null)
    ) {
      return 'malformed operations';
    }
  }
  return undefined;
}

export function propsProblem(value: unknown): string | undefined {
  if (value instanceof Error) return value.message;
  const p = value as Partial<ChainProps> | null;
  if (!p || typeof p !== 'object') return 'no properties';
  if (!Number.isSafeInteger(p.head_block_number) || !Number.isSafeInteger(p.last_irreversible_block_num)) return 'no head/LIB numbers';
  return undefined;
}
