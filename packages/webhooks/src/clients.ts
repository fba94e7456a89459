import { randomBytes, timingSafeEqual } from 'node:crypto';

import { catalogue, isTaskName } from '@steem-bot/config';

import { postableType } from './publishers';
import { type ClientRow, sha256, type WebhookStore } from './store';

/** A CLI or API misuse with a message for the person who made it. */
export class ClientError extends Error {}

const NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/** A new client: the token is shown once; only its hash is stored. */
export async function addClient(
  store: WebhookStore,
  name: string,
  ownedEvents: string[] = [],
  now = Date.now(),
): Promise<{ token: string }> {
  if (!NAME.test(name)) throw new ClientError('client names are lower-case letters, digits, _ and -');
  if (await store.client(name)) throw new ClientError(`the client name ${name} is taken (names of revoked clients are never reused)`);
  for (const type of ownedEvents) checkOwnable(type);
  const token = `${name}.${randomBytes(32).toString('base64url')}`;
  await store.addClient({
    name,
    token_hash: sha256(token),
    owned_events: JSON.stringify(ownedEvents),
    granted_tasks: '[]',
    created_at: now,
  });
  return { token };
}

function checkOwnable(type: string): void {
  if (!postableType(type))
    throw new ClientError(`${type}: a posted type is "<name>.<name>" (lower-case, digits, _ and -) and not a catalogue event`);
}

const lists = (c: ClientRow): { owned: string[]; granted: string[] } => ({
  owned: JSON.parse(c.owned_events) as string[],
  granted: JSON.parse(c.granted_tasks) as string[],
});

async function activeClient(store: WebhookStore, name: string): Promise<ClientRow> {
  const client = await store.client(name);
  if (!client || client.revoked_at !== null) throw new ClientError(`no active client ${name}`);
  return client;
}

/** Let a client send a task through `POST /v1/tasks/{name}`: a catalogue task, or a bot's own (checked by the bot). */
export async function grantTask(store: WebhookStore, name: string, task: string): Promise<void> {
  const client = await activeClient(store, name);
  if (!(task in catalogue.tasks) && !isTaskName(task))
    throw new ClientError(
      `${task} is not a task name (<app>.<model>.<verb>): a catalogue task or a bot's own (such as digest.report.send)`,
    );
  const { owned, granted } = lists(client);
  if (!granted.includes(task)) await store.setClientLists(name, owned, [...granted, task]);
}

/** Declare an event type the client owns and may post (`POST /v1/events/{type}`). */
export async function ownEvent(store: WebhookStore, name: string, type: string): Promise<void> {
  const client = await activeClient(store, name);
  checkOwnable(type);
  const other = (await store.clients()).find((c) => c.name !== name && c.revoked_at === null && lists(c).owned.includes(type));
  if (other) throw new ClientError(`${type} is owned by another client`);
  const { owned, granted } = lists(client);
  if (!owned.includes(type)) await store.setClientLists(name, [...owned, type], granted);
}

export const ownedEvents = (c: ClientRow): string[] => lists(c).owned;
export const grantedTasks = (c: ClientRow): string[] => lists(c).granted;

/** The client a bearer token belongs to, compared in constant time; undefined if none or revoked. */
export async function authenticate(store: WebhookStore, header: string | undefined): Promise<ClientRow | undefined> {
  const match = /^Bearer ([^\s]+)$/.exec(header ?? '');
  if (!match) return undefined;
  const token = match[1] as string;
  const name = token.slice(0, Math.max(0, token.lastIndexOf('.')));
  const client = name ? await store.client(name) : undefined;
  // Hash either way, so an unknown name costs the same as a wrong secret.
  const given = Buffer.from(sha256(token), 'hex');
  const expected = Buffer.from(client?.token_hash ?? sha256(`${token}x`), 'hex');
  const equal = timingSafeEqual(given, expected);
  return client && equal && client.revoked_at === null ? client : undefined;
}

/** A new Standard Webhooks signing secret: `whsec_` + base64 of 32 random bytes. */
export const newSecret = (): string => `whsec_${randomBytes(32).toString('base64')}`;
