import { catalogue, commonOps } from '@steem-bot/config';
import { z } from 'zod';

import { publisherOf } from './publishers';

/** An endpoint id, chosen by the client: the PUT path's last segment. */
export const ENDPOINT_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

const filterValue = z.union([z.string().max(1000), z.number(), z.boolean(), z.null()]);

/** The body of `PUT /v1/endpoints/{id}`. */
export const endpointBody = z.strictObject({
  url: z.string().min(1).max(2000),
  events: z
    .array(z.string().min(1).max(100))
    .min(1)
    .max(100)
    .refine((events) => new Set(events).size === events.length, 'each type once'),
  filter: z
    .record(z.string().min(1).max(100), filterValue)
    .refine((f) => Object.keys(f).length <= 20, 'at most 20 fields')
    .optional(),
  description: z.string().max(500).optional(),
  disabled: z.boolean().optional(),
});
export type EndpointBody = z.infer<typeof endpointBody>;

/** The body of `POST /v1/endpoints/{id}/replay`. */
export const replayBody = z.strictObject({
  from_position: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
});

/** The body of `POST /v1/events/{type}`: the event's data, a JSON object. */
export const postedData = z.record(z.string(), z.unknown());

const closedTypes = new Set<string>([...Object.keys(commonOps), 'block.applied', 'block.reverted']);

/** The top-level fields a catalogue event has, or undefined when they are open (other ops, posted types). */
function fieldsOf(type: string): Set<string> | undefined {
  const schema = catalogue.events[type as keyof typeof catalogue.events] as unknown;
  if (schema === undefined || (publisherOf(type) === 'broadcaster' && !closedTypes.has(type))) return undefined;
  const shape = (schema as { shape?: Record<string, unknown> }).shape;
  return shape ? new Set(Object.keys(shape)) : undefined;
}

/**
 * Field-level problems of an endpoint body beyond its shape: types nobody publishes, filters on
 * fields none of the registered types has. `posted(type)` says whether a client owns a posted type.
 */
export function endpointProblems(body: EndpointBody, posted: (type: string) => boolean): Array<{ path: string; message: string }> {
  const problems: Array<{ path: string; message: string }> = [];
  body.events.forEach((type, i) => {
    if (publisherOf(type) === undefined && !posted(type))
      problems.push({ path: `events.${i}`, message: `unknown event type ${JSON.stringify(type)}` });
  });
  const fields = body.events.map(fieldsOf);
  if (problems.length === 0 && fields.every((f) => f !== undefined)) {
    for (const field of Object.keys(body.filter ?? {})) {
      if (!fields.some((f) => f?.has(field)))
        problems.push({ path: `filter.${field}`, message: 'none of the registered event types has this field' });
    }
  }
  return problems;
}
