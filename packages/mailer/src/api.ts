import rateLimit from '@fastify/rate-limit';
import type { Bus } from '@steem-bot/bus';
import {
  AppError,
  type Catalogue,
  type Config,
  emailRequest,
  type EmailStatus,
  emailStatuses,
  type ErrorCode,
  errorCodes,
  type Logger,
  newTid,
  type ParsedEmailRequest,
  withTid,
} from '@steem-bot/config';
import { literalHostRefused } from '@steem-bot/outbound';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';

import { authenticate } from './clients';
import type { MailerStore } from './mailer-store';
import { openApiDocument } from './openapi';
import { relay } from './relay';
import type { AttemptRow, ClientRow, Enqueued, Message } from './store';

declare module 'fastify' {
  interface FastifyRequest {
    client?: ClientRow;
  }
}

export interface ApiOptions {
  store: MailerStore;
  config: Config<'mailer'>;
  logger: Logger;
  /** The mailer's bus: publishes email.queued / email.cancelled. */
  bus: Bus<Catalogue>;
  now?: () => number;
}

type Field = { path: string; message: string };

/** A client's error: its code in the project's error table, which also gives the HTTP status. */
const invalid = (message: string, fields: Field[]): AppError => new AppError('ERR_MAILER_INVALID_REQUEST', message, { data: { fields } });

// Fastify's own errors (body too large, not JSON, ...) carry an HTTP status: the first mailer code
// of the error table with that status names them, so the table stays the one list.
const mailerCodes = (Object.keys(errorCodes) as ErrorCode[]).filter((c) => c.startsWith('ERR_MAILER_'));
function codeForStatus(status: number): ErrorCode {
  return mailerCodes.find((c) => errorCodes[c].http === status) ?? (status >= 500 ? 'ERR_MAILER_INTERNAL' : 'ERR_MAILER_INVALID_REQUEST');
}

/** The one shape of every error body: `{error: {code, message, fields?}}`. */
function errorBody(err: AppError): { error: { code: string; message: string; fields?: Field[] } } {
  const fields = (err.data as { fields?: Field[] } | undefined)?.fields;
  return { error: { code: err.code, message: err.message, ...(fields ? { fields } : {}) } };
}

