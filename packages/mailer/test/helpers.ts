import { Bus, MemoryHub, MemoryTransport } from '@steem-bot/bus';
import { type Catalogue, catalogue, type Config } from '@steem-bot/config';
import { keptLogger, testSetup } from '@steem-bot/testkit';

import { MailStore, newClient, startIntake, startWorker, storeFile } from '../src';

export interface MailerEnv {
  config: Config;
  env: Record<string, string>;
  dir: string;
  hub: MemoryHub;
  busFor(app: string): Bus<Catalogue>;
  /** A store handle for the test (the apps open their own). */
  store: MailStore;
  cleanup(): void;
}

export function mailerEnv(vars: Record<string, string> = {}): MailerEnv {
  const t = testSetup({
    MAILER_PORT: '0',
    MAILER_RETRY_BASE_MS: '50',
    MAILER_RETRY_MAX_MS: '200',
    MAILER_LEASE_MS: '2000',
    MAILER_SMTP_TIMEOUT_MS: '2000',
    ...vars,
  });
  const hub = new MemoryHub();
  const store = new MailStore(storeFile(t.config.DATA_DIR));
  return {
    config: t.config,
    env: t.env,
    dir: t.dir,
    hub,
    busFor: (app) => new Bus({ app, catalogue, transport: new MemoryTransport(hub), logger: keptLogger(app).logger, taskTimeoutMs: 2_000 }),
    store,
    cleanup: () => {
      store.close();
      t.cleanup();
    },
  };
}

/** The intake as its process runs it; `stop` also closes its bus, as runApp does. */
export async function startApi(m: MailerEnv, now?: () => number): Promise<Awaited<ReturnType<typeof startIntake>>> {
  const { logger } = keptLogger('mailer');
  const bus = m.busFor('mailer');
  const intake = await startIntake({ config: m.config, logger, bus }, now);
  return { url: intake.url, stop: () => intake.stop().then(() => bus.close()) };
}

export async function startMailWorker(
  m: MailerEnv,
  now?: () => number,
): Promise<Awaited<ReturnType<typeof startWorker>> & { lines: Array<Record<string, unknown>> }> {
  const { logger, lines } = keptLogger('mailer-worker');
  const bus = m.busFor('mailer-worker');
  const running = await startWorker({ config: m.config, logger, bus }, now);
  return { worker: running.worker, lines, stop: () => running.stop().then(() => bus.close()) };
}

export function client(m: MailerEnv, name: string, from?: string[]): { token: string; secret: string } {
  const { row, token, secret } = newClient(name, from);
  m.store.addClient(row);
  return { token, secret };
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
