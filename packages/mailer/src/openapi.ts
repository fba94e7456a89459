import { emailRequest, emailStatuses } from '@steem-bot/config';
import { z } from 'zod';

const errorSchema = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: {
        code: { type: 'string' },
        message: { type: 'string' },
        fields: { type: 'array', items: { type: 'object', properties: { path: { type: 'string' }, message: { type: 'string' } } } },
      },
    },
  },
};
const err = (description: string) => ({ description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } });
const accepted = { type: 'object', properties: { id: { type: 'string' }, status: { type: 'string', enum: [...emailStatuses] } } };
const idParam = [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }];

/** The REST API's OpenAPI 3.1 document; the request schema is generated from the same zod schema that validates. */
export const openApiDocument = {
  openapi: '3.1.0',
  info: {
    title: 'steem-bot mailer',
    version: '1.0.0',
    description: 'Queue email for reliable delivery. Every /v1 route but this document needs `Authorization: Bearer <token>`.',
  },
  components: {
    securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
    schemas: { EmailRequest: z.toJSONSchema(emailRequest, { io: 'input', unrepresentable: 'any' }), Error: errorSchema },
  },
  security: [{ bearer: [] }],
  paths: {
    '/v1/messages': {
      post: {
        summary: 'Queue a message',
        parameters: [
          {
            name: 'Idempotency-Key',
            in: 'header',
            schema: { type: 'string', maxLength: 200 },
            description: 'Same key and body: the same message; same key, other body: 409.',
          },
        ],
        requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/EmailRequest' } } } },
        responses: {
          '202': { description: 'Queued', content: { 'application/json': { schema: accepted } } },
          '200': { description: 'Already queued under this Idempotency-Key', content: { 'application/json': { schema: accepted } } },
          '400': err('Invalid body (field-level errors)'),
          '401': err('Missing or wrong token'),
          '409': err('Idempotency-Key reused with another body'),
          '413': err('Body too large'),
          '415': err('Not application/json'),
          '429': err('Rate limited (see Retry-After)'),
        },
      },
      get: {
        summary: "List the client's messages",
        parameters: [
          { name: 'status', in: 'query', schema: { type: 'string', enum: [...emailStatuses] } },
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 200, default: 50 } },
          { name: 'cursor', in: 'query', schema: { type: 'string' } },
        ],
        responses: { '200': { description: 'A page of messages and next_cursor' }, '400': err('Invalid query') },
      },
    },
    '/v1/messages/{id}': {
      get: {
        summary: 'A message with its attempts',
        parameters: idParam,
        responses: { '200': { description: 'The message' }, '404': err('No such message') },
      },
      delete: {
        summary: 'Cancel a message not yet sent',
        parameters: idParam,
        responses: { '200': { description: 'Cancelled' }, '404': err('No such message'), '409': err('Already sending or finished') },
      },
    },
  },
};
