import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** How a lying node departs from the honest node it fronts. */
export interface Lies {
  /** Report head and LIB this many blocks ahead of the honest node's. */
  headAhead?: number;
  /** Report LIB = head. */
  libAtHead?: boolean;
  /** Serve another branch from this block on: every block id from here differs, consistently chained. */
  forkFrom?: number;
  /** Serve a different block at each of these heights (the blocks around them are the honest ones). */
  replace?: (num: number) => boolean;
}

const forge = (id: string): string =>
  id.slice(0, 8) + [...id.slice(8)].map((c) => ((Number.parseInt(c, 16) + 7) % 16).toString(16)).join('');

/**
 * A JSON-RPC node on 127.0.0.1 that forwards to an honest node and rewrites its answers per `lies`
 * (props, get_block, get_block_header), as a node on a minority fork or a malicious one would.
 */
export async function lyingNode(honest: string, lies: Lies): Promise<{ url: string; stop(): Promise<void> }> {
  const forged = (num: number): boolean => (lies.forkFrom !== undefined && num >= lies.forkFrom) || (lies.replace?.(num) ?? false);
  const forgedPrevious = (num: number): boolean => lies.forkFrom !== undefined && num - 1 >= lies.forkFrom;
  const rewrite = (method: string, params: unknown, result: unknown): unknown => {
    if (result === null || typeof result !== 'object') return result;
    const r = result as Record<string, unknown>;
    if (method === 'condenser_api.get_dynamic_global_properties') {
      const head = (r.head_block_number as number) + (lies.headAhead ?? 0);
      const lib = lies.libAtHead ? head : (r.last_irreversible_block_num as number) + (lies.headAhead ?? 0);
      return { ...r, head_block_number: head, last_irreversible_block_num: lib };
    }
    const num = (params as number[])[0] as number;
    if (method === 'condenser_api.get_block' || method === 'condenser_api.get_block_header') {
      const out = { ...r };
      if (forgedPrevious(num)) out.previous = forge(r.previous as string);
      if (method === 'condenser_api.get_block' && forged(num)) out.block_id = forge(r.block_id as string);
      return out;
    }
    return result;
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      void fetch(honest, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
        .then((r) => r.json())
        .then((answer: unknown) => {
          const request = JSON.parse(body) as unknown;
          const calls = (Array.isArray(request) ? request : [request]) as Array<{ id: number; method: string; params: unknown }>;
          const answers = (Array.isArray(answer) ? answer : [answer]) as Array<{ id: number; result?: unknown }>;
          for (const a of answers) {
            const call = calls.find((c) => c.id === a.id);
            if (call && 'result' in a) a.result = rewrite(call.method, call.params, a.result);
          }
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify(Array.isArray(answer) ? answers : answers[0]));
        })
        .catch(() => {
          res.writeHead(502);
          res.end();
        });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stop: () => {
      server.closeAllConnections();
      return new Promise((r) => server.close(() => r()));
    },
  };
}
