import { z } from 'zod';

import { catalogue, chainOpNames, defineCatalogue, taskApp } from '../src';

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
