import { z } from 'zod';

import { defineCatalogue } from './catalogue-shape';
import { commonOps, otherOps } from './chain-ops';

const nodeHealth = z.object({
  url: z.string(),
  state: z.enum(['healthy', 'open', 'stale']),
  head: z.number().int().nullable(),
  failures: z.number().int(),
  lastError: z.string().nullable(),
});

/**
 * The project's catalogue of events and tasks. Processes talk only through these names; the bus
 * rejects anything else at compile time and at run time.
 */
export const catalogue = defineCatalogue({
  events: {
    ...commonOps,
    ...otherOps,
    /** The broadcaster published every op of a block (sent after the block's last op). */
    'block.applied': z.object({
      block_num: z.number().int().positive(),
      block_id: z.string(),
      timestamp: z.string(),
      op_count: z.number().int().nonnegative(),
    }),
    /** Head mode only: a published block left the canonical chain; its ops are void and replacements follow. */
    'block.reverted': z.object({
      block_num: z.number().int().positive(),
      block_id: z.string(),
      replaced_by: z.string().nullable(),
    }),
  },
  tasks: {
    /** Report the broadcaster's current block, head, LIB, lag and node health. */
    'broadcaster.status.get': {
      payload: z.object({}),
      reply: z.object({
        mode: z.enum(['irreversible', 'head']),
        current_block: z.number().int().nullable(),
        head_block: z.number().int().nullable(),
        irreversible_block: z.number().int().nullable(),
        lag_blocks: z.number().int().nullable(),
        lag_seconds: z.number().nullable(),
        nodes: z.array(nodeHealth),
      }),
    },
  },
});

export type Catalogue = typeof catalogue;
