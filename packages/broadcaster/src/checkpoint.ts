import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

import { AppError } from '@steem-bot/config';

/** The last block the broadcaster published completely. */
export interface Checkpoint {
  block_num: number;
  block_id: string;
  /** Position of the last event published (the block's block.applied). */
  position: number;
  /**
   * Head mode: the ids of the last published blocks, oldest first, ending with `block_id`, so
   * that a fork found after a restart is walked back like any other.
   */
  recent?: string[];
}

const BLOCK_ID = /^[0-9a-f]{40}$/;

/**
 * The checkpoint file: written whole to a temporary file, fsynced, renamed over the old one, and
 * the directory fsynced, so that a crash or a power loss at any moment leaves either the old or
 * the new checkpoint, never a torn or empty one.
 */
export class CheckpointFile {
  constructor(private readonly path: string) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  }

  /**
   * The saved checkpoint, or undefined when there is none. A file that exists but does not hold a
   * valid checkpoint is ERR_CHECKPOINT_INVALID: restarting cannot fix it, so the app exits 78.
   */
  load(): Checkpoint | undefined {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    let problem: string | undefined;
    let c: Partial<Checkpoint> | undefined;
    if (text.trim() === '') problem = 'the file is empty';
    else {
      try {
        c = JSON.parse(text) as Partial<Checkpoint>;
      } catch {
        problem = 'the file is not JSON';
      }
    }
    if (c !== undefined) {
      if (c === null || typeof c !== 'object') problem = 'not an object';
      else if (!Number.isSafeInteger(c.block_num) || (c.block_num as number) < 0) problem = 'block_num is not a block number';
      else if (typeof c.block_id !== 'string' || !BLOCK_ID.test(c.block_id)) problem = 'block_id is not a block id';
      else if (!Number.isSafeInteger(c.position) || (c.position as number) < 0) problem = 'position is not a position';
      else if (c.recent !== undefined && (!Array.isArray(c.recent) || !c.recent.every((id) => typeof id === 'string' && BLOCK_ID.test(id))))
        problem = 'recent is not a list of block ids';
    }
    if (problem !== undefined) {
      throw new AppError(
        'ERR_CHECKPOINT_INVALID',
        `${this.path} is not a valid checkpoint (${problem}): ${JSON.stringify(text.slice(0, 120))}. ` +
          'The broadcaster cannot know where to resume. Move the file away and set STEEM_START_BLOCK to the block after the ' +
          'last one your subscribers handled, then start again.',
        { data: { path: this.path, problem } },
      );
    }
    return c as Checkpoint;
  }

  save(c: Checkpoint): void {
    const tmp = `${this.path}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, JSON.stringify(c));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path);
    // The rename is durable only once the directory entry is.
    const dir = openSync(dirname(this.path), 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  }
}
