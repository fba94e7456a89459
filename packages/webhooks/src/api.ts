import rateLimit from '@fastify/rate-limit';
import type { Bus } from '@steem-bot/bus';
import { AppError, type Catalogue, catalogue, type Config, type Logger, newTid, type TaskName, withTid } from '@steem-bot/config';
import { urlProblem } from '@steem-bot/outbound';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { z } from 'zod';

import { authenticate, grantedTasks, newSecret, ownedEvents } from './clients';
import type { Dispatcher } from './dispatcher';
import { streamsOf } from './dispatcher';
import { openApiDocument } from './openapi';
import { ENDPOINT_ID, endpointBody, endpointProblems, postedData, replayBody } from './schemas';
import { type ClientRow, type EndpointRow, sha256, type WebhookStore } from './store';

declare module 'fastify' {
  interface FastifyRequest {
    webhooksClient?: ClientRow;
  }
}

export interface ApiOptions {
  store: WebhookStore;
  config: Config<'webhooks'>;
  logger: Logger;
  bus: Bus<Catalogue>;
  dispatcher: Dispatcher;
  /** Appends a posted event to the webhooks stream and publishes it. */
  postEvent(client: string, type: string, data: Record<string, unknown>, tid: string): Promise<number>;
  /** Position of the newest block.applied seen live, if any: a new endpoint's chain cursor. */
  chainHead?: () => number | null;
  now?: () => number;
}

type Field = { path: string; message: string };
const error = (code: string, message: string, fields?: Field[]) => ({ error: { code, message, ...(fields ? { fields } : {}) } });
const issues = (e: z.ZodError): Field[] => e.issues.map((i) => ({ path: i.path.join('.') || '(body)', message: i.message }));

// How long a rotated-out secret still signs deliveries.
export const ROTATION_OVERLAP_MS = 24 * 3_600_000;

/** The public view of an endpoint (never its secret). */
export async function endpointView(row: EndpointRow, store: WebhookStore): Promise<Record<string, unknown>> {
  return {
    id: row.id,
    url: row.url,
    events: JSON.parse(row.events) as string[],
    filter: JSON.parse(row.filter) as Record<string, unknown>,
    description: row.description,
    disabled: row.disabled === 1,
    disabled_reason: row.disabled_reason,
    created_at: new Date(row.created_at).toISOString(),
    updated_at: new Date(row.updated_at).toISOString(),
    cursors: await store.cursors(row.seq),
    failing:
      row.attempts > 0
        ? { attempts: row.attempts, next_attempt_at: row.next_attempt_at && new Date(row.next_attempt_at).toISOString() }
        : null,
  };
}

/** Per-client fixed one-minute windows for posted events. */
class MinuteCounter {
  private readonly counts = new Map<string, { window: number; n: number }>();
  take(key: string, max: number, now: number): number | undefined {
    const window = Math.floor(now / 60_000);
    const entry = this.counts.get(key);
    const n = entry && entry.window === window ? entry.n : 0;
    if (n >= max) return (window + 1) * 60_000 - now;
    this.counts.set(key, { window, n: n + 1 });
    return undefined;
  }
}

