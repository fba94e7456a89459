import { emailRequest, emailStatuses, type ErrorCode, errorCodes, MAX_SCHEDULE_MS } from '@steem-bot/config';
import { z } from 'zod';

const mailerCodes = (Object.keys(errorCodes) as ErrorCode[]).filter((c) => c.startsWith('ERR_MAILER_'));

const errorSchema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string', enum: mailerCodes, description: 'A code of the error table (README, "Error codes").' },
        message: { type: 'string' },
        fields: {
          type: 'array',
          description: 'With ERR_MAILER_INVALID_REQUEST: one entry per problem.',
          items: { type: 'object', required: ['path', 'message'], properties: { path: { type: 'string' }, message: { type: 'string' } } },
        },
      },
    },
  },
};
const err = (description: string) => ({ description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } });
const json = (description: string, schema: object = { type: 'object' }) => ({ description, content: { 'application/json': { schema } } });
const accepted = { type: 'object', properties: { id: { type: 'string' }, status: { type: 'string', enum: [...emailStatuses] } } };
const idParam = [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }];

/** Every /v1 route answers these too. */
const common = {
  '401': err('ERR_MAILER_UNAUTHORIZED: missing, wrong or revoked token (with `WWW-Authenticate: Bearer`)'),
  '429': err('ERR_MAILER_RATE_LIMITED: more than MAILER_RATE_LIMIT requests this minute; retry after `Retry-After` seconds'),
  '500': err('ERR_MAILER_INTERNAL: a bug; the details are in the operator log'),
};

const maxYears = Math.round(MAX_SCHEDULE_MS / (366 * 24 * 3600 * 1000));

// The zod schema cannot say "text or html" or the send_at horizon in JSON Schema: add both here.
const requestSchema = z.toJSONSchema(emailRequest, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown> & {
  properties: Record<string, Record<string, unknown>>;
};
requestSchema.anyOf = [{ required: ['text'] }, { required: ['html'] }];
requestSchema.description = 'At least one of `text` and `html` is required. Unknown fields are errors.';
requestSchema.properties.send_at = {
  ...requestSchema.properties.send_at,
  description: `When to send: an ISO 8601 date-time with a time zone, at most ${maxYears} years ahead. Default: now.`,
};
requestSchema.properties.check_url = {
  ...requestSchema.properties.check_url,
  description:
    'http(s) URL asked just before sending (signed POST {id, metadata}, answer {"send": true|false}). Special-purpose addresses (loopback, private, link-local, ...) are refused unless MAILER_CHECK_ALLOW lists them.',
};

/** The REST API's OpenAPI 3.1 document; the request schema is generated from the same zod schema that validates. */
export const openApiDocument = {
  openapi: '3.1.0',
  info: {
    title: 'steem-bot mailer',
    version: '1.0.0',
    description:
      'Queue email for reliable delivery. Every /v1 route but this document needs `Authorization: Bearer <token>`. Every error has the body `{"error": {"code", "message", "fields"?}}`, its code one of the error table, which also fixes its HTTP status.',
  },
  components: {
    securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
    schemas: { EmailRequest: requestSchema, Error: errorSchema },
  },
  security: [{ bearer: [] }],
  paths: {
    '/healthz': {
      get: {
        summary: 'Liveness, and the number of messages per status',
        security: [],
        responses: {
          '200': json('Alive', {
            type: 'object',
            properties: { ok: { const: true }, counts: { type: 'object', additionalProperties: { type: 'integer' } } },
          }),
        },
      },
    },
    '/v1/openapi.json': { get: { summary: 'This document', security: [], responses: { '200': json('The OpenAPI document') } } },
    '/v1/messages': {
      post: {
        summary: 'Queue a message',
        parameters: [
          {
            name: 'Idempotency-Key',
            in: 'header',
            schema: { type: 'string', minLength: 1, maxLength: 200 },
            description:
              'One value of 1-200 characters. Same key and body: the same message (200); same key, other body: 409. A key is remembered MAILER_KEY_KEEP_DAYS, longer than its message.',
          },
        ],
        requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/EmailRequest' } } } },
        responses: {
          '202': json('Queued', accepted),
          '200': json('Already queued under this Idempotency-Key', accepted),
          '400': err('ERR_MAILER_INVALID_REQUEST: invalid body or Idempotency-Key (field-level errors)'),
          ...common,
          '429': err(
            'ERR_MAILER_RATE_LIMITED (see `Retry-After`), or ERR_MAILER_TOO_MANY_PENDING: the client has MAILER_MAX_PENDING messages not yet sent',
          ),
          '409': err('ERR_MAILER_CONFLICT: Idempotency-Key reused with another body'),
          '413': err(
            'ERR_MAILER_TOO_LARGE: body over MAILER_BODY_LIMIT_BYTES, message over MAILER_MAX_MESSAGE_BYTES, or more than MAILER_MAX_RECIPIENTS recipients (to, cc and bcc together)',
          ),
          '415': err('ERR_MAILER_UNSUPPORTED_MEDIA_TYPE: not application/json'),
        },
      },
      get: {
        summary: "List the client's messages, oldest first",
        parameters: [
          { name: 'status', in: 'query', schema: { type: 'string', enum: [...emailStatuses] } },
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 200, default: 50 } },
          { name: 'cursor', in: 'query', schema: { type: 'string' }, description: '`next_cursor` of the previous page' },
        ],
        responses: {
          '200': json('A page of messages and next_cursor'),
          '400': err('ERR_MAILER_INVALID_REQUEST: invalid query'),
          ...common,
        },
      },
    },
    '/v1/messages/{id}': {
      get: {
        summary: 'A message with its attempts (`last_error` and `history` give short reasons; details are in the operator log)',
        parameters: idParam,
        responses: { '200': json('The message'), '404': err('ERR_MAILER_NOT_FOUND: no such message'), ...common },
      },
      delete: {
        summary: 'Cancel a message not yet sent',
        parameters: idParam,
        responses: {
          '200': json('Cancelled', accepted),
          '404': err('ERR_MAILER_NOT_FOUND: no such message'),
          '409': err('ERR_MAILER_CONFLICT: already sending or finished'),
          ...common,
        },
      },
    },
  },
};
