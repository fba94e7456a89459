import { z } from 'zod';

import { endpointBody, postedData, replayBody } from './schemas';

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
const json = (ref: string) => ({ 'application/json': { schema: { $ref: `#/components/schemas/${ref}` } } });
const err = (description: string) => ({ description, content: json('Error') });
const common = { '401': err('Missing or wrong token'), '429': err('Rate limited (see Retry-After)') };
const idParam = [{ name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' } }];
const schema = (s: z.ZodType) => z.toJSONSchema(s, { io: 'input', unrepresentable: 'any' });

/** The REST API's OpenAPI 3.1 document; request schemas are generated from the zod schemas that validate. */
export const openApiDocument = {
  openapi: '3.1.0',
  info: {
    title: 'steem-bot webhooks',
    version: '1.0.0',
    description:
      'Register endpoints for chain ops and system events, delivered as signed POSTs (Standard Webhooks); post events and tasks. Every /v1 route but this document needs `Authorization: Bearer <token>`.',
  },
  components: {
    securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
    schemas: { Endpoint: schema(endpointBody), Replay: schema(replayBody), EventData: schema(postedData), Error: errorSchema },
  },
  security: [{ bearer: [] }],
  paths: {
    '/v1/endpoints': { get: { summary: "The client's endpoints", responses: { '200': { description: 'The endpoints' }, ...common } } },
    '/v1/endpoints/{id}': {
      put: {
        summary: 'Create or replace an endpoint (the same body twice changes nothing)',
        parameters: idParam,
        requestBody: { required: true, content: json('Endpoint') },
        responses: {
          '201': { description: 'Created; the answer carries the signing secret' },
          '200': { description: 'Updated, or unchanged' },
          '400': err('Invalid body, URL refused, unknown event type, filter on a field no registered type has'),
          ...common,
        },
      },
      get: {
        summary: 'One endpoint',
        parameters: idParam,
        responses: { '200': { description: 'The endpoint' }, '404': err('No such endpoint'), ...common },
      },
      delete: {
        summary: 'Delete an endpoint',
        parameters: idParam,
        responses: { '204': { description: 'Deleted' }, '404': err('No such endpoint'), ...common },
      },
    },
    '/v1/endpoints/{id}/secret': {
      get: {
        summary: 'The signing secret (whsec_...)',
        parameters: idParam,
        responses: { '200': { description: 'secret, previous_valid_until' }, '404': err('No such endpoint'), ...common },
      },
    },
    '/v1/endpoints/{id}/secret/rotate': {
      post: {
        summary: 'A new secret; the previous one also signs for 24 h',
        parameters: idParam,
        responses: { '200': { description: 'secret, previous_valid_until' }, '404': err('No such endpoint'), ...common },
      },
    },
    '/v1/endpoints/{id}/deliveries': {
      get: {
        summary: 'The attempt log',
        parameters: [
          ...idParam,
          { name: 'cursor', in: 'query', schema: { type: 'string' } },
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 200, default: 50 } },
        ],
        responses: {
          '200': { description: 'deliveries and next_cursor' },
          '400': err('Invalid query'),
          '404': err('No such endpoint'),
          ...common,
        },
      },
    },
    '/v1/endpoints/{id}/replay': {
      post: {
        summary: 'Deliver again from a position on',
        parameters: idParam,
        requestBody: { required: true, content: json('Replay') },
        responses: { '202': { description: 'Replaying' }, '400': err('Invalid body'), '404': err('No such endpoint'), ...common },
      },
    },
    '/v1/events/{type}': {
      post: {
        summary: 'Post an event of a type this client owns',
        parameters: [{ name: 'type', in: 'path', required: true, schema: { type: 'string' } }],
        requestBody: { required: true, content: json('EventData') },
        responses: {
          '202': { description: 'Appended: type, position, tid' },
          '400': err('Not a JSON object'),
          '403': err('Not owned'),
          ...common,
        },
      },
    },
    '/v1/tasks/{name}': {
      post: {
        summary: 'Send a task granted to this client (a catalogue task, or a bot task that the bot checks)',
        parameters: [
          { name: 'name', in: 'path', required: true, schema: { type: 'string' } },
          { name: 'Idempotency-Key', in: 'header', required: true, schema: { type: 'string', maxLength: 200 } },
        ],
        responses: {
          '200': { description: "The task's acknowledgement: task, reply" },
          '400': err('Invalid payload or missing Idempotency-Key'),
          '403': err('Not granted'),
          '409': err('Idempotency-Key reused with another body'),
          '502': err('The receiving app rejected the task'),
          '503': err('Not acknowledged in time; retry with the same key'),
          ...common,
        },
      },
    },
  },
};
