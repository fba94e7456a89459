import { z } from 'zod';

import { catalogue, chainOpNames, defineCatalogue, extendCatalogue, isTaskName, publisherOf, taskApp } from '../src';

describe('catalogue', () => {
  test('every chain op and event follows the naming rules and every task names its app', () => {
    expect(chainOpNames).toContain('comment');
    expect(chainOpNames).toHaveLength(47);
    for (const name of chainOpNames) expect(catalogue.events).toHaveProperty(name);
    expect(Object.keys(catalogue.tasks).map(taskApp)).toContain('broadcaster');
  });

  test('names that break the rules are refused together', () => {
    const s = z.object({});
    expect(() =>
      defineCatalogue({
        events: { error: s, 'bus.subscribe': s, 'Email.Sent': s },
        tasks: { 'mailer.send': { payload: s, reply: s } },
      }),
    ).toThrow(/event "error", event "bus.subscribe", event "Email.Sent", task "mailer.send"/);
  });

  test("a package extends the catalogue with its own tasks and events, every name its own; the project's has no bot's", () => {
    const report = { payload: z.object({ period: z.string() }), reply: z.object({ ops: z.number() }) };
    const own = extendCatalogue(catalogue, 'reporter', {
      tasks: { 'reporter.report.send': report },
      events: { 'reporter.sent': z.object({ ops: z.number() }) },
    });
    expect(own.tasks['reporter.report.send']).toBe(report);
    expect(own.tasks['mailer.email.send']).toBe(catalogue.tasks['mailer.email.send']);
    expect(publisherOf(own, 'reporter.sent')).toBe('reporter');
    expect(publisherOf(own, 'email.sent')).toBe('mailer-worker');
    expect('reporter.report.send' in catalogue.tasks).toBe(false);
    // Typed: a payload or name the extension does not declare does not compile.
    const payload: z.input<(typeof own.tasks)['reporter.report.send']['payload']> = { period: 'day' };
    expect(payload.period).toBe('day');
    // @ts-expect-error not a task of the extended catalogue
    expect(own.tasks['reporter.report.nope']).toBeUndefined();

    const s = z.object({});
    expect(() =>
      extendCatalogue(catalogue, 'reporter', {
        tasks: { 'digest.report.send': { payload: s, reply: s }, 'reporter.x': { payload: s, reply: s } },
        events: { 'email.sent': s },
      }),
    ).toThrow(
      'the catalogue entries of reporter are refused: event "email.sent" does not start with "reporter." (an app declares only its own names), task "digest.report.send" does not start with "reporter." (an app declares only its own names)',
    );
    expect(() => extendCatalogue(catalogue, 'reporter', { tasks: { 'reporter.x': { payload: s, reply: s } } })).toThrow(
      /task "reporter.x"/,
    );
    expect(() => extendCatalogue(catalogue, 'mailer', { tasks: { 'mailer.email.send': { payload: s, reply: s } } })).toThrow(
      /task "mailer.email.send" is already in the catalogue/,
    );
    expect(Object.keys(catalogue.tasks).filter((t) => /deadletter|digest|watcher|tipper|new-posts/.test(t))).toEqual([]);
    expect([isTaskName('digest.report.send'), isTaskName('digest.report'), isTaskName('bus.x.y')]).toEqual([true, false, false]);
  });

  test('chain op payloads keep their own fields next to the position metadata', () => {
    const op = {
      voter: 'alice',
      author: 'bob',
      permlink: 'p',
      weight: 10000,
      block_num: 1000000,
      block_id: '000f4240',
      timestamp: '2016-04-29T04:00:03',
      trx_id: 'ab',
      trx_in_block: 0,
      op_in_trx: 0,
      op_in_block: 0,
      extra: 'kept',
    };
    expect(catalogue.events.vote.parse(op)).toEqual(op);
    expect(catalogue.events.vote.safeParse({ ...op, weight: 'x' }).success).toBe(false);
  });
});
