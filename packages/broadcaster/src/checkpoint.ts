import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** The last block the broadcaster published completely. */
export interface Checkpoint {
  block_num: number;
  block_id: string;
  /** Position of the last event published (the block's block.applied). */
  position: number;
}

/**
 * The checkpoint file: written whole to a temporary file, then renamed over the old one, so a
 * crash at any moment leaves either the old or the new checkpoint, never a torn one.
 */
export class CheckpointFile {
  constructor(private readonly path: string) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  }

  load(): Checkpoint | undefined {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    const c = JSON.parse(text) as Checkpoint;
    if (!Number.isSafeInteger(c.block_num) || typeof c.block_id !== 'string' || !Number.isSafeInteger(c.position)) {
      throw new Error(`${this.path} is not a valid checkpoint: ${text.slice(0, 200)}`);
    }
    return c;
  }

  save(c: Checkpoint): void {
    const tmp = `${this.path}.tmp`;
    writeFileSync(tmp, JSON.stringify(c));
    renameSync(tmp, this.path);
  }
}
