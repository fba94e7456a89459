/** POST a JSON-RPC body to a devnode and return the HTTP status, raw text and parsed JSON (if any). */
export async function rpc(url: string, body: unknown): Promise<{ status: number; text: string; json: unknown }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, text, json };
}

export const call = (method: string, params: unknown, id = 1): Record<string, unknown> => ({ jsonrpc: '2.0', method, params, id });
