import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { storeImplementations } from '@steem-bot/testkit';

import { type BotStore, type Json, PostgresBotStore, SqliteBotStore } from '../src';

/** The stores of several bots in one place (one DATA_DIR, or one PostgreSQL schema). */
interface Place {
  bot(name: string): Promise<BotStore>;
  close(): Promise<void>;
}

function place(open: (name: string) => Promise<BotStore>): Place {
  const opened: BotStore[] = [];
  return {
    async bot(name) {
      const store = await open(name);
      opened.push(store);
      return store;
    },
    async close() {
      await Promise.all(opened.splice(0).map((s) => s.close()));
    },
  };
}

// One contract, two implementations: the same tests against the bots' SQLite files and against
// a real PostgreSQL (TEST_DATABASE_URL; its own schema per test, dropped after).
const impls = storeImplementations<Place>('bot', {
  sqlite: (dir) => place((name) => Promise.resolve(new SqliteBotStore(join(dir, `bot-${name}.sqlite`)))),
  postgres: (url, schema) => Promise.resolve(place((name) => PostgresBotStore.open({ url, schema, bot: name }))),
});

// Positions are block * 1,000,000 + index: beyond 32 bits.
const P = 80_000_000_000_123;
const letter = (position: number, name = 'vote') => ({
  position,
  name,
  payload: { voter: 'alice', weight: 10_000, nested: { list: [1, 'two', null] } },
  tid: `tid-${position}`,
  error: 'ERR_TEST: boom',
  attempts: 3,
});

