import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';

import { Bus, MemoryHub, MemoryTransport } from '@steem-bot/bus';
import {
  AppError,
  type Catalogue,
  catalogue,
  type CatalogueShape,
  checkVariables,
  createLogger,
  loadConfig,
  positionOf,
} from '@steem-bot/config';

import type { Bot, OpName, RunningBot } from './bot';

export interface TestBot {
  running: RunningBot;
  /** Every JSON log line of the bot so far. */
  lines: Array<Record<string, unknown>>;
  /** The `mailer.email.send` tasks the bot sent (with their idempotency keys). */
  mails: Array<{ key: string | undefined; payload: Record<string, unknown> }>;
  /** The chain actions the bot sent the signer stand-in (task name, idempotency key, payload). */
  actions: Array<{ task: string; key: string | undefined; payload: Record<string, unknown> }>;
  /** The broadcaster stand-in: publish events as it would. */
  source: Bus<Catalogue>;
  /**
   * A bus to send the bot tasks with, as the clock would: with the project's catalogue, so the
   * bot's own tasks go by name (`clock.sendByName('my-bot.report.send', {})`) and the bot checks them.
   */
  clock: Bus<Catalogue>;
  /** Publish an op at (block, index) with its chain metadata and wait until the bot has handled it. */
  publish(name: OpName, fields: Record<string, unknown>, at: { block: number; index: number }): Promise<void>;
  stop(): Promise<void>;
}

export interface TestBotOptions {
  /** The keys the signer stand-in holds, by account (default: both keys of every account the bot declares). */
  signerKeys?: Record<string, Array<'posting' | 'active'>>;
}

/**
 * Run a bot in this process on the in-memory bus, with a temp DATA_DIR, a broadcaster stand-in,
 * a mailer stand-in that records what it is asked to send and a signer stand-in (in dry run) that
 * records the chain actions: for bot unit tests. `vars` are the environment: config variables and
 * the bot's own.
 */
export async function startTestBot<C extends CatalogueShape>(
  bot: Bot<C>,
  vars: Record<string, string> = {},
  options: TestBotOptions = {},
): Promise<TestBot> {
  const dir = mkdtempSync(join(tmpdir(), `bot-${bot.definition.name}-`));
  const config = loadConfig({
    dotenvPath: false,
    env: { SOCKET_DIR: join(dir, 'run'), DATA_DIR: join(dir, 'data'), MAILER_OUTBOX: join(dir, 'outbox'), ...vars },
  });
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      callback();
    },
  });
  const logger = createLogger({ app: bot.definition.name, format: 'json', level: 'debug', destination });
  const hub = new MemoryHub();
  const busFor = (app: string): Bus<Catalogue> =>
    new Bus({ app, catalogue, transport: new MemoryTransport(hub), logger, taskTimeoutMs: 500 });
  const source = busFor('broadcaster');
  await source.serve({ floor: 0 });
  const mailer = busFor('mailer');
  const mails: TestBot['mails'] = [];
  mailer.handle('mailer.email.send', (payload, ctx) => {
    mails.push({ key: ctx.key, payload: payload as Record<string, unknown> });
    return { id: `m${mails.length}`, status: 'scheduled' };
  });
  await mailer.serve();
  const actions: TestBot['actions'] = [];
  const signer = startSignerStandIn(busFor('signer'), actions, options.signerKeys ?? allKeysOf(bot, vars));
  await signer.serve();
  const ownBus = (app: string): Bus<C> =>
    new Bus({ app, catalogue: bot.catalogue, transport: new MemoryTransport(hub), logger, taskTimeoutMs: 500 });
  const clock = busFor('clock');
  const botBus = ownBus(bot.definition.name);
  // The bot's own variables come from `vars` only, never from the developer's .env.
  let running: RunningBot;
  try {
    running = await bot.start({ config, logger, bus: botBus }, vars);
  } catch (err) {
    await Promise.all([botBus.close(), clock.close(), source.close(), mailer.close(), signer.close()]);
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  await running.subscription.ready;
  return {
    running,
    lines,
    mails,
    actions,
    source,
    clock,
    async publish(name, fields, { block, index }) {
      const position = positionOf(block, index);
      const payload = {
        block_num: block,
        block_id: block.toString(16).padStart(8, '0') + '0'.repeat(32),
        timestamp: '2016-04-29T04:00:03',
        trx_id: '0'.repeat(40),
        trx_in_block: 0,
        op_in_trx: 0,
        op_in_block: index,
        ...fields,
      };
      await source.publish(name, payload as never, { position });
      const deadline = Date.now() + 10_000;
      while ((running.checkpoint() ?? -1) < position) {
        if (Date.now() > deadline) throw new Error(`the bot did not handle ${name} at ${position} within 10 s`);
        await new Promise((r) => setTimeout(r, 5));
      }
    },
    async stop() {
      await running.stop();
      await Promise.all([botBus.close(), clock.close(), source.close(), mailer.close(), signer.close()]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A signer in dry run that holds `keys` (default: any account, both roles): it answers the four
 * action tasks with one action id per idempotency key and `signer.action.get` with `dry-run`.
 */
function startSignerStandIn(
  bus: Bus<Catalogue>,
  actions: TestBot['actions'],
  keys: Record<string, Array<'posting' | 'active'>>,
): Bus<Catalogue> {
  const ids = new Map<string, string>();
  const record =
    (task: string) =>
    (payload: { account: string }, ctx: { key: string | undefined }): { action_id: string; state: 'pending' } => {
      const key = ctx.key ?? '';
      if (!ids.has(key)) {
        actions.push({ task, key: ctx.key, payload: payload as unknown as Record<string, unknown> });
        ids.set(key, `action-${ids.size + 1}`);
      }
      return { action_id: ids.get(key) as string, state: 'pending' };
    };
  bus.handle('signer.vote.cast', record('signer.vote.cast'));
  bus.handle('signer.comment.post', record('signer.comment.post'));
  bus.handle('signer.transfer.send', record('signer.transfer.send'));
  bus.handle('signer.custom_json.send', record('signer.custom_json.send'));
  bus.handle('signer.key.list', () => ({
    live: false,
    accounts: keys,
  }));
  bus.handle('signer.action.get', ({ key }) => {
    const id = ids.get(key);
    if (!id) throw new AppError('ERR_SIGNER_NOT_FOUND', `no action has the key "${key}"`);
    const action = actions.find((a) => a.key === key);
    return {
      action_id: id,
      key,
      kind: (action?.task.split('.')[1] ?? 'vote') as 'vote',
      account: String(action?.payload.account ?? ''),
      state: 'dry-run',
      trx_id: null,
      block_num: null,
      signed: 0,
      reason: null,
      retryable: null,
    };
  });
  return bus;
}

/** Both keys of every account the bot declares (with its variables from `vars`). */
function allKeysOf(bot: Pick<Bot, 'definition'>, vars: Record<string, string>): Record<string, Array<'posting' | 'active'>> {
  const { accounts, variables } = bot.definition;
  const needs = typeof accounts === 'function' ? accounts(checkVariables(variables ?? {}, vars).values) : (accounts ?? []);
  return Object.fromEntries(needs.map((n) => [typeof n === 'string' ? n : n.account, ['posting', 'active']]));
}
