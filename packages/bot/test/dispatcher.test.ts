import { Dispatcher } from '../src';

const tick = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('Dispatcher', () => {
  test('one at a time by default: each submit waits for its op', async () => {
    const commits: number[] = [];
    const order: string[] = [];
    const d = new Dispatcher(1, (p) => commits.push(p));
    await d.submit(1, undefined, async () => {
      await tick(5);
      order.push('a');
      return true;
    });
    order.push('after a');
    await d.submit(2, undefined, () => Promise.resolve(true));
    expect(order).toEqual(['a', 'after a']);
    expect(commits).toEqual([1, 2]);
  });

  test('keyed concurrency keeps per-key order and commits only a contiguous prefix', async () => {
    const commits: number[] = [];
    const done: number[] = [];
    const d = new Dispatcher(4, (p) => commits.push(p));
    const slow = (pos: number, ms: number) => async (): Promise<boolean> => {
      await tick(ms);
      done.push(pos);
      return true;
    };
    await d.submit(1, 'a', slow(1, 60));
    await d.submit(2, 'b', slow(2, 5));
    await d.submit(3, 'a', slow(3, 1));
    await d.submit(4, 'c', slow(4, 5));
    await tick(30);
    // 2 and 4 are done, but 1 is not: nothing may be checkpointed yet.
    expect(done).toEqual(expect.arrayContaining([2, 4]));
    expect(commits).toEqual([]);
    await d.idle();
    expect(done.indexOf(3)).toBeGreaterThan(done.indexOf(1)); // same key: in order
    expect(commits.at(-1)).toBe(4);
    expect(commits).toEqual([...commits].sort((x, y) => x - y));
  });

  test('an abandoned op keeps its position open: nothing after it is committed', async () => {
    const commits: number[] = [];
    const d = new Dispatcher(2, (p) => commits.push(p));
    await d.submit(1, undefined, () => Promise.resolve(true));
    await d.submit(2, undefined, () => Promise.resolve(false));
    await d.submit(3, undefined, () => Promise.resolve(true));
    await d.idle();
    expect(commits).toEqual([1]);
  });

  test('holds back the submitter while `limit` ops are in flight', async () => {
    const d = new Dispatcher(2, () => undefined);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    await d.submit(1, undefined, () => gate.then(() => true));
    await d.submit(2, undefined, () => gate.then(() => true));
    let third = false;
    const pending = d.submit(3, undefined, () => Promise.resolve(true)).then(() => (third = true));
    await tick(20);
    expect(third).toBe(false);
    release();
    await pending;
    expect(third).toBe(true);
  });
});
