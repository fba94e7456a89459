import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

import type { Bus } from '@steem-bot/bus';
import {
  AppError,
  type Catalogue,
  type Config,
  type ErrorCode,
  errorCodes,
  type Logger,
  newTid,
  serializeError,
  withTid,
} from '@steem-bot/config';

import { type ActionRequest, actionRequest, isLoopback, runAction, tokenMatches } from './actions';
import { StatusMetrics } from './metrics';
import type { Pm2App } from './pm2';
import { openReaders } from './readers';
import { collectStatus, type SystemStatus } from './status';
import { isTid, traceTid } from './trace';

export interface ConsoleOptions {
  config: Pick<
    Config<'console' | 'clock' | 'store'>,
    | 'DATA_DIR'
    | 'STORE'
    | 'DATABASE_URL'
    | 'DATABASE_SCHEMA'
    | 'CLOCK_SCHEDULES'
    | 'BUS_TRANSPORT'
    | 'BUS_AMQP_URLS'
    | 'CONSOLE_HOST'
    | 'CONSOLE_PORT'
    | 'CONSOLE_TOKEN'
    | 'CONSOLE_REFRESH_MS'
  >;
  logger: Logger;
  bus: Pick<Bus<Catalogue>, 'call' | 'send' | 'sendByName'>;
  listApps: () => Promise<Pm2App[]>;
  /** Directory of the page's assets (default: the package's `public/`). */
  publicDir?: string;
}

export interface RunningConsole {
  url: string;
  /** The newest status collected (collects one when none is fresh). */
  status(): Promise<SystemStatus>;
  stop(): Promise<void>;
}

const ASSETS: Record<string, string> = {
  '/': 'index.html',
  '/app.js': 'app.js',
  '/app.css': 'app.css',
  '/favicon.svg': 'favicon.svg',
};
const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  svg: 'image/svg+xml',
};
const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};
/** Samples kept for the page's charts: an hour at the default refresh. */
const HISTORY = 1_800;

export interface Sample {
  t: number;
  block: number | null;
  bots: Record<string, number | null>;
  /** Each bot's checkpoint block (the blocks it handled per minute, charted). */
  botBlocks?: Record<string, number | null>;
  subscribers: Record<string, number>;
}

/**
 * Start the console: the page and its assets, the status as JSON and as server-sent events,
 * /metrics, the TID trace, and actions (token + same origin) that go through the owning app's task.
 */
