import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { type Bus, createIpcBus } from '@steem-bot/bus';
import { type Catalogue, catalogue } from '@steem-bot/config';
import { DevNode, type FaultSpec } from '@steem-bot/devnode';
import { keptLogger, type Proc, projectRootFile, spawnProcess, testSetup, waitFor } from '@steem-bot/testkit';

import {
  Keys,
  NodeClient,
  type Outcome,
  PostgresSignerStore,
  Signer,
  type SignerOptions,
  type SignerStore,
  SqliteSignerStore,
  storeFile,
} from '../src';

export const MAIN = projectRootFile('packages/signer/dist/main.js');

/** The devnode accounts' test key (it guards nothing). */
export const TEST_KEY = '5JufocMGFc1KCxbsVba9MHyi5XfFd1CCdzXjFKGvsSstRP6e4h3';
/** A valid key that is no authority of any devnode account. */
export const OTHER_KEY = '5J7LpfJUimNzEfiMNQZyo1v19515qekM38T7pDFRBSn1WuJeLhf'; // toWif('someone', 'else', 'active')

/** A devnode whose head moves every 100 ms (30x chain speed) and whose LIB trails by 3 blocks. */
export function startNode(faults: FaultSpec[] = [], onCall?: (method: string, params: unknown) => void): Promise<DevNode> {
  return DevNode.start({
    intervalMs: 100,
    initialBlocks: 1000,
    synthetic: 6000,
    opsPerBlock: [1, 2],
    libDistance: 3,
    faults,
    ...(onCall ? { onCall } : {}),
  });
}

/** Every transaction of the blocks produced so far that carries `trxId` (or matches `pred`). */
export function onChain(
  node: DevNode,
  pred: (trx: { id: string; ops: Array<{ type: string; value: Record<string, unknown> }> }) => boolean,
): Array<{ block: number; id: string; ops: Array<{ type: string; value: Record<string, unknown> }> }> {
  const out = [];
  for (let n = 1_001_000; n <= node.chain.head(); n++) {
    const block = node.chain.block(n);
    if (!block) continue;
    for (let i = 0; i < block.transactions.length; i++) {
      const trx = {
        id: block.transaction_ids[i] as string,
        ops: (block.transactions[i] as { operations: Array<{ type: string; value: Record<string, unknown> }> }).operations,
      };
      if (pred(trx)) out.push({ block: n, ...trx });
    }
  }
  return out;
}

export interface Harness {
  signer: Signer;
  store: SignerStore;
  events: Outcome[];
  lines: Array<Record<string, unknown>>;
  stop(): Promise<void>;
  /** Wait until the action of `key` is in one of `states`. */
  until(key: string, states: string[], timeoutMs?: number): Promise<void>;
}

/**
 * A signer engine in this process: real HTTP to the devnode, events kept in a list; its store is
 * `given` (the caller closes it) or a SQLite file of its own.
 */
