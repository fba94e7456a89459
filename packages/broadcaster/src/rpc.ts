/**
 * A thin JSON-RPC 2.0 client over Node's fetch: per-call timeout, keep-alive (undici's default
 * agent), batches. Every failure becomes a NodeFailure saying what went wrong, so the pool can
 * count it against that node and move on.
 */

export type FailureKind = 'timeout' | 'network' | 'http' | 'json' | 'rpc' | 'invalid';

export class NodeFailure extends Error {
  constructor(
    readonly kind: FailureKind,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export interface RpcCall {
  method: string;
  params: unknown;
}

/**
 * Send one call or a batch; resolves with the results in order (a call that got a JSON-RPC
 * error is a NodeFailure in its place), or throws a NodeFailure when the whole exchange failed
 * or every call got an error.
 */
export async function rpcBatch(url: string, calls: RpcCall[], timeoutMs: number): Promise<unknown[]> {
  const body = JSON.stringify(calls.map((c, i) => ({ jsonrpc: '2.0', method: c.method, params: c.params, id: i + 1 })));
  let text: string;
  let status: number;
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      signal: AbortSignal.timeout(timeoutMs),
    });
    status = res.status;
    text = await res.text();
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    if (e.name === 'TimeoutError' || e.name === 'AbortError') throw new NodeFailure('timeout', `no answer within ${timeoutMs} ms`);
    throw new NodeFailure('network', e.cause?.code ?? e.message);
  }
  if (status !== 200) throw new NodeFailure('http', `HTTP ${status}${/^\s*</.test(text) ? ' (HTML page)' : ''}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new NodeFailure('json', `invalid JSON (${text.length} bytes${/^\s*</.test(text) ? ', HTML' : ''})`);
  }
  const answers = Array.isArray(parsed) ? parsed : [parsed];
  if (answers.length !== calls.length) {
    const err = (parsed as { error?: { code: number; message: string } }).error;
    throw new NodeFailure(
      err ? 'rpc' : 'invalid',
      err ? `error ${err.code}: ${err.message}` : `expected ${calls.length} answers, got ${answers.length}`,
    );
  }
  const byId = new Map<unknown, { result?: unknown; error?: { code: number; message: string } }>();
  for (const a of answers) byId.set((a as { id?: unknown })?.id, a as never);
  const results = calls.map((c, i): unknown => {
    const a = byId.get(i + 1);
    if (!a) return new NodeFailure('invalid', `no answer for ${c.method}`);
    if (a.error) return new NodeFailure('rpc', `${c.method}: error ${a.error.code}: ${a.error.message}`);
    if (!('result' in a)) return new NodeFailure('invalid', `${c.method}: neither result nor error`);
    return a.result;
  });
  if (results.every((r) => r instanceof NodeFailure)) throw results[0] as NodeFailure;
  return results;
}
