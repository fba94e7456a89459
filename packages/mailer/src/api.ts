import rateLimit from '@fastify/rate-limit';
import type { Bus } from '@steem-bot/bus';
import {
  AppError,
  type Catalogue,
  type Config,
  emailRequest,
  type EmailStatus,
  emailStatuses,
  type Logger,
  newTid,
  type ParsedEmailRequest,
  withTid,
} from '@steem-bot/config';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';

import { literalHostRefused } from './check';
import { authenticate } from './clients';
import { openApiDocument } from './openapi';
import { relay } from './relay';
import type { ClientRow, MailStore, Message } from './store';

declare module 'fastify' {
  interface FastifyRequest {
    client?: ClientRow;
  }
}

export interface ApiOptions {
  store: MailStore;
  config: Config;
  logger: Logger;
  /** The mailer's bus: publishes email.queued / email.cancelled. */
  bus: Bus<Catalogue>;
  now?: () => number;
}

type ErrorBody = { error: { code: string; message: string; fields?: Array<{ path: string; message: string }> } };

const error = (code: string, message: string, fields?: ErrorBody['error']['fields']): ErrorBody => ({
  error: { code, message, ...(fields ? { fields } : {}) },
});

/** The public view of a message. */
export function view(message: Message, attempts?: ReturnType<MailStore['attempts']>): Record<string, unknown> {
  return {
    id: message.id,
    status: message.status,
    to: message.request.to,
    subject: message.request.subject,
    send_at: new Date(message.send_at).toISOString(),
    created_at: new Date(message.created_at).toISOString(),
    attempts: message.attempts,
    message_id: message.message_id,
    last_error: message.last_error,
    metadata: message.request.metadata ?? null,
    ...(attempts ? { history: attempts.map((a) => ({ ...a, at: new Date(a.at).toISOString() })) } : {}),
  };
}

/** Store a checked request and announce it: the one path of the REST and the bus intake. */
export function accept(
  options: ApiOptions,
  input: { client: string; key: string | undefined; request: ParsedEmailRequest; tid: string },
): { message: Message; created: boolean } {
  const now = (options.now ?? Date.now)();
  const domain = (input.request.from ?? options.config.MAILER_FROM).split('@')[1] as string;
  const result = options.store.enqueue({ ...input, now, domain });
  if (result.created) {
    options.logger.info(
      `${result.message.id} queued for ${result.message.request.to.join(', ')} (${input.client}), due ${new Date(result.message.send_at).toISOString()}`,
    );
    // email.queued was written with the message (outbox); it also wakes the worker.
    relay(options.store.outbox('mailer'), options.bus, options.logger);
  }
  return result;
}

/** Problems a valid-looking request still has for this client: sender not allowed, check_url refused. */
function policyProblems(request: ParsedEmailRequest, client: ClientRow, config: Config): Array<{ path: string; message: string }> {
  const problems: Array<{ path: string; message: string }> = [];
  const allowed = client.allowed_from ? (JSON.parse(client.allowed_from) as string[]) : [config.MAILER_FROM];
  if (request.from !== undefined && !allowed.includes(request.from))
    problems.push({ path: 'from', message: `this client may send as: ${allowed.join(', ')}` });
  if (request.check_url !== undefined && literalHostRefused(request.check_url, config.MAILER_CHECK_ALLOW)) {
    problems.push({ path: 'check_url', message: 'private, loopback and link-local addresses are refused (MAILER_CHECK_ALLOW)' });
  }
  return problems;
}

