import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import { Bus, createIpcBus, MemoryHub, MemoryTransport } from '@steem-bot/bus';
import { type Catalogue, catalogue, type CatalogueShape, type Config } from '@steem-bot/config';
import { keptLogger, testSetup } from '@steem-bot/testkit';
import { Webhook } from 'standardwebhooks';

import { addClient, type Dispatcher, grantTask, SqliteWebhookStore, startWebhooks, storeFile } from '../src';

export interface WebhooksEnv {
  config: Config;
  env: Record<string, string>;
  dir: string;
  hub: MemoryHub;
  /** A bus on the test's transport; an app with tasks of its own (a bot) passes its catalogue. */
  busFor<C extends CatalogueShape = Catalogue>(app: string, own?: C): Bus<C>;
  /** A store handle for the test (the app opens its own). */
  store: SqliteWebhookStore;
  cleanup(): Promise<void>;
}

/**
 * A private DATA_DIR, fast retries, loopback allowed, and an in-memory bus hub; with `ipc`, the
 * buses are real node-ipc ones in a private SOCKET_DIR (streams on disk, surviving a restart).
 */
export function webhooksEnv(
  vars: Record<string, string> = {},
  {
    ipc = false,
    seed,
  }: { ipc?: boolean; /** Writes the store file before it is opened (an older version's). */ seed?: (file: string) => void } = {},
): WebhooksEnv {
  const t = testSetup({
    WEBHOOKS_PORT: '0',
    WEBHOOKS_ALLOW: '127.0.0.1',
    WEBHOOKS_RETRY_SCHEDULE_MS: '30,30,30,30,30,30,30',
    WEBHOOKS_TIMEOUT_MS: '2000',
    WEBHOOKS_RATE_LIMIT: '100000',
    ...vars,
  });
  const hub = new MemoryHub();
  seed?.(storeFile(t.config.DATA_DIR));
  const store = new SqliteWebhookStore(storeFile(t.config.DATA_DIR));
  return {
    config: t.config,
    env: t.env,
    dir: t.dir,
    hub,
    busFor: <C extends CatalogueShape = Catalogue>(app: string, own?: C): Bus<C> => {
      const cat = own ?? (catalogue as CatalogueShape as C);
      return ipc
        ? createIpcBus(app, cat, t.config, keptLogger(app).logger)
        : new Bus({ app, catalogue: cat, transport: new MemoryTransport(hub), logger: keptLogger(app).logger, taskTimeoutMs: 2_000 });
    },
    store,
    cleanup: async () => {
      await store.close();
      t.cleanup();
    },
  };
}

/** The app as its process runs it; `stop` also closes its bus, as runApp does. */
export async function startApp(
  w: WebhooksEnv,
  options: Parameters<typeof startWebhooks>[1] = {},
): Promise<{ url: string; lines: Array<Record<string, unknown>>; dispatcher: Dispatcher; stop(): Promise<void> }> {
  const { logger, lines } = keptLogger('webhooks', 'debug');
  const bus = w.busFor('webhooks');
  const app = await startWebhooks({ config: w.config, logger, bus }, options);
  return { url: app.url, lines, dispatcher: app.dispatcher, stop: () => app.stop().then(() => bus.close()) };
}

/** A client with a token; `tasks` granted, `events` owned. */
export async function client(w: WebhooksEnv, name: string, events: string[] = [], tasks: string[] = []): Promise<string> {
  const { token } = await addClient(w.store, name, events);
  for (const task of tasks) await grantTask(w.store, name, task);
  return token;
}

/** fetch against the API with a bearer token and a JSON body. */
export async function call(
  url: string,
  token: string | undefined,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const res = await fetch(url + path, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...headers,
    },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await res.text();
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    parsed = { raw: text };
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

/** One POST a receiver got. */
export interface Received {
  id: string;
  timestamp: string;
  signature: string;
  body: { type: string; position: number; tid: string; timestamp: string; data: Record<string, unknown> };
  raw: string;
  /** Whether the signature verified with the secrets the receiver knows (standardwebhooks). */
  verified: boolean;
  at: number;
}

/** What a receiver answers to its n-th request (0-based): a status, or `hang` (never answers). */
export type Script = (n: number, req: IncomingMessage, res: ServerResponse) => number | 'hang' | void;

/** A real HTTP receiver on 127.0.0.1 that verifies every POST with the standardwebhooks library. */
export class Receiver {
  readonly got: Received[] = [];
  readonly secrets: string[] = [];
  private server!: Server;
  private n = 0;

  private constructor(private readonly script: Script) {}

  static async start(script: Script = () => 200): Promise<Receiver> {
    const r = new Receiver(script);
    r.server = createServer((req, res) => r.onRequest(req, res));
    await new Promise<void>((resolve) => r.server.listen(0, '127.0.0.1', resolve));
    return r;
  }

  /** Requests received so far, whatever the answer. */
  get requests(): number {
    return this.n;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
  }

  /** Unique deliveries by webhook-id, in the order they first arrived. */
  get unique(): Received[] {
    const seen = new Set<string>();
    return this.got.filter((g) => (seen.has(g.id) ? false : (seen.add(g.id), true)));
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      const n = this.n++;
      const headers = {
        'webhook-id': String(req.headers['webhook-id']),
        'webhook-timestamp': String(req.headers['webhook-timestamp']),
        'webhook-signature': String(req.headers['webhook-signature']),
      };
      const verified =
        this.secrets.length > 0 &&
        this.secrets.every((s) => {
          try {
            new Webhook(s).verify(raw, headers);
            return true;
          } catch {
            return false;
          }
        });
      const answer = this.script(n, req, res);
      if (answer === 'hang' || res.headersSent) return;
      const status = answer ?? 200;
      if (status >= 200 && status < 300)
        this.got.push({
          id: headers['webhook-id'],
          timestamp: headers['webhook-timestamp'],
          signature: headers['webhook-signature'],
          body: JSON.parse(raw) as Received['body'],
          raw,
          verified,
          at: Date.now(),
        });
      res.writeHead(status).end(status >= 200 && status < 300 ? 'ok' : 'no');
    });
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** A fake broadcaster on the in-memory hub: publishes transfers at chain positions. */
export async function fakeBroadcaster(
  w: WebhooksEnv,
): Promise<{ transfer(pos: number, from: string, to: string): Promise<void>; bus: Bus<Catalogue> }> {
  const bus = w.busFor('broadcaster');
  await bus.serve({ floor: 0 });
  return {
    bus,
    transfer: (pos, from, to) =>
      bus.publish(
        'transfer',
        {
          from,
          to,
          amount: '1.000 STEEM',
          memo: `#${pos}`,
          block_num: Math.floor(pos / 1_000_000),
          block_id: '000f4240aaaa',
          timestamp: '2016-04-29T04:00:03',
          trx_id: 'aa',
          trx_in_block: 0,
          op_in_trx: 0,
          op_in_block: pos % 1_000_000,
        },
        { position: pos },
      ),
  };
}

export { waitFor } from '@steem-bot/testkit';