/** The public view of a message. */
export function view(message: Message, attempts?: AttemptRow[]): Record<string, unknown> {
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
export async function accept(
  options: ApiOptions,
  input: { client: string; key: string | undefined; request: ParsedEmailRequest; tid: string },
): Promise<Enqueued> {
  const { config } = options;
  const now = (options.now ?? Date.now)();
  const recipients = input.request.to.length + (input.request.cc?.length ?? 0) + (input.request.bcc?.length ?? 0);
  if (recipients > config.MAILER_MAX_RECIPIENTS) {
    throw new AppError('ERR_MAILER_TOO_LARGE', `at most ${config.MAILER_MAX_RECIPIENTS} recipients (to, cc and bcc together)`, {
      data: { fields: [{ path: 'to', message: `${recipients} recipients; at most ${config.MAILER_MAX_RECIPIENTS}` }] },
    });
  }
  const bytes = Buffer.byteLength(JSON.stringify(input.request));
  if (bytes > config.MAILER_MAX_MESSAGE_BYTES) {
    throw new AppError('ERR_MAILER_TOO_LARGE', `the message is ${bytes} bytes; at most ${config.MAILER_MAX_MESSAGE_BYTES}`);
  }
  const domain = (input.request.from ?? config.MAILER_FROM).split('@')[1] as string;
  // Internal apps (the bus task) are trusted, as for tokens: only REST clients have a pending cap.
  const maxPending = input.client === 'bus' ? undefined : config.MAILER_MAX_PENDING;
  const result = await options.store.enqueue({ ...input, now, domain, ...(maxPending ? { maxPending } : {}) });
  const message = result.message;
  if (result.created && message) {
    options.logger.info(
      `${message.id} queued for ${message.request.to.join(', ')} (${input.client}), due ${new Date(message.send_at).toISOString()}`,
    );
    // email.queued was written with the message (outbox); it also wakes the worker.
    relay(options.store, 'mailer', options.bus, options.logger);
  }
  return result;
}

/** Problems a valid-looking request still has for this client: sender not allowed, check_url refused. */
function policyProblems(request: ParsedEmailRequest, client: ClientRow, config: Config<'mailer'>): Field[] {
  const problems: Field[] = [];
  const allowed = client.allowed_from ? (JSON.parse(client.allowed_from) as string[]) : [config.MAILER_FROM];
  if (request.from !== undefined && !allowed.includes(request.from))
    problems.push({ path: 'from', message: `this client may send as: ${allowed.join(', ')}` });
  if (request.check_url !== undefined && literalHostRefused(request.check_url, config.MAILER_CHECK_ALLOW)) {
    problems.push({
      path: 'check_url',
      message: 'special-purpose addresses (loopback, private, link-local, ...) are refused unless MAILER_CHECK_ALLOW lists them',
    });
  }
  return problems;
}

export async function createApi(options: ApiOptions): Promise<FastifyInstance> {
  const { store, config } = options;
  const app = Fastify({ bodyLimit: config.MAILER_BODY_LIMIT_BYTES, logger: false, return503OnClosing: true });
  app.removeContentTypeParser('text/plain'); // JSON only: anything else is a 415

  // Every error becomes a JSON body with a code of the error table, whose HTTP status it gets;
  // only a bug is a 500, and it is logged (clients see no detail).
  app.setErrorHandler((thrown: Error & { statusCode?: number }, request, reply) => {
    let err = thrown instanceof AppError ? thrown : new AppError(codeForStatus(thrown.statusCode ?? 500), thrown.message);
    if (errorCodes[err.code].http >= 500) {
      options.logger.error({ err: thrown, url: request.url }, 'request failed');
      err = new AppError('ERR_MAILER_INTERNAL', 'internal error');
    }
    return reply.code(errorCodes[err.code].http).send(errorBody(err));
  });
  app.setNotFoundHandler(() => {
    throw new AppError('ERR_MAILER_NOT_FOUND', 'no such route');
  });

  app.get('/healthz', async () => ({ ok: true, counts: await store.counts() }));
  app.get('/v1/openapi.json', () => openApiDocument);

  await app.register(
    async (v1) => {
      v1.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
        if (request.url === '/v1/openapi.json') return;
        const client = await authenticate(store, request.headers.authorization);
        if (!client) {
          reply.header('www-authenticate', 'Bearer');
          throw new AppError('ERR_MAILER_UNAUTHORIZED', 'a valid Authorization: Bearer token is required');
        }
        request.client = client;
      });
      await v1.register(rateLimit, {
        // Before the body is read: a client over its limit costs no parsing (after the token check, per client).
        hook: 'onRequest',
        max: config.MAILER_RATE_LIMIT,
        timeWindow: 60_000,
        keyGenerator: (request) => request.client?.name ?? request.ip,
        errorResponseBuilder: (_request, context) =>
          new AppError('ERR_MAILER_RATE_LIMITED', `at most ${context.max} requests per minute; retry in ${context.after}`),
      });

      v1.post('/messages', async (request, reply) => {
        const client = request.client as ClientRow;
        const key = request.headers['idempotency-key'];
        if (Array.isArray(key) || (key !== undefined && (key.length === 0 || key.length > 200))) {
          throw invalid('the Idempotency-Key header is invalid', [{ path: 'Idempotency-Key', message: 'one value of 1-200 characters' }]);
        }
        const parsed = emailRequest.safeParse(request.body);
        if (!parsed.success) {
          throw invalid(
            'the request body is invalid',
            parsed.error.issues.map((i) => ({ path: i.path.join('.') || '(body)', message: i.message })),
          );
        }
        const problems = policyProblems(parsed.data, client, config);
        if (problems.length > 0) throw invalid('the request body is invalid', problems);
        const tid = newTid();
        const { id, status, created } = await withTid(tid, () => accept(options, { client: client.name, key, request: parsed.data, tid }));
        return reply.code(created ? 202 : 200).send({ id, status });
      });

      v1.get<{ Params: { id: string } }>('/messages/:id', async (request) => {
        const message = await store.get(request.params.id, request.client?.name);
        if (!message) throw new AppError('ERR_MAILER_NOT_FOUND', 'no such message');
        return view(message, await store.attempts(message.seq));
      });

      v1.delete<{ Params: { id: string } }>('/messages/:id', async (request) => {
        const message = await store.cancel(request.params.id, (request.client as ClientRow).name, (options.now ?? Date.now)());
        options.logger.info(`${message.id} cancelled by ${message.client}`);
        relay(options.store, 'mailer', options.bus, options.logger);
        return { id: message.id, status: message.status };
      });

      v1.get<{ Querystring: Record<string, string | undefined> }>('/messages', async (request) => {
        const { status, limit = '50', cursor } = request.query;
        const problems: Field[] = [];
        if (status !== undefined && !(emailStatuses as readonly string[]).includes(status))
          problems.push({ path: 'status', message: `one of ${emailStatuses.join(', ')}` });
        if (!/^\d{1,3}$/.test(limit) || Number(limit) < 1 || Number(limit) > 200) problems.push({ path: 'limit', message: '1-200' });
        if (cursor !== undefined && !/^\d{1,15}$/.test(cursor)) problems.push({ path: 'cursor', message: 'a cursor from a previous page' });
        if (problems.length > 0) throw invalid('the query is invalid', problems);
        const messages = await store.list((request.client as ClientRow).name, {
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
