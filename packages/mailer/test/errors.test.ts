import { type ErrorCode, errorCodes } from '@steem-bot/config';
import { SmtpSink } from '@steem-bot/devnode';
import { waitFor } from '@steem-bot/testkit';

import { newClient, openApiDocument } from '../src';
import { call, client, mailerEnv, startApi, startMailWorker } from './helpers';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const valid = { to: 'bob@example.com', subject: 'Hello', text: 'Hi Bob' };

describe('what mailer clients see', () => {
  test('every REST error has a code of the error table, the HTTP status the table gives it, and one body shape (429 too)', async () => {
    const m = mailerEnv({ MAILER_RATE_LIMIT: '20', MAILER_BODY_LIMIT_BYTES: '65536' });
    cleanups.push(() => m.cleanup());
    const api = await startApi(m);
    cleanups.push(() => api.stop());
    const token = client(m, 'shop').token;
    const noisy = client(m, 'noisy').token;
    const id = (await call(api.url, token, 'POST', '/v1/messages', valid, { 'idempotency-key': 'k1' })).body.id as string;
    await call(api.url, token, 'DELETE', `/v1/messages/${id}`);
    const form = await fetch(`${api.url}/v1/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'text/plain' },
      body: 'hi',
    });
    const responses = {
      unauthorized: await call(api.url, undefined, 'GET', '/v1/messages'),
      invalidBody: await call(api.url, token, 'POST', '/v1/messages', { ...valid, to: 'nope' }),
      invalidJson: await call(api.url, token, 'POST', '/v1/messages', '{"to":'),
      invalidKey: await call(api.url, token, 'POST', '/v1/messages', valid, { 'idempotency-key': 'k'.repeat(201) }),
      invalidQuery: await call(api.url, token, 'GET', '/v1/messages?limit=0'),
      noMessage: await call(api.url, token, 'GET', '/v1/messages/nope'),
      noMessageToCancel: await call(api.url, token, 'DELETE', '/v1/messages/nope'),
      noRoute: await call(api.url, token, 'GET', '/v1/nothing'),
      keyConflict: await call(api.url, token, 'POST', '/v1/messages', { ...valid, subject: 'Other' }, { 'idempotency-key': 'k1' }),
      notCancellable: await call(api.url, token, 'DELETE', `/v1/messages/${id}`),
      tooLarge: await call(api.url, token, 'POST', '/v1/messages', { ...valid, text: 'x'.repeat(70_000) }),
      notJson: { status: form.status, body: (await form.json()) as Record<string, unknown>, headers: form.headers },
      rateLimited: await (async () => {
        for (;;) {
          const res = await call(api.url, noisy, 'GET', '/v1/messages');
          if (res.status !== 200) return res;
        }
      })(),
    };
    const expected: Record<keyof typeof responses, ErrorCode> = {
      unauthorized: 'ERR_MAILER_UNAUTHORIZED',
      invalidBody: 'ERR_MAILER_INVALID_REQUEST',
      invalidJson: 'ERR_MAILER_INVALID_REQUEST',
      invalidKey: 'ERR_MAILER_INVALID_REQUEST',
      invalidQuery: 'ERR_MAILER_INVALID_REQUEST',
      noMessage: 'ERR_MAILER_NOT_FOUND',
      noMessageToCancel: 'ERR_MAILER_NOT_FOUND',
      noRoute: 'ERR_MAILER_NOT_FOUND',
      keyConflict: 'ERR_MAILER_CONFLICT',
      notCancellable: 'ERR_MAILER_CONFLICT',
      tooLarge: 'ERR_MAILER_TOO_LARGE',
      notJson: 'ERR_MAILER_UNSUPPORTED_MEDIA_TYPE',
      rateLimited: 'ERR_MAILER_RATE_LIMITED',
    };
    for (const [name, res] of Object.entries(responses)) {
      const code = expected[name as keyof typeof responses];
      expect([name, res.status, res.body]).toEqual([
        name,
        errorCodes[code].http,
        {
          error: {
            code,
            message: expect.stringMatching(/\w/),
            ...('fields' in (res.body.error as object) ? { fields: expect.any(Array) } : {}),
          },
        },
      ]);
    }
    expect(responses.unauthorized.headers.get('www-authenticate')).toBe('Bearer');
    expect(Number(responses.rateLimited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((responses.invalidKey.body.error as { fields: unknown }).fields).toEqual([
      { path: 'Idempotency-Key', message: 'one value of 1-200 characters' },
    ]);
    // The table carries a status for every code, and the README documents it (see config's docs test).
    for (const [code, def] of Object.entries(errorCodes)) expect([code, def.http]).toEqual([code, expect.any(Number)]);
    // The error codes are raised where they mean what the table says.
    expect(() => newClient('Shop!', undefined)).toThrow(expect.objectContaining({ code: 'ERR_MAILER_INVALID_REQUEST' }));
    expect(() => m.store.cancel('nope', 'shop', Date.now())).toThrow(expect.objectContaining({ code: 'ERR_MAILER_NOT_FOUND' }));
  });

  test('OpenAPI documents 401 and 429 on every /v1 route, /healthz, the text-or-html rule, the send_at limit and the Idempotency-Key bounds', () => {
    const doc = openApiDocument as unknown as {
      paths: Record<
        string,
        Record<string, { responses: Record<string, unknown>; security?: unknown[]; parameters?: Array<Record<string, unknown>> }>
      >;
      components: { schemas: { EmailRequest: { anyOf?: unknown; properties: { send_at: { description?: string } } } } };
    };
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(methods)) {
        if (op.security?.length === 0) continue; // the public routes
        expect([path, method, Object.keys(op.responses)]).toEqual([path, method, expect.arrayContaining(['401', '429'])]);
      }
    }
    expect(doc.paths['/healthz']?.get?.security).toEqual([]);
    expect(doc.components.schemas.EmailRequest.anyOf).toEqual([{ required: ['text'] }, { required: ['html'] }]);
    expect(doc.components.schemas.EmailRequest.properties.send_at.description).toMatch(/at most 5 years ahead/);
    const key = doc.paths['/v1/messages']?.post?.parameters?.find((p) => p.name === 'Idempotency-Key');
    expect(key?.schema).toEqual({ type: 'string', minLength: 1, maxLength: 200 });
  });

  test("last_error and history give clients a short reason; the mail server's words are only in the operator log", async () => {
    const sink = await SmtpSink.start({ dir: `/tmp/sink-errors-${process.pid}`, fault: 'reject' });
    cleanups.push(() => sink.stop());
    const m = mailerEnv({ SMTP_URL: `smtp://127.0.0.1:${sink.port}` });
    cleanups.push(() => m.cleanup());
    const api = await startApi(m);
    cleanups.push(() => api.stop());
    const worker = await startMailWorker(m);
    cleanups.push(() => worker.stop());
    const token = client(m, 'shop').token;
    const id = (await call(api.url, token, 'POST', '/v1/messages', valid)).body.id as string;
    await waitFor(() => m.store.get(id)?.status === 'dead', 10_000, 'dead');
    const shown = (await call(api.url, token, 'GET', `/v1/messages/${id}`)).body;
    expect(shown).toMatchObject({
      last_error: '550 from the mail server',
      history: [{ outcome: 'permanent', error: '550 from the mail server' }],
    });
    expect(JSON.stringify(shown)).not.toMatch(/devnode sink/);
    expect(worker.lines.some((l) => /550 .*rejected by the devnode sink/.test(String(l.msg)))).toBe(true);
  });
});
