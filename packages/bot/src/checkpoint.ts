import type { Logger } from '@steem-bot/config';

import type { BotStore } from './store';

/** How long after a failed write the checkpoint is written again. */
export const CHECKPOINT_RETRY_MS = 1_000;

/**
 * Writes the checkpoint behind the handlers: one write at a time, never backwards, positions
 * that arrive during a write coalesced into the next. A failed write (PostgreSQL briefly away)
 * is tried again after CHECKPOINT_RETRY_MS, with one warning per outage: the checkpoint only
 * says where a restart resumes, and ops after it are handled again, idempotently by position.
 */
export class CheckpointWriter {
  private wanted: number | null;
  private writing: Promise<void> | undefined;
  private retry: NodeJS.Timeout | undefined;
  private failing = false;

  constructor(
    private readonly store: BotStore,
    private saved: number | null,
    private readonly logger: Logger,
    private readonly retryMs = CHECKPOINT_RETRY_MS,
  ) {
    this.wanted = saved;
  }

  /** The last position written to the store. */
  get position(): number | null {
    return this.saved;
  }

  save(position: number): void {
    if (this.wanted === null || position > this.wanted) this.wanted = position;
    if (!this.retry) this.start();
  }

  /** Write what is pending now; resolves when it is written (or its write failed, logged). No retry after it. */
  async flush(): Promise<void> {
    clearTimeout(this.retry);
    this.retry = undefined;
    while (this.writing) await this.writing;
    if (this.pending()) await this.start();
    clearTimeout(this.retry);
    this.retry = undefined;
  }

  private start(): Promise<void> {
    this.writing ??= this.write().finally(() => (this.writing = undefined));
    return this.writing;
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
        if (this.failing) this.logger.info(`checkpoint ${position} saved again`);
        this.failing = false;
      } catch (err) {
        if (!this.failing)
          this.logger.warn({ err, pos: position }, `checkpoint ${position} not saved; trying again every ${this.retryMs} ms`);
        this.failing = true;
        this.retry = setTimeout(() => {
          this.retry = undefined;
          void this.start();
        }, this.retryMs);
        this.retry.unref();
        return;
      }
    }
  }
}
