import { AppError } from '@steem-bot/config';
import { waitFor } from '@steem-bot/testkit';
import { z } from 'zod';

import { createBot, type RunningBot } from '../src';
import { memorySetup } from './helpers';

const failure = (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    () => 'resolved',
    (e: AppError) => [e.code, e.message],
  );

describe("a bot's own tasks, declared by its package", () => {
  let running: RunningBot | undefined;
  let cleanup: (() => void) | undefined;
  afterEach(async () => {
    await running?.stop();
    running = undefined;
    cleanup?.();
  });

  test('a task the project catalogue lacks reaches the bot by name; the bot checks its payload and names', async () => {
    const env = await memorySetup();
    cleanup = env.cleanup;
    const bot = createBot({
      name: 'counter',
      catalogue: {
        tasks: {
          /** Add n to the total. */
          'counter.total.add': { payload: z.object({ n: z.number().int() }), reply: z.object({ total: z.number() }) },
        },
      },
      setup: () => ({ total: 0 }),
      on: { vote: () => undefined },
      tasks: {
        // Typed from the declaration: `n` is a number, the reply is checked against `{ total }`.
        'counter.total.add': ({ n }, { state }) => ({ total: (state.total += n) }),
      },
    });
    expect(Object.keys(bot.catalogue.tasks).filter((t) => t.startsWith('counter.'))).toEqual([
      'counter.deadletter.replay',
      'counter.deadletter.discard',
      'counter.total.add',
    ]);
    running = await bot.start({ config: env.config, logger: env.logger, bus: env.busFor('counter', bot.catalogue) });
    // The clock, the console: buses with the project's catalogue only.
    const clock = env.busFor('clock');
    await expect(clock.sendByName('counter.total.add', { n: 2 })).resolves.toEqual({ total: 2 });
    await expect(clock.sendByName('counter.total.add', { n: 3 })).resolves.toEqual({ total: 5 });
    await expect(failure(clock.sendByName('counter.total.add', { n: 'two' }))).resolves.toEqual([
      'ERR_BUS_INVALID_PAYLOAD',
      expect.stringMatching(/^counter\.total\.add: .*"n"/s),
    ]);
    await expect(failure(clock.sendByName('counter.total.remove', { n: 1 }))).resolves.toEqual([
      'ERR_BUS_UNKNOWN_NAME',
      `counter has no task "counter.total.remove" (it is not in counter's catalogue)`,
    ]);
    expect(env.lines.some((l) => l.msg === 'rejected counter.total.add: invalid payload')).toBe(true);
    // Typed senders that import the bot's package use its catalogue.
    const typed = env.busFor('typed', bot.catalogue);
    await expect(typed.send('counter.total.add', { n: 1 })).resolves.toEqual({ total: 6 });
  });

  test("every bot answers the console's Replay and Discard with no catalogue line: `<bot>.deadletter.*` by name", async () => {
    const env = await memorySetup({ BOT_RETRY_ATTEMPTS: '1' });
    cleanup = env.cleanup;
    let broken = true;
    const handled: string[] = [];
    const bot = createBot({
      name: 'fresh-bot',
      on: {
        vote(op) {
          if (broken) throw new Error(`boom ${op.permlink}`);
          handled.push(op.permlink);
        },
      },
    });
    running = await bot.start({ config: env.config, logger: env.logger, bus: env.busFor('fresh-bot', bot.catalogue) });
    await running.subscription.ready;
    await env.publishVote(30, 0);
    await env.publishVote(30, 1);
    await waitFor(async () => (await running?.store.deadLetters())?.length === 2, 5_000, 'two dead letters');
    const [first, second] = (await running.store.deadLetters()).map((l) => l.id);
    const console = env.busFor('console');
    broken = false;
    await expect(console.sendByName('fresh-bot.deadletter.replay', { id: first as number })).resolves.toEqual({
      id: first,
      state: 'replay',
    });
    await waitFor(() => handled.length === 1, 5_000, 'the replay');
    expect(handled).toEqual(['post-30-0']);
    await expect(console.sendByName('fresh-bot.deadletter.discard', { id: second as number })).resolves.toEqual({
      id: second,
      state: 'discarded',
    });
    await expect(failure(console.sendByName('fresh-bot.deadletter.replay', { id: 'x' }))).resolves.toEqual([
      'ERR_BUS_INVALID_PAYLOAD',
      expect.stringMatching(/^fresh-bot\.deadletter\.replay: /),
    ]);
    await expect(failure(console.sendByName('fresh-bot.deadletter.discard', { id: 99 }))).resolves.toEqual([
      'ERR_BOT_NOT_FOUND',
      'bot fresh-bot has no dead letter #99 waiting (dead)',
    ]);
  });

  test('a task not named after the bot, a handler without a declaration and the reverse are refused (ERR_BOT_INVALID)', () => {
    const s = z.object({});
    const def = { payload: s, reply: s };
    expect(() => createBot({ name: 'Bad Name', on: {} })).toThrow(AppError);
    expect(() =>
      createBot({
        name: 'digest2',
        on: {},
        catalogue: { tasks: { 'digest.report.send': def } },
        tasks: { 'digest.report.send': () => ({}) },
      }),
    ).toThrow(
      expect.objectContaining({
        code: 'ERR_BOT_INVALID',
        message:
          'bot digest2: the catalogue entries of digest2 are refused: task "digest.report.send" does not start with "digest2." (an app declares only its own names)',
      }),
    );
    // @ts-expect-error a handler of a task the bot does not declare does not compile
    expect(() => createBot({ name: 'loose', on: {}, tasks: { 'loose.thing.do': () => ({}) } })).toThrow(
      "bot loose: task loose.thing.do has a handler but is not in the bot's catalogue.tasks",
    );
    expect(() => createBot({ name: 'lazy', on: {}, catalogue: { tasks: { 'lazy.thing.do': def } } })).toThrow(
      'bot lazy: task lazy.thing.do is declared but has no handler in tasks',
    );
    expect(() =>
      createBot({
        name: 'mine',
        on: {},
        catalogue: { tasks: { 'mine.deadletter.replay': def } },
        tasks: { 'mine.deadletter.replay': () => ({}) },
      }),
    ).toThrow('bot mine: task mine.deadletter.replay is declared by the SDK for every bot');
  });

  test("a bus without the bot's tasks is refused with a clear error", async () => {
    const env = await memorySetup();
    cleanup = env.cleanup;
    const bot = createBot({ name: 'plain', on: {} });
    const wrong = env.busFor('plain');
    await expect(bot.start({ config: env.config, logger: env.logger, bus: wrong as never })).rejects.toMatchObject({
      code: 'ERR_BOT_INVALID',
      message: 'the bus of bot plain lacks its tasks plain.deadletter.replay, plain.deadletter.discard: create it with bot.catalogue',
    });
  });
});
