import { AppError } from '@steem-bot/config';

/** One cached event: its position, name and encoded frame (whatever the transport writes). */
export interface CachedEntry<F extends { length: number } = Buffer> {
  readonly pos: number;
  readonly name: string;
  readonly frame: F;
}

/**
 * The newest events of a stream in memory, bounded in bytes, so that subscribers near the head
 * are served without touching the disk. The in-memory transport uses one as its whole stream.
 * Positions only grow.
 */
export class TailCache<F extends { length: number } = Buffer> {
  private entries: CachedEntry<F>[] = [];
  private head = 0; // index of the oldest retained entry
  private bytes = 0;
  /** Every event with a position at or below the floor is not held (never was, or evicted). */
  floor: number;

  constructor(
    private readonly maxBytes: number,
    floor: number,
  ) {
    this.floor = floor;
  }

  get size(): number {
    return this.entries.length - this.head;
  }

  get byteSize(): number {
    return this.bytes;
  }

  /** Position of the newest event, or the floor when empty. */
  get last(): number {
    return this.size > 0 ? (this.entries[this.entries.length - 1] as CachedEntry<F>).pos : this.floor;
  }

  /** Append the newest event; its position must be a safe integer above the last one. */
  push(entry: CachedEntry<F>): void {
    if (!Number.isSafeInteger(entry.pos) || entry.pos <= this.last) {
      throw new AppError('ERR_BUS_POSITION', `position ${entry.pos} is not above the last one (${this.last})`);
    }
    this.entries.push(entry);
    this.bytes += entry.frame.length;
    while (this.bytes > this.maxBytes && this.size > 1) {
      const old = this.entries[this.head] as CachedEntry<F>;
      this.entries[this.head] = undefined as unknown as CachedEntry<F>;
      this.head++;
      this.bytes -= old.frame.length;
      this.floor = old.pos;
    }
    // Compact once the dead prefix dominates, so the array never grows without bound.
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }

  /** The held entries after `pos`, oldest first, at most `limit` of them. */
  after(pos: number, limit: number): CachedEntry<F>[] {
    let lo = this.head;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.entries[mid] as CachedEntry<F>).pos <= pos) lo = mid + 1;
      else hi = mid;
    }
    return this.entries.slice(lo, Math.min(lo + limit, this.entries.length));
  }
}