export async function startConsole(o: ConsoleOptions): Promise<RunningConsole> {
  const { config, logger } = o;
  if (!isLoopback(config.CONSOLE_HOST) && config.CONSOLE_TOKEN === '')
    throw new AppError(
      'ERR_CONFIG_INVALID',
      `CONSOLE_HOST ${config.CONSOLE_HOST} is not loopback: set CONSOLE_TOKEN, or listen on 127.0.0.1`,
    );
  if (config.CONSOLE_TOKEN === '') logger.warn('no CONSOLE_TOKEN: the console is read-only (every action is refused)');
  const publicDir = o.publicDir ?? join(__dirname, '..', 'public');
  const assets = new Map(Object.entries(ASSETS).map(([path, file]) => [path, readFileSync(join(publicDir, file))]));
  // One small read-only pool (PostgreSQL) for every collection and trace, closed at stop.
  const stores = openReaders(config);
  const metrics = new StatusMetrics();
  const clients = new Set<ServerResponse>();
  const history: Sample[] = [];
  let latest: SystemStatus | undefined;
  let collecting: Promise<SystemStatus> | undefined;

  const collect = (): Promise<SystemStatus> =>
    (collecting ??= (async () => {
      try {
        const apps = await o.listApps().catch((err: unknown) => {
          logger.warn({ err }, 'PM2 did not answer');
          return [];
        });
        const status = await collectStatus({ config, bus: o.bus, apps, stores });
        latest = status;
        history.push(sampleOf(status));
        if (history.length > HISTORY) history.shift();
        return status;
      } finally {
        collecting = undefined;
      }
    })());
  const fresh = async (): Promise<SystemStatus> =>
    latest && Date.now() - Date.parse(latest.at) < config.CONSOLE_REFRESH_MS ? latest : collect();

  const push = (status: SystemStatus): void => {
    const frame = `event: status\ndata: ${JSON.stringify({ status, sample: history.at(-1) })}\n\n`;
    for (const res of clients) res.write(frame);
  };
  let timer: NodeJS.Timeout | undefined;
  const tick = (): void => {
    collect()
      .then(push)
      .catch((err: unknown) => logger.error({ err }, 'status collection failed'))
      .finally(() => {
        if (timer) timer = setTimeout(tick, config.CONSOLE_REFRESH_MS);
      });
  };
  timer = setTimeout(tick, 0);

  const send = (res: ServerResponse, code: number, body: string | Buffer, type: string, extra: Record<string, string> = {}): void => {
    res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store', ...SECURITY_HEADERS, ...extra });
    res.end(body);
  };
  const json = (res: ServerResponse, code: number, body: unknown): void => send(res, code, JSON.stringify(body), 'application/json');
  const fail = (res: ServerResponse, err: { code: string; message: string }): void =>
    json(res, err.code in errorCodes ? errorCodes[err.code as ErrorCode].http : 500, { error: { code: err.code, message: err.message } });

  const hostAllowed = (req: IncomingMessage): boolean => {
    // A page of another site resolving its name to 127.0.0.1 (DNS rebinding) sends its own Host.
    if (!isLoopback(config.CONSOLE_HOST)) return true;
    const host = (req.headers.host ?? '').replace(/:\d+$/, '');
    return isLoopback(host);
  };

  const handleAction = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const who = `${req.socket.remoteAddress ?? '?'}`;
    const origin = req.headers.origin;
    const site = req.headers['sec-fetch-site'];
    if (
      (origin !== undefined && origin !== `http://${req.headers.host ?? ''}`) ||
      (site !== undefined && site !== 'same-origin' && site !== 'none')
    )
      return fail(res, new AppError('ERR_CONSOLE_FORBIDDEN', 'cross-site request refused'));
    if (config.CONSOLE_TOKEN === '')
      return fail(res, new AppError('ERR_CONSOLE_FORBIDDEN', 'actions are disabled: set CONSOLE_TOKEN and restart the console'));
    const token = req.headers['x-console-token'];
    if (!tokenMatches(typeof token === 'string' ? token : undefined, config.CONSOLE_TOKEN)) {
      logger.warn({ who }, 'console action refused: missing or wrong token');
      return fail(res, new AppError('ERR_CONSOLE_UNAUTHORIZED', 'missing or wrong X-Console-Token'));
    }
    if (!String(req.headers['content-type'] ?? '').startsWith('application/json'))
      return fail(res, new AppError('ERR_BUS_INVALID_PAYLOAD', 'send the action as application/json'));
    let body: unknown;
    try {
      body = JSON.parse(await readBody(req, 4_096));
    } catch (err) {
      return fail(res, err instanceof AppError ? err : new AppError('ERR_BUS_INVALID_PAYLOAD', 'the body is not JSON'));
    }
    const parsed = actionRequest.safeParse(body);
    if (!parsed.success)
      return fail(
        res,
        new AppError(
          'ERR_BUS_INVALID_PAYLOAD',
          `not an action: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}`,
        ),
      );
    const action = parsed.data;
    const what = describe(action);
    await withTid(newTid(), async () => {
      try {
        const reply = await runAction(o.bus, action);
        logger.info({ who, action }, `console action: ${what}`);
        json(res, 200, { ok: true, reply });
        void collect().then(push, () => undefined);
      } catch (err) {
        const e = serializeError(err);
        logger.warn({ who, action, err }, `console action failed: ${what}: ${e.message}`);
        fail(res, e);
      }
    });
  };

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://console.invalid');
    if (!hostAllowed(req)) return send(res, 421, 'wrong Host\n', 'text/plain');
    const asset = req.method === 'GET' ? assets.get(url.pathname) : undefined;
    if (asset) return send(res, 200, asset, TYPES[ASSETS[url.pathname]?.split('.').pop() ?? 'html'] ?? 'application/octet-stream');
    if (req.method === 'GET' && url.pathname === '/api/status') return json(res, 200, { status: await fresh(), history });
    if (req.method === 'GET' && url.pathname === '/events') {
      res.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-store',
        connection: 'keep-alive',
        ...SECURITY_HEADERS,
      });
      res.write(`retry: 3000\n\n`);
      clients.add(res);
      req.on('close', () => clients.delete(res));
      if (latest) res.write(`event: status\ndata: ${JSON.stringify({ status: latest, history })}\n\n`);
      return;
    }
    if (req.method === 'GET' && url.pathname === '/metrics') {
      metrics.update(await fresh());
      return send(res, 200, await metrics.text(), metrics.registry.contentType);
    }
    if (req.method === 'GET' && url.pathname === '/api/trace') {
      const tid = url.searchParams.get('tid') ?? '';
      if (!isTid(tid))
        return fail(res, new AppError('ERR_BUS_INVALID_PAYLOAD', 'not a TID: letters, digits, - and _ (6 to 64 characters)'));
      return json(res, 200, { tid, records: await traceTid(stores, tid) });
    }
    if (req.method === 'POST' && url.pathname === '/api/actions') return handleAction(req, res);
    send(res, 404, 'not found\n', 'text/plain');
  };
  // A failing route answers 500 and is logged; it never takes the console down.
  const server = createServer((req, res) => {
    route(req, res).catch((err: unknown) => {
      logger.error({ err, url: req.url }, 'console request failed');
      if (!res.headersSent) json(res, 500, { error: { code: 'ERR_INTERNAL', message: 'internal error' } });
      else res.destroy();
    });
  });
  // Keep-alive pings so proxies and browsers keep an idle event stream open.
  const ping = setInterval(() => {
    for (const res of clients) res.write(': ping\n\n');
  }, 25_000);
  ping.unref();

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.CONSOLE_PORT, config.CONSOLE_HOST, () => resolve());
    });
  } catch (err) {
    clearTimeout(timer);
    timer = undefined;
    clearInterval(ping);
    await collecting?.catch(() => undefined);
    await stores.close();
    throw err;
  }
  const { port } = server.address() as AddressInfo;
  const url = `http://${config.CONSOLE_HOST.includes(':') ? `[${config.CONSOLE_HOST}]` : config.CONSOLE_HOST}:${port}`;
  return {
    url,
    status: fresh,
    async stop() {
      const t = timer;
      timer = undefined;
      clearTimeout(t);
      clearInterval(ping);
      for (const res of clients) res.end();
      clients.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await collecting?.catch(() => undefined);
      await stores.close();
    },
  };
}

