import type { Logger } from '@steem-bot/config';

import type { BotStore } from './store';

/**
 * Writes the checkpoint behind the handlers: one write at a time, never backwards, positions
 * that arrive during a write coalesced into the next. A failed write (PostgreSQL briefly away)
 * is logged and left for the next position or the final flush: the checkpoint only says where
 * a restart resumes, and ops after it are handled again, idempotently by position.
 */
export class CheckpointWriter {
  private wanted: number | null;
  private writing: Promise<void> | undefined;

  constructor(
    private readonly store: BotStore,
    private saved: number | null,
    private readonly logger: Logger,
  ) {
    this.wanted = saved;
  }

  /** The last position written to the store. */
  get position(): number | null {
    return this.saved;
  }

  save(position: number): void {
    if (this.wanted === null || position > this.wanted) this.wanted = position;
    this.writing ??= this.write().finally(() => (this.writing = undefined));
  }

  /** Write what is pending; resolves when it is written (or its write failed, logged). */
  async flush(): Promise<void> {
    while (this.writing) await this.writing;
    if (this.pending()) {
      this.writing = this.write().finally(() => (this.writing = undefined));
      await this.writing;
    }
  }

  private pending(): boolean {
    return this.wanted !== null && (this.saved === null || this.wanted > this.saved);
  }

  private async write(): Promise<void> {
    while (this.pending()) {
      const position = this.wanted as number;
      try {
        await this.store.saveCheckpoint(position);
        this.saved = position;
      } catch (err) {
        this.logger.warn({ err, pos: position }, `checkpoint ${position} not saved; trying again with the next op`);
        return;
      }
    }
  }
}
