import { createHash } from 'node:crypto';

import type { OutboxTarget } from '@steem-bot/store';

export interface ClientRow {
  name: string;
  token_hash: string;
  /** JSON array of the event types this client may post. */
  owned_events: string;
  /** JSON array of the catalogue tasks this client may send. */
  granted_tasks: string;
  created_at: number;
  revoked_at: number | null;
}

export interface EndpointRow {
  seq: number;
  client: string;
  id: string;
  url: string;
  /** JSON array of event types. */
  events: string;
  /** JSON object of top-level equality filters. */
  filter: string;
  description: string;
  disabled: number;
  disabled_reason: string | null;
  secret: string;
  old_secret: string | null;
  old_secret_until: number | null;
  /** Failed tries of the event at the head of the endpoint (0 when it is flowing). */
  attempts: number;
  next_attempt_at: number | null;
  failing_since: number | null;
  created_at: number;
  updated_at: number;
}

/** What a client sets with PUT. */
export interface EndpointSpec {
  url: string;
  events: string[];
  filter: Record<string, string | number | boolean | null>;
  description: string;
  disabled: boolean;
}

export interface DeliveryRow {
  seq: number;
  at: number;
  type: string;
  position: number;
  webhook_id: string;
  status: number | null;
  error: string | null;
  duration_ms: number;
  response: string | null;
}

/** One of the webhooks app's own events, written with the change that causes it (outbox). */
export interface OwnEvent {
  name: 'event.posted' | 'endpoint.disabled';
  payload: Record<string, unknown>;
  tid: string;
}

export const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/** What a logged try changes with it (see `logDelivery`). */
export interface AttemptEffects {
  /** Move the cursor on `app`'s stream to `pos` (as `advance`). */
  advance?: { app: string; pos: number };
  /** Set the retry state (as `setRetry`). */
  retry?: { attempts: number; nextAttemptAt: number | null; failingSince: number | null };
}

/** Every row of a store, as `npm run webhooks -- migrate-store` copies it from SQLite to PostgreSQL. */
export interface StoreDump {
  clients: ClientRow[];
  endpoints: EndpointRow[];
  cursors: Array<{ endpoint_seq: number; app: string; pos: number }>;
  deliveries: Array<DeliveryRow & { endpoint_seq: number }>;
  task_keys: Array<{ client: string; idem_key: string; name: string; body_hash: string; reply: string; created_at: number }>;
  /** Own events not yet on the stream, and the outbox's position head. */
  outbox: Array<{ pos: number; name: string; payload: string; tid: string }>;
  outbox_head: number | null;
}

/** Attempt log rows kept per endpoint; older ones are dropped as new ones come. */
export const KEEP_DELIVERIES = 1_000;

/** The bus app whose stream carries the webhooks app's own events. */
export const OWN_APP = 'webhooks';

/**
 * The webhooks app's state: REST clients, endpoints and their cursors, the attempt log, the
 * outbox of its own events and the task idempotency keys. Every method is one transaction.
 *
 * Two implementations: SQLite (`DATA_DIR/webhooks.sqlite`, the default) and PostgreSQL
 * (`STORE=postgres`). `test/store.conformance.test.ts` holds both to one contract.
 */
export interface WebhookStore {
  // clients
  /** A plain insert: a name once used (even revoked) is never handed to someone else (throws). */
  addClient(row: Omit<ClientRow, 'revoked_at'>): Promise<void>;
  client(name: string): Promise<ClientRow | undefined>;
  clients(): Promise<ClientRow[]>;
  /** True if an active client was revoked. */
  revokeClient(name: string, now: number): Promise<boolean>;
  setClientLists(name: string, owned: string[], granted: string[]): Promise<void>;
  /** Whether any active client owns the posted type. */
  typeOwned(type: string): Promise<boolean>;

  // endpoints
  endpoint(client: string, id: string): Promise<EndpointRow | undefined>;
  endpointBySeq(seq: number): Promise<EndpointRow | undefined>;
  /** Every endpoint (of `client`), oldest first. */
  endpoints(client?: string): Promise<EndpointRow[]>;
  countEndpoints(client: string): Promise<number>;
  /**
   * Create or update an endpoint. Returns `created`, and `changed` when anything the client set
   * differs (the same body twice changes nothing). A change resets the retry state.
   */
  upsertEndpoint(
    client: string,
    id: string,
    spec: EndpointSpec,
    secret: string,
    now: number,
  ): Promise<{ row: EndpointRow; created: boolean; changed: boolean }>;
  /** Delete it with its cursors and attempt log; returns the row it was. */
  deleteEndpoint(client: string, id: string): Promise<EndpointRow | undefined>;
  /** The current secret becomes the old one (valid until `oldUntil`). */
  rotateSecret(seq: number, secret: string, oldUntil: number): Promise<void>;
  /** Disable an endpoint; `event` (endpoint.disabled) goes to the outbox in the same transaction. */
  disable(seq: number, reason: string, now: number, event?: OwnEvent): Promise<void>;
  /**
   * Enable a disabled endpoint (the operator's Enable), with its retry state cleared so its held
   * event is tried at once; false when it was not disabled (nothing changes).
   */
  enable(seq: number, now: number): Promise<boolean>;
  /** The retry state of the event at the head of the endpoint. */
  setRetry(seq: number, attempts: number, nextAttemptAt: number | null, failingSince: number | null): Promise<void>;

  // cursors
  cursor(seq: number, app: string): Promise<number | null>;
  /** Move the endpoint's cursor on `app`'s stream to `pos` if that is further (the event is done). */
  advance(seq: number, app: string, pos: number): Promise<void>;
  /** Set the endpoint's cursors on `apps` to `pos` (replay), and clear its retry state. */
  setCursors(seq: number, apps: readonly string[], pos: number): Promise<void>;
  /** `{app: pos}` of the endpoint. */
  cursors(seq: number): Promise<Record<string, number>>;

  // attempt log
  /**
   * Log one try (only the newest KEEP_DELIVERIES per endpoint are kept) and, in the same
   * transaction, what it settled: the cursor moved past a delivered event, the retry state.
   */
  logDelivery(seq: number, row: Omit<DeliveryRow, 'seq'>, after?: AttemptEffects): Promise<void>;
  /** The endpoint's log after `after` (a row's seq), oldest first. */
  deliveries(seq: number, after: number, limit: number): Promise<DeliveryRow[]>;

  // the app's own events
  /** Write an own event (a posted one) to the outbox; returns its stream position (time-based, increasing). */
  addOwnEvent(event: OwnEvent, now: number): Promise<number>;
  /** Own events waiting in the outbox, oldest first. */
  pendingOwn(): Promise<Array<OwnEvent & { pos: number }>>;
  /**
   * Move what waits in the outbox to `target` (the app's bus stream) in order, skipping what the
   * stream already holds; concurrent calls share one run (and one more pass).
   */
  relayOwn(target: OutboxTarget): Promise<void>;

  // task idempotency
  taskKey(client: string, key: string): Promise<{ name: string; body_hash: string; reply: string } | undefined>;
  /** Keep the reply of a task sent under (client, key); a second save of the same key changes nothing. */
  saveTaskKey(client: string, key: string, name: string, bodyHash: string, reply: unknown, now: number): Promise<void>;

  close(): Promise<void>;
}
