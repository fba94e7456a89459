import { existsSync } from 'node:fs';
import { join } from 'node:path';

import type { AppContext, RunningApp } from '@steem-bot/bus';
import { AppError, type Config, type Logger, resolveProjectPath } from '@steem-bot/config';

import type { CommentInput, CustomJsonInput, TransferInput, VoteInput } from './actions';
import { Keys } from './keys';
import { NodeClient } from './node-client';
import { actionView, Signer } from './signer';
import { publicKeyOf } from './steem';
import type { ActionKind, SignerStore } from './store';
import { PostgresSignerStore } from './store-postgres';
import { SqliteSignerStore } from './store-sqlite';

export const storeFile = (dataDir: string): string => join(dataDir, 'signer.sqlite');

/** The configured store: the SQLite file under DATA_DIR, or PostgreSQL with STORE=postgres. */
export async function openSignerStore(config: Config<'store'>): Promise<SignerStore> {
  if (config.STORE === 'sqlite') return new SqliteSignerStore(storeFile(config.DATA_DIR));
  if (!config.DATABASE_URL)
    throw new AppError('ERR_CONFIG_INVALID', 'STORE=postgres needs DATABASE_URL (postgres://user:pass@host:5432/db)');
  return PostgresSignerStore.open({ url: config.DATABASE_URL, schema: config.DATABASE_SCHEMA });
}

/** The signer process (bus app `signer`): intake of the four action tasks, the engine, the status call. */
export async function startSigner({ config, logger, bus }: AppContext<'chain' | 'signer' | 'store'>): Promise<RunningApp> {
  const keys = loadKeys(config, logger);
  const client = new NodeClient({ nodes: config.STEEM_NODES, timeoutMs: config.SIGNER_RPC_TIMEOUT_MS, logger });
  if (config.SIGNER_LIVE) await checkAuthorities(keys, client, config.SIGNER_ACCOUNT ? 'SIGNER_ACCOUNT' : 'SIGNER_KEYS_FILE');
  const store = await openSignerStore(config);
  const signer = new Signer({
    store,
    keys,
    client,
    logger,
    live: config.SIGNER_LIVE,
    expirationS: config.SIGNER_EXPIRATION_S,
    maxSigns: config.SIGNER_MAX_SIGNS,
    pollMs: config.SIGNER_POLL_MS,
    minRc: config.SIGNER_MIN_RC,
    rcWaitMs: config.SIGNER_RC_WAIT_MS,
    publish: (e) => (e.name === 'transaction.confirmed' ? bus.publish(e.name, e.payload) : bus.publish(e.name, e.payload)),
  });

  const intake =
    (kind: ActionKind) =>
    (payload: VoteInput | CommentInput | TransferInput | CustomJsonInput, ctx: { tid: string; key: string | undefined }) =>
      signer.accept(kind, payload, ctx);
  bus.handle('signer.vote.cast', intake('vote'));
  bus.handle('signer.comment.post', intake('comment'));
  bus.handle('signer.transfer.send', intake('transfer'));
  bus.handle('signer.custom_json.send', intake('custom_json'));
  bus.handle('signer.action.get', async ({ key }) => {
    const action = await store.byKey(key);
    if (!action) throw new AppError('ERR_SIGNER_NOT_FOUND', `no action has the key "${key}"`);
    return actionView(action);
  });
  bus.handle('signer.action.retry', ({ action_id }) => signer.retry(action_id));
  bus.handle('signer.key.list', () => ({ live: config.SIGNER_LIVE, accounts: keys.summary() }));
  await bus.serve();
  // The broadcaster's stream confirms as soon as it carries the transaction; lookups are the fallback.
  const confirm = (p: { trx_id: string; block_num: number }): Promise<void> => signer.onChainOp(p.trx_id, p.block_num);
  bus.subscribe('broadcaster', { vote: confirm, comment: confirm, transfer: confirm, custom_json: confirm });
  signer.start();
  logger.info(
    { accounts: keys.summary(), live: config.SIGNER_LIVE, nodes: config.STEEM_NODES },
    config.SIGNER_LIVE
      ? 'signer live: broadcasting'
      : 'signer in dry run: logging transactions, broadcasting none (SIGNER_LIVE=1 to broadcast)',
  );
  return {
    async stop() {
      await signer.stop();
      await store.close();
    },
  };
}

/**
 * The keys: of SIGNER_ACCOUNT from the environment when it is set, otherwise from SIGNER_KEYS_FILE
 * (in dry run a missing file means no keys: every action is refused).
 */
function loadKeys(config: Config<'chain' | 'signer'>, logger: Logger): Keys {
  const { SIGNER_ACCOUNT: account, SIGNER_POSTING_KEY: posting, SIGNER_ACTIVE_KEY: active } = config;
  if (account) return Keys.fromEnvironment(account, posting, active);
  if (posting || active)
    throw new AppError(
      'ERR_CONFIG_INVALID',
      'SIGNER_POSTING_KEY / SIGNER_ACTIVE_KEY are set but SIGNER_ACCOUNT (whose keys they are) is not',
    );
  const file = resolveProjectPath(config.SIGNER_KEYS_FILE);
  if (!config.SIGNER_LIVE && !existsSync(file)) {
    logger.warn(`dry run without ${file}: every action will be refused for want of a key`);
    return Keys.of({});
  }
  return Keys.load(file);
}

/** Live mode: each key must be an authority of its account on chain (checked once, at start-up). */
async function checkAuthorities(keys: Keys, client: NodeClient, source: string): Promise<void> {
  const summary = keys.summary();
  const names = Object.keys(summary);
  if (names.length === 0) return;
  type Authority = { key_auths: Array<[string, number]> };
  const accounts = await client.call<Array<{ name: string; posting: Authority; active: Authority; owner: Authority }>>(
    'condenser_api.get_accounts',
    [names],
  );
  const problems: string[] = [];
  for (const name of names) {
    const account = accounts.find((a) => a.name === name);
    if (!account) {
      problems.push(`@${name} does not exist`);
      continue;
    }
    for (const role of summary[name] ?? []) {
      const pub = publicKeyOf(keys.get(name, role) as string);
      const holders = role === 'posting' ? [account.posting, account.active, account.owner] : [account.active, account.owner];
      if (!holders.some((a) => a.key_auths.some(([k]) => k === pub)))
        problems.push(`the ${role} key given for @${name} is not a ${role} authority of it`);
    }
  }
  if (problems.length > 0) throw new AppError('ERR_CONFIG_INVALID', `${source}: ${problems.join('; ')}`);
}
