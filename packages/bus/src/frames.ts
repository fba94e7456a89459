import type { SerializedError } from '@steem-bot/config';

/**
 * The bus's wire format, on top of node-ipc's `{"type": name, "data": {...}}\f` frames.
 * Documented in packages/bus/README.md; keep the two in step.
 */

/** Key of the envelope inside an event's `data`, beside the payload's own fields. */
export const META_KEY = '$bus';

/** The envelope of one event. */
export interface EventMeta {
  /** Transaction id, kept by every message this one causes. */
  tid: string;
  /** Position in the publishing app's stream: a safe integer, strictly increasing. */
  pos: number;
  /** Milliseconds since the epoch when the event was published. */
  ts: number;
}

/** An event as it crosses the transport. */
export interface WireEvent extends EventMeta {
  name: string;
  payload: Record<string, unknown>;
}

/** A task or call as it crosses the transport. */
export interface WireTask {
  name: string;
  payload: unknown;
  tid: string;
  /** Idempotency key: the receiver runs a task once per key. */
  key?: string;
}

/** Control frames; the `bus.` prefix is never a catalogue name. */
export const CONTROL = {
  /** client -> server: `{ names: string[], from: number | null }`. */
  subscribe: 'bus.subscribe',
  /** server -> client, first answer to a subscribe: events from here on follow that subscription. */
  subscribed: 'bus.subscribed',
  /** server -> client: `{ after: number | null, resumeAt: number }`: events in (after, resumeAt] are gone. */
  gap: 'bus.gap',
  /** client -> server: `{ id, name, payload, tid, key? }`. */
  task: 'bus.task',
  /** server -> client: `{ id, reply }` once the task is accepted. */
  ack: 'bus.ack',
  /** server -> client: `{ id, error: SerializedError }`. */
  nack: 'bus.nack',
} as const;

export interface SubscribeFrame {
  names: string[];
  from: number | null;
}
export interface GapFrame {
  after: number | null;
  resumeAt: number;
}
export interface TaskFrame extends WireTask {
  id: number;
}
export interface AckFrame {
  id: number;
  reply?: unknown;
}
export interface NackFrame {
  id: number;
  error: SerializedError;
}

/** Events node-ipc raises itself; never application frames. */
export const NODE_IPC_LIFECYCLE: ReadonlySet<string> = new Set([
  'start',
  'connect',
  'disconnect',
  'destroy',
  'close',
  'socket.disconnected',
  'error',
  'data',
]);

/**
 * One event frame, as node-ipc would write it (`{"type":name,"data":{...payload,"$bus":meta}}\f`),
 * built by splicing the envelope into the payload's JSON rather than copying the payload.
 * `name` must be a catalogue name (checked by defineCatalogue), so it needs no escaping checks.
 */
export function encodeEvent(name: string, payload: Record<string, unknown>, meta: EventMeta): string {
  const body = JSON.stringify(payload);
  const envelope = `"${META_KEY}":{"tid":${JSON.stringify(meta.tid)},"pos":${meta.pos},"ts":${meta.ts}}`;
  const data = body === '{}' ? `{${envelope}}` : `${body.slice(0, -1)},${envelope}}`;
  return `{"type":${JSON.stringify(name)},"data":${data}}\f`;
}

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** The path of the first `__proto__`/`constructor`/`prototype` key anywhere in `value`, if any. */
export function findForbiddenKey(value: unknown, path = '', depth = 0): string | undefined {
  if (value === null || typeof value !== 'object' || depth > 64) return undefined;
  for (const key of Object.keys(value)) {
    if (FORBIDDEN_KEYS.has(key)) return `${path}${key}`;
    const found = findForbiddenKey((value as Record<string, unknown>)[key], `${path}${key}.`, depth + 1);
    if (found !== undefined) return found;
  }
  return undefined;
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