export async function createApi(options: ApiOptions): Promise<FastifyInstance> {
  const { store, config } = options;
  const app = Fastify({ bodyLimit: config.MAILER_BODY_LIMIT_BYTES, logger: false, return503OnClosing: true });
  app.removeContentTypeParser('text/plain'); // JSON only: anything else is a 415

  // Every error becomes a JSON body with a stable code; only a bug is a 500, and it is logged.
  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, request, reply) => {
    if (err instanceof AppError && err.code === 'ERR_MAILER_CONFLICT') return reply.code(409).send(error('conflict', err.message));
    const status = err.statusCode ?? 500;
    if (status >= 500) {
      options.logger.error({ err, url: request.url }, 'request failed');
      return reply.code(500).send(error('internal', 'internal error'));
    }
    const code =
      status === 413 ? 'body_too_large' : status === 415 ? 'unsupported_media_type' : status === 429 ? 'rate_limited' : 'bad_request';
    return reply.code(status).send(error(code, err.message));
  });
  app.setNotFoundHandler((_request, reply) => reply.code(404).send(error('not_found', 'no such route')));

  app.get('/healthz', () => ({ ok: true, counts: store.counts() }));
  app.get('/v1/openapi.json', () => openApiDocument);

  await app.register(
    async (v1) => {
      v1.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
        if (request.url === '/v1/openapi.json') return;
        const client = authenticate(store, request.headers.authorization);
        if (!client)
          return reply
            .code(401)
            .header('www-authenticate', 'Bearer')
            .send(error('unauthorized', 'a valid Authorization: Bearer token is required'));
        request.client = client;
      });
      await v1.register(rateLimit, {
        hook: 'preHandler',
        max: config.MAILER_RATE_LIMIT,
        timeWindow: 60_000,
        keyGenerator: (request) => request.client?.name ?? request.ip,
        errorResponseBuilder: (_request, context) => ({
          statusCode: 429,
          ...error('rate_limited', `at most ${context.max} requests per minute; retry in ${context.after}`),
        }),
      });

      v1.post('/messages', async (request, reply) => {
        const client = request.client as ClientRow;
        const key = request.headers['idempotency-key'];
        if (Array.isArray(key) || (key !== undefined && (key.length === 0 || key.length > 200))) {
          return reply.code(400).send(error('bad_request', 'Idempotency-Key must be one value of 1-200 characters'));
        }
        const parsed = emailRequest.safeParse(request.body);
        if (!parsed.success) {
          const fields = parsed.error.issues.map((i) => ({ path: i.path.join('.') || '(body)', message: i.message }));
          return reply.code(400).send(error('invalid_body', 'the request body is invalid', fields));
        }
        const problems = policyProblems(parsed.data, client, config);
        if (problems.length > 0) return reply.code(400).send(error('invalid_body', 'the request body is invalid', problems));
        const tid = newTid();
        const { message, created } = withTid(tid, () => accept(options, { client: client.name, key, request: parsed.data, tid }));
        return reply.code(created ? 202 : 200).send({ id: message.id, status: message.status });
      });

      v1.get<{ Params: { id: string } }>('/messages/:id', (request, reply) => {
        const message = store.get(request.params.id, request.client?.name);
        if (!message) return reply.code(404).send(error('not_found', 'no such message'));
        return view(message, store.attempts(message.seq));
      });

      v1.delete<{ Params: { id: string } }>('/messages/:id', async (request, reply) => {
        const message = store.cancel(request.params.id, (request.client as ClientRow).name, (options.now ?? Date.now)());
        if (!message) return reply.code(404).send(error('not_found', 'no such message'));
        options.logger.info(`${message.id} cancelled by ${message.client}`);
        relay(options.store.outbox('mailer'), options.bus, options.logger);
        return { id: message.id, status: message.status };
      });

      v1.get<{ Querystring: Record<string, string | undefined> }>('/messages', (request, reply) => {
        const { status, limit = '50', cursor } = request.query;
        const problems: Array<{ path: string; message: string }> = [];
        if (status !== undefined && !(emailStatuses as readonly string[]).includes(status))
          problems.push({ path: 'status', message: `one of ${emailStatuses.join(', ')}` });
        if (!/^\d{1,3}$/.test(limit) || Number(limit) < 1 || Number(limit) > 200) problems.push({ path: 'limit', message: '1-200' });
        if (cursor !== undefined && !/^\d{1,15}$/.test(cursor)) problems.push({ path: 'cursor', message: 'a cursor from a previous page' });
        if (problems.length > 0) return reply.code(400).send(error('invalid_query', 'the query is invalid', problems));
        const messages = store.list((request.client as ClientRow).name, {
          ...(status ? { status: status as EmailStatus } : {}),
          limit: Number(limit),
          ...(cursor ? { after: Number(cursor) } : {}),
        });
        const last = messages.at(-1);
        return { messages: messages.map((m) => view(m)), next_cursor: messages.length === Number(limit) && last ? String(last.seq) : null };
      });
    },
    { prefix: '/v1' },
  );

  return app;
}