describe.each(impls)('BotStore conformance: %s', (_name, harness) => {
  let stores: Place;
  beforeEach(async () => {
    harness.setup();
    stores = await harness.open();
  });
  afterEach(() => harness.teardown());

  test('the checkpoint: none at first, then only forward, seen by another handle', async () => {
    const store = await stores.bot('digest');
    expect(await store.checkpoint()).toBeNull();
    await store.saveCheckpoint(P);
    await store.saveCheckpoint(P - 1); // never back
    expect(await store.checkpoint()).toBe(P);
    await store.saveCheckpoint(P + 5);
    expect(await (await stores.bot('digest')).checkpoint()).toBe(P + 5);
  });

  test('dead letters: kept with their payload, replayed or failed again, discarded only while dead', async () => {
    const store = await stores.bot('watcher');
    const a = await store.addDeadLetter(letter(P));
    const b = await store.addDeadLetter(letter(P + 1, 'comment'));
    expect(b).toBeGreaterThan(a);
    const all = await store.deadLetters();
    expect(all.map((l) => l.id)).toEqual([a, b]);
    expect(all[0]).toMatchObject({ ...letter(P), id: a, state: 'dead', replayed_at: null });
    expect(typeof all[0]?.created_at).toBe('number');
    expect(Math.abs((all[0]?.created_at as number) - Date.now())).toBeLessThan(60_000);

    expect(await store.requestReplay(a)).toBe(true);
    expect(await store.requestReplay(a)).toBe(false); // already asked
    expect((await store.deadLetters('replay')).map((l) => l.id)).toEqual([a]);
    expect(await store.discardDeadLetter(a)).toBeUndefined(); // not waiting for an operator
    await store.replayFailed(a, 'ERR_TEST: again', 2);
    expect(await store.deadLetter(a)).toMatchObject({ state: 'dead', error: 'ERR_TEST: again', attempts: 5 });
    expect(await store.requestReplay(a)).toBe(true);
    await store.replaySucceeded(a);
    const replayed = await store.deadLetter(a);
    expect(replayed?.state).toBe('replayed');
    expect(typeof replayed?.replayed_at).toBe('number');
    expect(await store.requestReplay(a)).toBe(false);

    expect(await store.discardDeadLetter(b)).toMatchObject({ id: b, name: 'comment', state: 'dead' });
    expect(await store.deadLetter(b)).toBeUndefined();
    expect(await store.discardDeadLetter(b)).toBeUndefined();
    expect(await store.deadLetter(12345)).toBeUndefined();
    expect((await store.deadLetters('dead')).length).toBe(0);
  });

  test('state: JSON values by key, set, replaced, deleted; bad keys and values refused with ERR_BOT_STATE', async () => {
    const store = await stores.bot('tipper');
    expect(await store.get('missing')).toBeUndefined();
    const values: Json[] = [null, true, 0, -1.5, P, 'text ünïcode', [], [1, [2, { a: null }]], { counts: { vote: 3 }, since: P }];
    for (const [i, value] of values.entries()) await store.set(`k${i}`, value);
    for (const [i, value] of values.entries()) expect(await store.get(`k${i}`)).toEqual(value);
    await store.set('k0', 'replaced');
    expect(await store.get('k0')).toBe('replaced');
    expect(await store.delete('k0')).toBe(true);
    expect(await store.delete('k0')).toBe(false);
    expect(await store.get('k0')).toBeUndefined();

    await expect(store.set('', 1)).rejects.toMatchObject({ code: 'ERR_BOT_STATE' });
    await expect(store.get('x'.repeat(513))).rejects.toMatchObject({ code: 'ERR_BOT_STATE' });
    await expect(store.set('u', undefined as unknown as Json)).rejects.toMatchObject({ code: 'ERR_BOT_STATE' });
    await expect(store.set('b', 10n as unknown as Json)).rejects.toMatchObject({ code: 'ERR_BOT_STATE' });
    await expect(store.update('u', () => (() => 1) as unknown as Json)).rejects.toMatchObject({ code: 'ERR_BOT_STATE' });
    expect(await store.get('u')).toBeUndefined();
  });

  test('update: read-modify-write; undefined removes; concurrent updates from two handles lose nothing', async () => {
    const one = await stores.bot('digest');
    const two = await stores.bot('digest');
    expect(await one.update<number>('n', (n) => (n ?? 0) + 1)).toBe(1);
    const bumps = Array.from({ length: 40 }, (_, i) => (i % 2 ? one : two).update<number>('n', (n) => (n ?? 0) + 1));
    await Promise.all(bumps);
    expect(await two.get('n')).toBe(41);
    expect(await one.update('n', () => undefined)).toBeUndefined();
    expect(await two.get('n')).toBeUndefined();
  });

  test('updateMany: several keys at once, all or nothing; keys in any order never deadlock', async () => {
    const store = await stores.bot('digest');
    const other = await stores.bot('digest');
    await store.set('counts', { vote: 2 });
    const after = await store.updateMany(['report', 'counts'], (current) => ({
      report: { ops: (current.counts as { vote: number }).vote },
      counts: {},
    }));
    expect(after).toEqual({ report: { ops: 2 }, counts: {} });
    // The function's own copy: changing it in place changes nothing stored.
    await store.updateMany(['counts'], (current) => {
      (current.counts as Record<string, number>).vote = 99;
      return {};
    });
    expect(await store.get('counts')).toEqual({});
    // A failing update writes none of its keys.
    await expect(
      store.updateMany(['report', 'counts'], () => {
        throw new Error('no');
      }),
    ).rejects.toThrow('no');
    await expect(store.updateMany(['counts'], () => ({ counts: 1, report: undefined }) as never)).rejects.toThrow(/did not name/);
    expect(await store.get('report')).toEqual({ ops: 2 });
    expect(await store.get('counts')).toEqual({});
    // Two handles moving a total between two keys, in opposite key order: no deadlock, no loss.
    await store.set('a', 100);
    await store.set('b', 0);
    const move = (s: BotStore, keys: Array<'a' | 'b'>) => s.updateMany(keys, (c) => ({ a: (c.a as number) - 1, b: (c.b as number) + 1 }));
    await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 ? move(store, ['a', 'b']) : move(other, ['b', 'a']))));
    expect([await store.get('a'), await store.get('b')]).toEqual([70, 30]);
  });

  test('prune: removes the keys of a prefix last written before the age, keeps the rest', async () => {
    const store = await stores.bot('new-posts');
    await store.set('post:alice/a', 1);
    await store.set('post:bob/b', 2);
    await store.set('other', 3);
    await sleep(60);
    await store.set('post:carol/c', 4);
    expect(await store.prune('post:', 30)).toBe(2);
    expect(await store.get('post:alice/a')).toBeUndefined();
    expect(await store.get('post:carol/c')).toBe(4);
    expect(await store.get('other')).toBe(3);
    expect(await store.prune('post:', 60_000)).toBe(0);
  });

  test('bots in one place are apart: checkpoints, dead letters and state of their own', async () => {
    const a = await stores.bot('alpha');
    const b = await stores.bot('beta');
    await a.saveCheckpoint(P);
    await a.set('k', 'alpha');
    const id = await a.addDeadLetter(letter(P));
    expect(await b.checkpoint()).toBeNull();
    expect(await b.get('k')).toBeUndefined();
    expect(await b.deadLetters()).toEqual([]);
    expect(await b.deadLetter(id)).toBeUndefined();
    expect(await b.requestReplay(id)).toBe(false);
    expect(await b.discardDeadLetter(id)).toBeUndefined();
    await b.set('k', 'beta');
    expect(await a.get('k')).toBe('alpha');
    expect(await a.prune('', 0)).toBeGreaterThanOrEqual(0);
    expect(await b.get('k')).toBe('beta');
  });
});
