import { existsSync, readFileSync } from 'node:fs';

import { AppError, type Catalogue, catalogue, isTaskName, taskApp, type TaskName } from '@steem-bot/config';
import { Cron } from 'croner';
import { z } from 'zod';

const scheduleSchema = z.strictObject({
  /** Stable id: the claim key, with the tick time. */
  id: z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,63}$/, 'lower-case letters, digits, _ . -'),
  /** croner syntax: optional seconds field, L, W, #. */
  cron: z.string().min(1),
  timezone: z.string().default('UTC'),
  task: z.string(),
  payload: z.record(z.string(), z.unknown()).default({}),
  /** skip: a tick whose previous run is not yet acknowledged is skipped; allow: it fires anyway. */
  overlap: z.enum(['skip', 'allow']).default('skip'),
  /** skip: ticks missed while no clock ran are lost; once: the latest one within missed_window_ms fires once. */
  missed: z.enum(['skip', 'once']).default('skip'),
  missed_window_ms: z.number().int().positive().default(3_600_000),
  /** A tick not acknowledged within this time after it is due is given up (expired). */
  expiry_ms: z.number().int().positive().default(300_000),
});

export type Schedule = z.output<typeof scheduleSchema> & {
  pattern: Cron;
  /** False for a task the project's catalogue does not hold (a bot's own): its receiver checks it. */
  catalogued: boolean;
};

const fileSchema = z.strictObject({ $schema: z.string().optional(), schedules: z.array(z.unknown()) });

/** Parse and check a schedule file: every problem (index, id, field, message) is reported together. */
export function parseSchedules(text: string, source = 'schedules'): Schedule[] {
  const problems: string[] = [];
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw invalid(source, [`not JSON: ${(err as Error).message}`]);
  }
  const file = fileSchema.safeParse(json);
  if (!file.success)
    throw invalid(
      source,
      file.error.issues.map((i) => `${i.path.join('.') || '(file)'}: ${i.message}`),
    );
  const out: Schedule[] = [];
  const ids = new Set<string>();
  file.data.schedules.forEach((raw, index) => {
    const where = `schedules[${index}]${typeof (raw as { id?: unknown })?.id === 'string' ? ` (${(raw as { id: string }).id})` : ''}`;
    const parsed = scheduleSchema.safeParse(raw);
    if (!parsed.success) {
      for (const i of parsed.error.issues) problems.push(`${where}.${i.path.join('.')}: ${i.message}`);
      return;
    }
    const s = parsed.data;
    if (ids.has(s.id)) problems.push(`${where}.id: "${s.id}" is used twice`);
    ids.add(s.id);
    // A bot's own task is declared by the bot's package, not here: its name is checked now, its
    // payload by the bot when the tick arrives (a refusal ends that tick with the bot's error).
    const def = catalogue.tasks[s.task as TaskName<Catalogue>];
    if (!def) {
      if (!isTaskName(s.task)) problems.push(`${where}.task: "${s.task}" is not a task name (<app>.<model>.<verb>)`);
    } else {
      const payload = def.payload.safeParse(s.payload);
      if (!payload.success) problems.push(...payload.error.issues.map((i) => `${where}.payload.${i.path.join('.')}: ${i.message}`));
    }
    try {
      Intl.DateTimeFormat(undefined, { timeZone: s.timezone });
    } catch {
      problems.push(`${where}.timezone: "${s.timezone}" is not an IANA time zone`);
      return;
    }
    let pattern: Cron;
    try {
      pattern = new Cron(s.cron, { timezone: s.timezone, paused: true });
      if (pattern.nextRun() === null) problems.push(`${where}.cron: "${s.cron}" never fires`);
    } catch (err) {
      problems.push(`${where}.cron: ${(err as Error).message}`);
      return;
    }
    out.push({ ...s, pattern, catalogued: def !== undefined });
  });
  if (problems.length > 0) throw invalid(source, problems);
  return out;
}

export function loadSchedules(file: string): Schedule[] {
  if (!existsSync(file)) throw invalid(file, ['the file does not exist (CLOCK_SCHEDULES)']);
  return parseSchedules(readFileSync(file, 'utf8'), file);
}

function invalid(source: string, problems: string[]): AppError {
  return new AppError('ERR_CLOCK_SCHEDULES_INVALID', `invalid schedules in ${source}:\n${problems.map((p) => `  ${p}`).join('\n')}`, {
    data: problems,
  });
}

/** The app a schedule's task goes to. */
export const targetOf = (s: Schedule): string => taskApp(s.task);