/** What an action does, for the log line. */
function describe(a: ActionRequest): string {
  if (a.action === 'enable') return `enable webhook endpoint ${a.client}/${a.endpoint}`;
  if (a.action === 'retry-action') return `retry signer action ${a.id}`;
  return `${a.action} ${'bot' in a ? `${a.bot} dead letter #${a.id}` : `message ${a.id}`}`;
}

function sampleOf(s: SystemStatus): Sample {
  return {
    t: Date.parse(s.at),
    block: 'error' in s.broadcaster ? null : s.broadcaster.current_block,
    bots: Object.fromEntries(s.bots.map((b) => [b.name, b.lag_blocks])),
    botBlocks: Object.fromEntries(s.bots.map((b) => [b.name, b.block])),
    subscribers:
      'error' in s.streams ? {} : Object.fromEntries(s.streams.flatMap((st) => st.subscribers.map((c, i) => [`${st.app}#${i}`, c.lag]))),
  };
}

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer): void => {
      size += c.length;
      if (size <= limit) return void chunks.push(c);
      // Answer, and let the rest of the body drain unread (destroying the socket would lose the answer).
      req.off('data', onData);
      req.resume();
      reject(new AppError('ERR_BUS_INVALID_PAYLOAD', `the body is larger than ${limit} bytes`));
    };
    req.on('data', onData);
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
