import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';

import { createLogger, defineCatalogue, type Logger } from '@steem-bot/config';
import { z } from 'zod';

/** A small catalogue for the bus's own tests. */
export const testCatalogue = defineCatalogue({
  events: {
    /** A test event with a counter. */
    'tick.happened': z.object({ n: z.number().int() }),
    /** A chain-op-like event. */
    comment: z.looseObject({ author: z.string(), permlink: z.string(), parent_author: z.string() }),
  },
  tasks: {
    /** A task for the app "alpha". */
    'alpha.job.run': { payload: z.object({ n: z.number().int() }), reply: z.object({ doubled: z.number() }) },
    /** A task for the app "beta" (never served in some tests). */
    'beta.job.run': { payload: z.object({ n: z.number().int() }), reply: z.object({}) },
  },
});
export type TestCatalogue = typeof testCatalogue;

/** A logger whose JSON lines are kept in memory, for asserting on what was logged. */
export function memoryLogger(app = 'test'): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: createLogger({ app, format: 'json', level: 'debug', destination }), lines };
}

/** A fresh private directory with a short path (socket paths are limited to 107 bytes). */
export function tempDir(prefix = 'sb-'): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Resolve when `predicate` holds, polling every 10 ms, or reject after `timeoutMs`. */
export async function waitFor(predicate: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