export async function createApi(options: ApiOptions): Promise<FastifyInstance> {
  const { store, config, dispatcher } = options;
  const now = options.now ?? Date.now;
  const posted = new MinuteCounter();
  const app = Fastify({ bodyLimit: config.WEBHOOKS_BODY_LIMIT_BYTES, logger: false, return503OnClosing: true });
  app.removeContentTypeParser('text/plain'); // JSON only: anything else is a 415

  // Every error becomes a JSON body with a stable code; only a bug is a 500, and it is logged.
  app.setErrorHandler((err: Error & { statusCode?: number }, request, reply) => {
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

  app.get('/healthz', () => ({ ok: true }));
  app.get('/v1/openapi.json', () => openApiDocument);

  const ownEndpoint = async (
    request: FastifyRequest<{ Params: { id: string } }>,
    reply: FastifyReply,
  ): Promise<EndpointRow | undefined> => {
    const row = ENDPOINT_ID.test(request.params.id)
      ? await store.endpoint((request.webhooksClient as ClientRow).name, request.params.id)
      : undefined;
    if (!row) void reply.code(404).send(error('not_found', 'no such endpoint'));
    return row;
  };

  await app.register(
    async (v1) => {
      v1.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
        if (request.url === '/v1/openapi.json') return;
        const client = await authenticate(store, request.headers.authorization);
        if (!client)
          return reply
            .code(401)
            .header('www-authenticate', 'Bearer')
            .send(error('unauthorized', 'a valid Authorization: Bearer token is required'));
        request.webhooksClient = client;
      });
      await v1.register(rateLimit, {
        hook: 'preHandler',
        max: config.WEBHOOKS_RATE_LIMIT,
        timeWindow: 60_000,
        keyGenerator: (request) => request.webhooksClient?.name ?? request.ip,
        errorResponseBuilder: (_request, context) => ({
          statusCode: 429,
          ...error('rate_limited', `at most ${context.max} requests per minute; retry in ${context.after}`),
        }),
      });

      v1.put<{ Params: { id: string } }>('/endpoints/:id', async (request, reply) => {
        const client = request.webhooksClient as ClientRow;
        if (!ENDPOINT_ID.test(request.params.id))
          return reply
            .code(400)
            .send(error('invalid_id', 'endpoint ids are 1-64 letters, digits, _ . and -, starting with a letter or digit'));
        const parsed = endpointBody.safeParse(request.body);
        if (!parsed.success) return reply.code(400).send(error('invalid_body', 'the request body is invalid', issues(parsed.error)));
        const body = parsed.data;
        const owned = new Set<string>();
        for (const type of body.events) if (await store.typeOwned(type)) owned.add(type);
        const problems = endpointProblems(body, (type) => owned.has(type));
        const bad = urlProblem(body.url, config.WEBHOOKS_ALLOW);
        if (bad) problems.unshift({ path: 'url', message: bad });
        if (problems.length > 0) return reply.code(400).send(error('invalid_body', 'the request body is invalid', problems));
        const exists = (await store.endpoint(client.name, request.params.id)) !== undefined;
        if (!exists && (await store.countEndpoints(client.name)) >= config.WEBHOOKS_MAX_ENDPOINTS)
          return reply.code(429).send(error('too_many_endpoints', `at most ${config.WEBHOOKS_MAX_ENDPOINTS} endpoints per client`));
        const spec = {
          url: body.url,
          events: body.events,
          filter: body.filter ?? {},
          description: body.description ?? '',
          disabled: body.disabled ?? false,
        };
        const { row, created, changed } = await store.upsertEndpoint(client.name, request.params.id, spec, newSecret(), now());
        if (changed) {
          options.logger.info(`endpoint ${client.name}/${row.id} ${created ? 'created' : 'updated'}`);
          await dispatcher.refresh(row.seq, async () => {
            // A new endpoint starts at "now": on the time-positioned streams, and on the chain after
            // the newest block seen; so a restart before its first event misses nothing.
            if (!created) return;
            const head = options.chainHead?.() ?? null;
            for (const a of streamsOf(spec.events).keys()) {
              if (a !== 'broadcaster') await store.advance(row.seq, a, now() * 1000 - 1);
              else if (head !== null) await store.advance(row.seq, a, head);
            }
          });
        }
        const view = await endpointView((await store.endpointBySeq(row.seq)) as EndpointRow, store);
        return reply.code(created ? 201 : 200).send(created ? { ...view, secret: row.secret } : view);
      });

      v1.get('/endpoints', async (request) => ({
        endpoints: await Promise.all(
          (await store.endpoints((request.webhooksClient as ClientRow).name)).map((row) => endpointView(row, store)),
        ),
      }));

      v1.get<{ Params: { id: string } }>('/endpoints/:id', async (request, reply) => {
        const row = await ownEndpoint(request, reply);
        return row ? await endpointView(row, store) : reply;
      });

      v1.delete<{ Params: { id: string } }>('/endpoints/:id', async (request, reply) => {
        const row = await ownEndpoint(request, reply);
        if (!row) return reply;
        await dispatcher.refresh(row.seq, () => store.deleteEndpoint(row.client, row.id));
        options.logger.info(`endpoint ${row.client}/${row.id} deleted`);
        return reply.code(204).send();
      });

      v1.get<{ Params: { id: string } }>('/endpoints/:id/secret', async (request, reply) => {
        const row = await ownEndpoint(request, reply);
        if (!row) return reply;
        const overlap = row.old_secret_until !== null && row.old_secret_until > now();
        return { secret: row.secret, previous_valid_until: overlap ? new Date(row.old_secret_until as number).toISOString() : null };
      });

      v1.post<{ Params: { id: string } }>('/endpoints/:id/secret/rotate', async (request, reply) => {
        const row = await ownEndpoint(request, reply);
        if (!row) return reply;
        const until = now() + ROTATION_OVERLAP_MS;
        const secret = newSecret();
        await store.rotateSecret(row.seq, secret, until);
        dispatcher.touch(row.seq); // its runner signs with the new secret from the next try
        options.logger.info(`endpoint ${row.client}/${row.id}: secret rotated`);
        return { secret, previous_valid_until: new Date(until).toISOString() };
      });

      v1.get<{ Params: { id: string }; Querystring: Record<string, string | undefined> }>(
        '/endpoints/:id/deliveries',
        async (request, reply) => {
          const row = await ownEndpoint(request, reply);
          if (!row) return reply;
          const { cursor, limit = '50' } = request.query;
          const problems: Field[] = [];
          if (!/^\d{1,3}$/.test(limit) || Number(limit) < 1 || Number(limit) > 200) problems.push({ path: 'limit', message: '1-200' });
          if (cursor !== undefined && !/^\d{1,15}$/.test(cursor))
            problems.push({ path: 'cursor', message: 'a cursor from a previous page' });
          if (problems.length > 0) return reply.code(400).send(error('invalid_query', 'the query is invalid', problems));
          const rows = await store.deliveries(row.seq, Number(cursor ?? 0), Number(limit));
          const last = rows.at(-1);
          return {
            deliveries: rows.map(({ seq: _seq, ...d }) => ({ ...d, at: new Date(d.at).toISOString() })),
            next_cursor: rows.length === Number(limit) && last ? String(last.seq) : null,
          };
        },
      );

      v1.post<{ Params: { id: string } }>('/endpoints/:id/replay', async (request, reply) => {
        const row = await ownEndpoint(request, reply);
        if (!row) return reply;
        const parsed = replayBody.safeParse(request.body);
        if (!parsed.success) return reply.code(400).send(error('invalid_body', 'the request body is invalid', issues(parsed.error)));
        const from = parsed.data.from_position;
        const apps = [...streamsOf(JSON.parse(row.events) as string[]).keys()];
        await dispatcher.refresh(row.seq, () => store.setCursors(row.seq, apps, from - 1));
        options.logger.info(`endpoint ${row.client}/${row.id}: replay from ${from}`);
        return reply.code(202).send({ id: row.id, from_position: from });
      });

      v1.post<{ Params: { type: string } }>('/events/:type', async (request, reply) => {
        const client = request.webhooksClient as ClientRow;
        const type = request.params.type;
        if (!ownedEvents(client).includes(type))
          return reply.code(403).send(error('forbidden', `this client does not own the event type ${JSON.stringify(type)}`));
        const parsed = postedData.safeParse(request.body);
        if (!parsed.success)
          return reply.code(400).send(error('invalid_body', 'the body is the event data: a JSON object', issues(parsed.error)));
        const wait = posted.take(client.name, config.WEBHOOKS_EVENTS_PER_MINUTE, now());
        if (wait !== undefined) {
          return reply
            .code(429)
            .header('retry-after', String(Math.ceil(wait / 1000)))
            .send(error('rate_limited', `at most ${config.WEBHOOKS_EVENTS_PER_MINUTE} posted events per minute`));
        }
        const tid = newTid();
        const position = await withTid(tid, () => options.postEvent(client.name, type, parsed.data, tid));
        return reply.code(202).send({ type, position, tid });
      });

      v1.post<{ Params: { name: string } }>('/tasks/:name', async (request, reply) => {
        const client = request.webhooksClient as ClientRow;
        const name = request.params.name;
        if (!grantedTasks(client).includes(name))
          return reply.code(403).send(error('forbidden', `this client may not send ${JSON.stringify(name)} (clients grant NAME TASK)`));
        const key = request.headers['idempotency-key'];
        if (typeof key !== 'string' || key.length === 0 || key.length > 200)
          return reply.code(400).send(error('bad_request', 'an Idempotency-Key header of 1-200 characters is required'));
        // A bot's own task is not in the catalogue: the bot checks its payload (a refusal is a 400 below).
        const def = catalogue.tasks[name as TaskName<Catalogue>] as { payload: z.ZodType } | undefined;
        const parsed = (def?.payload ?? postedData).safeParse(request.body);
        if (!parsed.success) return reply.code(400).send(error('invalid_body', 'the request body is invalid', issues(parsed.error)));
        const hash = sha256(`${name}\n${JSON.stringify(request.body)}`);
        const seen = await store.taskKey(client.name, key);
        if (seen) {
          if (seen.body_hash !== hash)
            return reply.code(409).send(error('conflict', 'this Idempotency-Key was used with another task or body'));
          return reply.code(200).send({ task: name, reply: JSON.parse(seen.reply) as unknown });
        }
        const tid = newTid();
        try {
          const answer = await withTid(tid, () =>
            options.bus.sendByName(name, parsed.data as Record<string, unknown>, {
              idempotencyKey: `webhooks:${client.name}:${key}`,
              attempts: 3,
            }),
          );
          await store.saveTaskKey(client.name, key, name, hash, answer, now());
          return reply.code(200).send({ task: name, reply: answer, tid });
        } catch (err) {
          const code = err instanceof AppError ? err.code : 'ERR_UNKNOWN';
          options.logger.warn({ err, tid, task: name }, `${name} from ${client.name} was not acknowledged`);
          if (err instanceof AppError && err.retryable)
            return reply
              .code(503)
              .header('retry-after', '5')
              .send(error('unavailable', `${name} was not acknowledged (${code}); retry with the same key`));
          if (code === 'ERR_BUS_INVALID_PAYLOAD')
            return reply.code(400).send(error('invalid_body', `the request body is invalid: ${(err as Error).message}`));
          return reply.code(502).send(error('rejected', `${name} was rejected (${code})`));
        }
      });
    },
    { prefix: '/v1' },
  );
  return app;
}
