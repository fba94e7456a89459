import type { Logger } from '@steem-bot/config';

import { type CursorInfo, EventLog, type LogEntry, type Retention } from './event-log';
import { TailCache } from './tail-cache';
import type { StreamInfo, TaskKeyStore } from './transport';

export interface StreamOptions {
  /** The SQLite file of the stream (':memory:' keeps it only for the life of the process). */
  file: string;
  floor: number;
  retention: Retention;
  /** Bytes of the newest frames kept in memory, so that subscribers near the head skip the disk. */
  cacheBytes: number;
  /** How often retention is checked (pruning then goes on in short steps until done) and cursors recorded. */
  pruneIntervalMs: number;
  /** Where the connected cursors are, recorded with the stream for the operator. */
  cursors?: () => CursorInfo[];
  logger: Logger;
}

/**
 * A publishing app's stream: the durable log plus a cache of its tail. Appends go to both;
 * reads come from the cache when the cursor is inside it, else from the log. Retention runs in
 * the background in short transactions, between appends.
 */
export class Stream {
  private readonly log: EventLog;
  private cache: TailCache<Buffer>;
  private readonly timer: NodeJS.Timeout;
  private pruning: NodeJS.Immediate | undefined;
  private closed = false;

  constructor(private readonly options: StreamOptions) {
    this.log = new EventLog(options.file, options.floor);
    this.cache = new TailCache<Buffer>(options.cacheBytes, this.log.head);
    this.timer = setInterval(() => this.tick(), options.pruneIntervalMs);
    this.timer.unref();
  }

  get head(): number {
    return this.log.head;
  }

  get floor(): number {
    return this.log.floor;
  }

  info(): StreamInfo {
    return { head: this.log.head, floor: this.log.floor, bytes: this.log.bytes };
  }

  /** A stream that must start above `floor` (known only after serving began): floor and head move up to it. */
  raiseFloor(floor: number): void {
    if (floor <= this.log.head) return;
    this.log.raiseFloor(floor);
    this.cache = new TailCache<Buffer>(this.options.cacheBytes, floor);
  }

  /** Append in one transaction (all or none); throws ERR_BUS_POSITION on a position not above the head. */
  append(entries: readonly LogEntry[]): void {
    this.log.append(entries);
    for (const e of entries) this.cache.push(e);
  }

  /**
   * Up to `limit` events after `pos`, oldest first. The caller checks `pos >= floor` first, in
   * the same turn of the event loop (pruning runs between turns, never during one).
   */
  read(pos: number, limit: number): readonly LogEntry[] {
    return pos >= this.cache.floor ? (this.cache.after(pos, limit) as LogEntry[]) : this.log.read(pos, limit);
  }

  close(): void {
    this.closed = true;
    clearInterval(this.timer);
    if (this.pruning) clearImmediate(this.pruning);
    this.log.close();
  }

  /** The durable record of accepted task keys (kept for the stream's retention in hours). */
  get taskKeys(): TaskKeyStore {
    return { get: (key) => this.log.acceptedReply(key), put: (key, reply) => this.log.accept(key, reply) };
  }

  private tick(): void {
    this.prune();
    try {
      this.log.forgetKeys(Date.now() - this.options.retention.hours * 3_600_000);
    } catch (err) {
      this.options.logger.warn({ err }, 'could not forget old task keys');
    }
    if (this.options.cursors && !this.closed) {
      try {
        this.log.saveCursors(this.options.cursors());
      } catch (err) {
        this.options.logger.warn({ err }, 'could not record the cursors');
      }
    }
  }

  /** One short pruning step; schedules the next one (after pending I/O) while more is due. */
  private prune(): void {
    if (this.closed || this.pruning) return;
    try {
      const before = this.log.floor;
      const more = this.log.prune(this.options.retention);
      if (this.log.floor !== before) this.options.logger.debug({ floor: this.log.floor, bytes: this.log.bytes }, 'pruned the stream');
      if (more) this.pruning = setImmediate(() => ((this.pruning = undefined), this.prune()));
    } catch (err) {
      this.options.logger.error({ err }, 'pruning the stream failed; will try again');
    }
  }
}
