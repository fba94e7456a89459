interface Entry {
  pos: number;
  done: boolean;
}

/**
 * Runs op handlers with at most `limit` in flight, one at a time per key (ops of one key keep
 * chain order), and reports the end of the contiguous prefix of finished positions: the only
 * position that may be checkpointed, since everything at or below it is done.
 */
export class Dispatcher {
  private readonly entries: Entry[] = [];
  private readonly tails = new Map<string, Promise<void>>();
  private readonly waiters: Array<() => void> = [];
  private active = 0;

  constructor(
    private readonly limit: number,
    private readonly onCommit: (position: number) => void,
  ) {}

  /**
   * Start `run` for the op at `pos` (positions must arrive in increasing order); resolves when
   * another op may be submitted, which is how a slow handler holds back the subscription.
   */
  async submit(pos: number, key: string | undefined, run: () => Promise<boolean>): Promise<void> {
    while (this.active >= this.limit) await new Promise<void>((resolve) => this.waiters.push(resolve));
    const entry: Entry = { pos, done: false };
    this.entries.push(entry);
    this.active++;
    const previous = key === undefined ? undefined : this.tails.get(key);
    // `run` resolves false when it was abandoned (the bot is stopping): its position stays open.
    const task = (previous ?? Promise.resolve()).then(run).then(
      (completed) => this.finish(entry, completed),
      () => this.finish(entry, false),
    );
    if (key !== undefined) {
      const tail = task;
      this.tails.set(key, tail);
      void tail.then(() => {
        if (this.tails.get(key) === tail) this.tails.delete(key);
      });
    }
    if (this.limit === 1) await task;
  }

  /** Resolves once nothing is in flight. */
  async idle(): Promise<void> {
    while (this.active > 0) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  private finish(entry: Entry, completed: boolean): void {
    entry.done = completed;
    this.active--;
    let committed: number | undefined;
    while (this.entries[0]?.done) committed = (this.entries.shift() as Entry).pos;
    if (committed !== undefined) this.onCommit(committed);
    for (const wake of this.waiters.splice(0)) wake();
  }
}
