/**
 * A thin JSON-RPC 2.0 client over Node's fetch: per-call timeout, keep-alive (undici's default
 * agent), batches, a cap on the size of an answer. Every failure becomes a NodeFailure saying
 * what went wrong, so the pool can count it against that node and move on.
 */

export type FailureKind = 'timeout' | 'network' | 'http' | 'json' | 'rpc' | 'invalid' | 'too-large';

/** Default cap of one answer's body: a real batch of 50 full blocks is a few MB. */
export const DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024;

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
export async function rpcBatch(
  url: string,
  calls: RpcCall[],
  timeoutMs: number,
  maxBytes: number = DEFAULT_MAX_RESPONSE_BYTES,
): Promise<unknown[]> {
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
    text = await readCapped(res, maxBytes);
  } catch (err) {
    if (err instanceof NodeFailure) throw err;
    const e = err as Error & { cause?: { code?: string; message?: string } };
    if (e.name === 'TimeoutError' || e.name === 'AbortError') throw new NodeFailure('timeout', `no answer within ${timeoutMs} ms`);
    throw new NodeFailure('network', e.cause?.code ?? e.cause?.message ?? e.message);
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

/**
 * The body as text, read chunk by chunk and abandoned (the connection closed) as soon as it
 * passes `maxBytes`: an oversized answer costs at most `maxBytes` of memory, whatever its length.
 */
async function readCapped(res: Response, maxBytes: number): Promise<string> {
  const declared = Number(res.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > maxBytes) {
    await res.body?.cancel().catch(() => undefined);
    throw new NodeFailure('too-large', `answer of ${declared} bytes exceeds ${maxBytes} (BROADCASTER_MAX_REPLY_BYTES)`);
  }
  if (!res.body) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw new NodeFailure('too-large', `answer larger than ${maxBytes} bytes (BROADCASTER_MAX_REPLY_BYTES)`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, size).toString('utf8');
}