export function startSigner(node: DevNode, options: Partial<SignerOptions> = {}, given?: SignerStore): Harness {
  const dir = mkdtempSync(join(tmpdir(), 'signer-'));
  const store = given ?? new SqliteSignerStore(join(dir, 'signer.sqlite'));
  const { logger, lines } = keptLogger('signer');
  const events: Outcome[] = [];
  const signer = new Signer({
    store,
    keys: Keys.of({
      alice: { posting: TEST_KEY, active: TEST_KEY },
      bob: { posting: TEST_KEY, active: TEST_KEY },
      mallory: { posting: OTHER_KEY, active: OTHER_KEY },
    }),
    client: new NodeClient({ nodes: [node.url], timeoutMs: 1_000, logger, breakMs: 100 }),
    logger,
    live: true,
    expirationS: 60,
    maxSigns: 3,
    pollMs: 100,
    minRc: 1_000_000_000,
    rcWaitMs: 200,
    publish: async (e) => {
      events.push(e);
    },
    ...options,
  });
  signer.start();
  const h: Harness = {
    signer,
    store,
    events,
    lines,
    async stop() {
      await signer.stop();
      if (!given) await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
    async until(key, states, timeoutMs = 20_000) {
      const state = async (): Promise<string> => (await h.store.byKey(key))?.state ?? '';
      try {
        await waitFor(async () => states.includes(await state()), timeoutMs, `${key} in ${states.join('/')}`);
      } catch (err) {
        // What the signer said, to see why.
        const said = lines.map((l) => `${String(l.level)} ${String(l.msg)}${l.err ? ` ${JSON.stringify(l.err)}` : ''}`).slice(-15);
        const now = await h.store.byKey(key);
        throw new Error(`${(err as Error).message}: now ${now?.state} (${now?.reason}); log:\n${said.join('\n')}`, {
          cause: err,
        });
      }
    },
  };
  return h;
}

/** Signer processes against a devnode: their env, a bus client, and their store (read by the test). */
export interface World {
  node: DevNode;
  env: Record<string, string>;
  bus: Bus<Catalogue>;
  /** The processes' store (SQLite under DATA_DIR, or the PostgreSQL schema of STORE=postgres), opened once. */
  store(): Promise<SignerStore>;
  calls: string[];
  /** A signer process, once ready (`ready: false`: at once, e.g. a standby); `env` overrides the world's. */
  start(options?: { ready?: boolean; env?: Record<string, string> }): Promise<Proc>;
}

/** A devnode, a private SOCKET_DIR/DATA_DIR, alice's keys in a 0600 file; `cleanups` undo it all. */
export async function signerWorld(
  cleanups: Array<() => unknown>,
  faults: FaultSpec[],
  vars: Record<string, string>,
  key = TEST_KEY,
): Promise<World> {
  const calls: string[] = [];
  const node = await startNode(faults, (m) => calls.push(m));
  cleanups.push(() => node.stop());
  const t = testSetup({ STEEM_NODES: node.url, SIGNER_POLL_MS: '200', SIGNER_RPC_TIMEOUT_MS: '2000', LOG_LEVEL: 'info', ...vars });
  cleanups.push(t.cleanup);
  const keysFile = join(t.dir, 'keys.json');
  writeFileSync(keysFile, JSON.stringify({ alice: { posting: key, active: key } }));
  chmodSync(keysFile, 0o600);
  const env = { ...t.env, SIGNER_KEYS_FILE: keysFile };
  const bus = createIpcBus('signer-client', catalogue, t.config, keptLogger('signer-client', 'error').logger);
  cleanups.push(() => bus.close());
  let store: Promise<SignerStore> | undefined;
  cleanups.push(async () => (await store)?.close());
  const { STORE, DATABASE_URL, DATABASE_SCHEMA } = t.config;
  return {
    node,
    env,
    bus,
    calls,
    store: () =>
      (store ??=
        STORE === 'postgres'
          ? PostgresSignerStore.open({ url: DATABASE_URL, schema: DATABASE_SCHEMA })
          : Promise.resolve(new SqliteSignerStore(storeFile(t.config.DATA_DIR)))),
    async start(options = {}) {
      const proc = await spawnProcess(MAIN, { env: { ...env, ...options.env }, ready: options.ready ?? true });
      cleanups.push(() => proc.stop());
      return proc;
    },
  };
}

/** How many transfers with each memo starting with `prefix` are in the node's blocks. */
export function transfersByMemo(node: DevNode, prefix: string): Map<string, number> {
  const byMemo = new Map<string, number>();
  for (const trx of onChain(node, (t) => t.ops.some((o) => o.type === 'transfer_operation'))) {
    for (const op of trx.ops) {
      const memo = String(op.value.memo);
      if (memo.startsWith(prefix)) byMemo.set(memo, (byMemo.get(memo) ?? 0) + 1);
    }
  }
  return byMemo;
}

/**
 * Send a transfer per key (memo = key), one after the other, each retried until a signer
 * acknowledges it (there may be none at that moment); `progress.sent` counts the acknowledged.
 */
export function sendTransfers(bus: Bus<Catalogue>, keys: string[], paceMs = 0): { sent: number; done: Promise<void> } {
  const progress = { sent: 0, done: Promise.resolve() };
  progress.done = (async () => {
    for (const key of keys) {
      await bus.send(
        'signer.transfer.send',
        { account: 'alice', to: 'carol', amount: '0.001 STEEM', memo: key },
        { idempotencyKey: key, attempts: 30, timeoutMs: 2_000 },
      );
      progress.sent++;
      if (paceMs > 0) await new Promise((r) => setTimeout(r, paceMs));
    }
  })();
  return progress;
}

/** Transactions signed for all the actions in `store`, retries included. */
export async function signedInAll(store: SignerStore): Promise<number> {
  return (await store.all()).reduce((n, a) => n + a.signed, 0);
}
