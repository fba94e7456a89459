import { AppError, variable, variableSchemas } from '@steem-bot/config';
import { waitFor } from '@steem-bot/testkit';

import { createBot, type RunningBot } from '../src';
import { memorySetup, positionOf } from './helpers';

describe('bot SDK (in-memory bus)', () => {
  let running: RunningBot | undefined;
  let cleanup: (() => void) | undefined;
  afterEach(async () => {
    await running?.stop();
    running = undefined;
    cleanup?.();
  });

  test('a failing handler is retried with backoff, then dead-lettered while later ops flow; replay runs it again', async () => {
    const env = await memorySetup({ BOT_RETRY_ATTEMPTS: '3' });
    cleanup = env.cleanup;
    const tries = new Map<string, number>();
    let broken = true;
    const handled: string[] = [];
    const bot = createBot({
      name: 'flaky',
      on: {
        vote(op, { attempt }) {
          tries.set(op.permlink, attempt);
          if (op.permlink === 'post-10-1' && broken) throw new Error('boom');
          handled.push(op.permlink);
        },
      },
    });
    running = await bot.start({ config: env.config, logger: env.logger, bus: env.busFor('flaky', bot.catalogue) });
    await running.subscription.ready;
    for (let i = 0; i < 3; i++) await env.publishVote(10, i);
    await waitFor(() => handled.length === 2, 5_000, 'the later ops');
    expect(handled).toEqual(['post-10-0', 'post-10-2']);
    expect(tries.get('post-10-1')).toBe(3);
    await waitFor(() => running?.checkpoint() === positionOf(10, 2), 2_000, 'the checkpoint');

    const [letter] = await running.store.deadLetters();
    expect(letter).toMatchObject({ position: positionOf(10, 1), name: 'vote', attempts: 3, state: 'dead' });
    expect(letter?.error).toMatch(/boom/);
    expect(letter?.tid).toMatch(/^[0-9a-f]{16}$/);
    expect(env.lines.some((l) => String(l.msg).includes('dead-lettered as #1') && l.tid === letter?.tid)).toBe(true);

    broken = false;
    expect(await running.store.requestReplay(letter?.id as number)).toBe(true);
    await waitFor(async () => (await running?.store.deadLetter(letter?.id as number))?.state === 'replayed', 5_000, 'the replay');
    expect(handled).toEqual(['post-10-0', 'post-10-2', 'post-10-1']);
  });

  test('its store out of reach (ERR_BOT_STORE_UNAVAILABLE) does not dead-letter an op: retried until it is back', async () => {
    const env = await memorySetup({ BOT_RETRY_ATTEMPTS: '1', BOT_RETRY_BASE_MS: '5', BOT_RETRY_MAX_MS: '20' });
    cleanup = env.cleanup;
    let outage = 3;
    const handled: number[] = [];
    const bot = createBot({
      name: 'outage',
      on: {
        vote(_op, { position }) {
          if (outage-- > 0) throw new AppError('ERR_BOT_STORE_UNAVAILABLE', "the bot's PostgreSQL store is out of reach: ECONNREFUSED");
          handled.push(position);
        },
      },
    });
    running = await bot.start({ config: env.config, logger: env.logger, bus: env.busFor('outage', bot.catalogue) });
    await running.subscription.ready;
    await env.publishVote(15, 0);
    await waitFor(() => running?.checkpoint() === positionOf(15, 0), 5_000, 'the checkpoint');
    expect(handled).toEqual([positionOf(15, 0)]);
    expect(await running.store.deadLetters()).toEqual([]);
  });

  test('a restarted bot resumes after its checkpoint: nothing missed, nothing repeated', async () => {
    const env = await memorySetup();
    cleanup = env.cleanup;
    const seen: number[] = [];
    const bot = createBot({ name: 'resumer', on: { vote: (_op, { position }) => void seen.push(position) } });
    const firstBus = env.busFor('resumer', bot.catalogue);
    const first = await bot.start({ config: env.config, logger: env.logger, bus: firstBus });
    await first.subscription.ready;
    for (let i = 0; i < 5; i++) await env.publishVote(20, i);
    await waitFor(() => first.checkpoint() === positionOf(20, 4));
    await first.stop();
    await firstBus.close(); // as its process would on exit: the restarted bot serves the same socket
    for (let i = 5; i < 10; i++) await env.publishVote(20, i);
    running = await bot.start({ config: env.config, logger: env.logger, bus: env.busFor('resumer', bot.catalogue) });
    await waitFor(() => seen.length === 10, 5_000, 'the resumed ops');
    expect(seen).toEqual(Array.from({ length: 10 }, (_, i) => positionOf(20, i)));
  });

  test('ctx.mail sends mailer.email.send with a key derived from the op position, the same on a retry', async () => {
    const env = await memorySetup({ BOT_RETRY_ATTEMPTS: '3' });
    cleanup = env.cleanup;
    const mailer = env.busFor('mailer');
    const keys: Array<string | undefined> = [];
    mailer.handle('mailer.email.send', (_p, ctx) => {
      keys.push(ctx.key);
      return { id: `m${keys.length}`, status: 'scheduled' };
    });
    await mailer.serve();
    let failOnce = true;
    const bot = createBot({
      name: 'mailing',
      on: {
        async vote(op, { mail }) {
          await mail.send({ to: 'ops@example.com', subject: `vote on ${op.permlink}`, text: 'hi' });
          if (failOnce) {
            failOnce = false;
            throw new Error('after the mail');
          }
        },
      },
    });
    running = await bot.start({ config: env.config, logger: env.logger, bus: env.busFor('mailing', bot.catalogue) });
    await running.subscription.ready;
    await env.publishVote(30, 7);
    await waitFor(() => running?.checkpoint() === positionOf(30, 7));
    // Tried twice, the same key both times: the mailer dedupes the second (the bus does too).
    expect(keys[0]).toBe(`mailing:${positionOf(30, 7)}:0`);
    expect(new Set(keys)).toEqual(new Set([`mailing:${positionOf(30, 7)}:0`]));
    await mailer.close();
  });

  test('filter skips ops; keyed concurrency keeps per-key order and checkpoints the last op', async () => {
    const env = await memorySetup();
    cleanup = env.cleanup;
    const order: string[] = [];
    let active = 0;
    let peak = 0;
    const bot = createBot({
      name: 'parallel',
      filter: (_name, op) => op.weight !== 0,
      concurrency: { limit: 3, key: (_name, op) => String(op.author) },
      on: {
        async vote(op) {
          peak = Math.max(peak, ++active);
          await new Promise((r) => setTimeout(r, op.op_in_block % 2 === 0 ? 30 : 5));
          order.push(op.permlink);
          active--;
        },
      },
    });
    running = await bot.start({ config: env.config, logger: env.logger, bus: env.busFor('parallel', bot.catalogue) });
    await running.subscription.ready;
    for (let i = 0; i < 12; i++) await env.publishVote(50, i, i === 7 ? { weight: 0 } : {});
    await waitFor(() => running?.checkpoint() === positionOf(50, 11), 5_000, 'the last op');
    expect(order).toHaveLength(11);
    expect(order).not.toContain('post-50-7');
    expect(peak).toBeGreaterThan(1);
    expect(peak).toBeLessThanOrEqual(3);
    for (const author of [0, 1, 2]) {
      const mine = order.filter((p) => Number(p.split('-')[2]) % 3 === author);
      expect(mine).toEqual([...mine].sort((a, b) => Number(a.split('-')[2]) - Number(b.split('-')[2])));
    }
  });

  test('a filter or concurrency.key that throws fails the op like a handler: retried, then dead-lettered, later ops flow', async () => {
    const env = await memorySetup({ BOT_RETRY_ATTEMPTS: '2' });
    cleanup = env.cleanup;
    const handled: string[] = [];
    const bot = createBot({
      name: 'picky',
      filter: (_name, op) => {
        if (op.permlink === 'post-60-1') throw new Error('filter boom');
        return true;
      },
      concurrency: {
        limit: 2,
        key: (_name, op) => {
          if (op.permlink === 'post-60-3') throw new Error('key boom');
          return String(op.author);
        },
      },
      on: { vote: (op) => void handled.push(op.permlink) },
    });
    running = await bot.start({ config: env.config, logger: env.logger, bus: env.busFor('picky', bot.catalogue) });
    await running.subscription.ready;
    for (let i = 0; i < 5; i++) await env.publishVote(60, i);
    await waitFor(() => running?.checkpoint() === positionOf(60, 4), 5_000, 'the last op');
    expect(handled.sort()).toEqual(['post-60-0', 'post-60-2', 'post-60-4']);
    // The two failing ops run at once (keyed concurrency), so they may be dead-lettered in either order.
    const letters = (await running.store.deadLetters()).sort((x, y) => x.position - y.position);
    expect(letters.map((l) => [l.position, l.attempts, l.state])).toEqual([
      [positionOf(60, 1), 2, 'dead'],
      [positionOf(60, 3), 2, 'dead'],
    ]);
    expect(letters[0]?.error).toMatch(/filter boom/);
    expect(letters[1]?.error).toMatch(/key boom/);
    expect(env.lines.some((l) => String(l.msg).startsWith('vote filter failed (try 1/2)'))).toBe(true);
    expect(env.lines.some((l) => String(l.msg).startsWith('vote concurrency.key failed (try 1/2)'))).toBe(true);
  });

  test('a hung handler under concurrency times out into retries and the dead letter; its signal is aborted; the checkpoint moves on', async () => {
    const env = await memorySetup({ BOT_RETRY_ATTEMPTS: '2', BOT_HANDLER_TIMEOUT_MS: '100' });
    cleanup = env.cleanup;
    const signals: AbortSignal[] = [];
    const handled: string[] = [];
    const bot = createBot({
      name: 'hung',
      concurrency: { limit: 3, key: (_name, op) => String(op.author) },
      on: {
        async vote(op, { signal }) {
          if (op.permlink === 'post-70-1') {
            signals.push(signal);
            await new Promise(() => undefined); // never settles, ignores its signal
          }
          handled.push(op.permlink);
        },
      },
    });
    running = await bot.start({ config: env.config, logger: env.logger, bus: env.busFor('hung', bot.catalogue) });
    await running.subscription.ready;
    for (let i = 0; i < 6; i++) await env.publishVote(70, i);
    await waitFor(() => running?.checkpoint() === positionOf(70, 5), 5_000, 'the checkpoint past the hung op');
    expect(handled).toHaveLength(5);
    expect(handled).not.toContain('post-70-1');
    const [letter] = await running.store.deadLetters();
    expect(letter).toMatchObject({ position: positionOf(70, 1), attempts: 2, state: 'dead' });
    expect(letter?.error).toMatch(/^ERR_BOT_HANDLER_TIMEOUT: the handler did not settle within 100 ms/);
    expect(signals).toHaveLength(2);
    expect(signals.every((s) => s.aborted && (s.reason as { code?: string }).code === 'ERR_BOT_HANDLER_TIMEOUT')).toBe(true);
  });

  test('handlerTimeoutMs overrides the variable; a cooperative handler stops on its signal and a late settling is logged', async () => {
    const env = await memorySetup({ BOT_RETRY_ATTEMPTS: '3' });
    cleanup = env.cleanup;
    const bot = createBot({
      name: 'slow',
      handlerTimeoutMs: 50,
      on: {
        async vote(_op, { attempt, signal }) {
          if (attempt > 1) return;
          // The first try ignores the deadline for a while, then notices its signal and gives up.
          await new Promise((r) => setTimeout(r, 150));
          signal.throwIfAborted();
        },
      },
    });
    running = await bot.start({ config: env.config, logger: env.logger, bus: env.busFor('slow', bot.catalogue) });
    await running.subscription.ready;
    await env.publishVote(80, 0);
    await waitFor(() => running?.checkpoint() === positionOf(80, 0), 5_000, 'the op');
    expect(await running.store.deadLetters()).toEqual([]);
    await waitFor(
      () => env.lines.some((l) => l.msg === 'vote handler try 1, abandoned after its timeout, failed late'),
      2_000,
      'the late line',
    );
    expect(
      env.lines.some(
        (l) => String(l.msg).startsWith('vote handler failed (try 1/3)') && (l.err as { code?: string }).code === 'ERR_BOT_HANDLER_TIMEOUT',
      ),
    ).toBe(true);
  });

  test("a bot's own variables: parsed into setup; an invalid value is ERR_CONFIG_INVALID; a missing required one leaves it idle", async () => {
    const env = await memorySetup();
    cleanup = env.cleanup;
    let got: unknown;
    const define = () =>
      createBot({
        name: 'configured',
        variables: {
          MY_LIMIT: variable('How many.', '5', variableSchemas.positiveInt),
          MY_TARGET: variable('Whom to tell.', undefined, variableSchemas.optionalText),
        },
        setup: ({ vars }) => void (got = { limit: vars.MY_LIMIT + 1, target: vars.MY_TARGET }),
        on: { vote: () => undefined },
      });
    const start = (vars: Record<string, string>) => {
      const bot = define();
      return bot.start({ config: env.config, logger: env.logger, bus: env.busFor('configured', bot.catalogue) }, vars);
    };
    await expect(start({ MY_LIMIT: 'many', MY_TARGET: 'x' })).rejects.toMatchObject({
      code: 'ERR_CONFIG_INVALID',
      message: 'invalid configuration:\n  MY_LIMIT: expected a whole number; got "many"',
      data: [{ variable: 'MY_LIMIT', expected: 'a whole number', got: '"many"' }],
    });
    running = await start({ MY_TARGET: 'me' });
    expect(got).toEqual({ limit: 6, target: 'me' });
    expect(running.idle).toBe(false);
    await running.stop();
    running = await start({});
    expect(running.idle).toBe(true);
    expect(env.lines.filter((l) => String(l.msg).startsWith('idle')).map((l) => l.msg)).toEqual([
      'idle, handling nothing, until MY_TARGET is set in .env or the environment (then: npx pm2 restart configured). MY_TARGET: Whom to tell.',
    ]);
    await env.publishVote(90, 0);
    expect(running.checkpoint()).toBeNull();
  });

  /** A signer on the in-memory bus: keys `held`, one action id per key, outcomes published on demand. */
  async function fakeSigner(env: Awaited<ReturnType<typeof memorySetup>>, held: Record<string, Array<'posting' | 'active'>>) {
    const bus = env.busFor('signer');
    const sent: Array<{ task: string; key: string | undefined; payload: unknown }> = [];
    const ids = new Map<string, string>();
    const intake = (task: string) => (payload: unknown, ctx: { key: string | undefined }) => {
      sent.push({ task, key: ctx.key, payload });
      if (!ids.has(ctx.key ?? '')) ids.set(ctx.key ?? '', `id-${ids.size + 1}`);
      return { action_id: ids.get(ctx.key ?? '') as string, state: 'pending' as const };
    };
    bus.handle('signer.transfer.send', intake('transfer'));
    bus.handle('signer.vote.cast', intake('vote'));
    bus.handle('signer.key.list', () => ({ live: true, accounts: held }));
    bus.handle('signer.action.get', ({ key }) => ({
      action_id: ids.get(key) ?? '',
      key,
      kind: 'transfer' as const,
      account: 'tipper',
      state: 'sent' as const,
      trx_id: null,
      block_num: null,
      signed: 1,
      reason: null,
      retryable: null,
    }));
    await bus.serve({ floor: 0 });
    return { bus, sent, ids };
  }

  test('ctx.chain sends signer tasks keyed <bot>:<position>:<n>: a retried handler asks for the same actions; confirmed() waits for the outcome', async () => {
    const env = await memorySetup({ BOT_RETRY_ATTEMPTS: '3' });
    cleanup = env.cleanup;
    const signer = await fakeSigner(env, { tipper: ['posting', 'active'] });
    const outcomes: unknown[] = [];
    const ids: string[] = [];
    let tries = 0;
    const bot = createBot({
      name: 'payer',
      accounts: [{ account: 'tipper', roles: ['posting', 'active'] }],
      on: {
        async vote(op, { chain }) {
          tries++;
          const id = await chain.transfer({ to: op.author, amount: '0.001 STEEM', memo: op.permlink });
          ids.push(id, await chain.vote({ author: op.author, permlink: op.permlink, weight: 100 }));
          if (tries < 3) throw new Error('fails after its transfer');
          outcomes.push(await chain.confirmed(id));
        },
      },
    });
    running = await bot.start({ config: env.config, logger: env.logger, bus: env.busFor('payer', bot.catalogue) });
    await running.subscription.ready;
    await env.publishVote(50, 2);
    const pos = positionOf(50, 2);
    await waitFor(() => ids.length === 6, 5_000, 'three tries of two actions');
    // Every try asked for the same two actions (the bus answers a repeated key without asking the signer again).
    expect(new Set(signer.sent.map((s) => s.key))).toEqual(new Set([`payer:${pos}:0`, `payer:${pos}:1`]));
    expect(ids).toEqual(['id-1', 'id-2', 'id-1', 'id-2', 'id-1', 'id-2']);
    expect(signer.sent[0]?.payload).toEqual({ account: 'tipper', to: 'author2', amount: '0.001 STEEM', memo: 'post-50-2' });
    // The handler waits for the outcome: the checkpoint stays until the signer publishes it.
    await new Promise((r) => setTimeout(r, 100));
    expect(running.checkpoint()).toBeNull();
    await signer.bus.publish('transaction.confirmed', { action_id: 'id-1', key: `payer:${pos}:0`, trx_id: 'ab'.repeat(20), block_num: 7 });
    await waitFor(() => running?.checkpoint() === pos, 5_000, 'the checkpoint');
    expect(outcomes).toEqual([{ action_id: 'id-1', state: 'confirmed', trx_id: 'ab'.repeat(20), block_num: 7 }]);
  });

  test('confirmed() rejects with ERR_BOT_ACTION_FAILED when the signer gives the action up; an undeclared account is refused', async () => {
    const env = await memorySetup({ BOT_RETRY_ATTEMPTS: '1' });
    cleanup = env.cleanup;
    const signer = await fakeSigner(env, { tipper: ['active'] });
    const errors: unknown[] = [];
    const bot = createBot({
      name: 'payer',
      accounts: [{ account: 'tipper', roles: ['active'] }],
      on: {
        async vote(_op, { chain }) {
          await chain.transfer({ account: 'someone', to: 'bob', amount: '1.000 STEEM' }).catch((e: unknown) => errors.push(e));
          const id = await chain.transfer({ to: 'bob', amount: '1.000 STEEM' });
          await chain.confirmed(id).catch((e: unknown) => errors.push(e));
        },
      },
    });
    running = await bot.start({ config: env.config, logger: env.logger, bus: env.busFor('payer', bot.catalogue) });
    await running.subscription.ready;
    await env.publishVote(60, 0);
    await waitFor(() => signer.sent.length === 1, 5_000, 'the transfer');
    await signer.bus.publish('transaction.failed', {
      action_id: 'id-1',
      key: `payer:${positionOf(60, 0)}:0`,
      reason: 'insufficient funds',
      retryable: false,
    });
    await waitFor(() => errors.length === 2, 5_000, 'both errors');
    expect(errors[0]).toMatchObject({ code: 'ERR_BOT_CHAIN_INPUT', message: expect.stringMatching(/@someone is not one of the accounts/) });
    expect(errors[1]).toMatchObject({
      code: 'ERR_BOT_ACTION_FAILED',
      message: `chain action payer:${positionOf(60, 0)}:0 failed: insufficient funds`,
      data: { action_id: 'id-1', retryable: false },
    });
  });

  test('a bot declaring an account the signer holds no key for stops at start-up with a clear error', async () => {
    const env = await memorySetup();
    cleanup = env.cleanup;
    await fakeSigner(env, { tipper: ['posting'] });
    const bot = createBot({ name: 'keyed', accounts: ['tipper', { account: 'tipper', roles: ['active'] }, 'other'], on: {} });
    await expect(bot.start({ config: env.config, logger: env.logger, bus: env.busFor('keyed', bot.catalogue) })).rejects.toMatchObject({
      code: 'ERR_BOT_KEY_MISSING',
      message: expect.stringMatching(/^the signer holds no key for @tipper \(active\), @other \(posting\), which this bot declares/),
    });
  });

  test('a signer that is not up yet is waited for (up to signerWaitMs), then the check runs; none at all is a clear error', async () => {
    const env = await memorySetup();
    cleanup = env.cleanup;
    const start = (signerWaitMs: number) => {
      const bot = createBot({ name: 'early', accounts: ['tipper'], signerWaitMs, on: {} });
      return bot.start({ config: env.config, logger: env.logger, bus: env.busFor('early', bot.catalogue) });
    };
    await expect(start(300)).rejects.toMatchObject({
      code: 'ERR_BUS_TIMEOUT',
      message: 'the signer did not answer signer.key.list within 0.3 s: is the signer app running?',
    });
    const starting = start(10_000);
    await waitFor(() => env.lines.some((l) => String(l.msg).startsWith('waiting for the signer')), 5_000, 'the waiting line');
    await fakeSigner(env, { tipper: ['posting'] });
    running = await starting;
    expect(running.idle).toBe(false);
  });
});
