import type { z } from 'zod';

/** A task (or call): the payload the sender gives and the reply the receiver returns. */
export interface TaskDef<P extends z.ZodType = z.ZodType, R extends z.ZodType = z.ZodType> {
  readonly payload: P;
  readonly reply: R;
}

/** The shape of a catalogue: event name -> payload schema, task name -> payload + reply schemas. */
export interface CatalogueShape {
  readonly events: Readonly<Record<string, z.ZodType>>;
  readonly tasks: Readonly<Record<string, TaskDef>>;
  /** Which app publishes which events (app -> its event names). Without it, any app may publish any event. */
  readonly publishers?: Readonly<Record<string, readonly string[]>>;
}

export type EventName<C extends CatalogueShape> = keyof C['events'] & string;
export type TaskName<C extends CatalogueShape> = keyof C['tasks'] & string;
/**
 * The events app A publishes: what a subscription to A may name. Every event when the catalogue
 * does not say, or when A is only known at run time (a `string`); none for an app that publishes none.
 */
export type EventsOf<C extends CatalogueShape, A extends string> = string extends A
  ? EventName<C>
  : C extends { readonly publishers: infer P }
    ? A extends keyof P
      ? P[A] extends readonly (infer N)[]
        ? N & EventName<C>
        : never
      : never
    : EventName<C>;

/** The app that publishes `event`, per the catalogue; undefined when it does not say. */
export function publisherOf(catalogue: CatalogueShape, event: string): string | undefined {
  for (const [app, names] of Object.entries(catalogue.publishers ?? {})) if (names.includes(event)) return app;
  return undefined;
}

/** What a publisher passes for event N. */
export type EventInput<C extends CatalogueShape, N extends EventName<C>> = z.input<C['events'][N]>;
/** What a subscriber receives for event N. */
export type EventPayload<C extends CatalogueShape, N extends EventName<C>> = z.output<C['events'][N]>;
export type TaskPayload<C extends CatalogueShape, N extends TaskName<C>> = z.output<C['tasks'][N]['payload']>;
export type TaskReply<C extends CatalogueShape, N extends TaskName<C>> = z.output<C['tasks'][N]['reply']>;

// node-ipc's lifecycle names, and the `bus.` prefix the bus uses for its own control frames.
const RESERVED = new Set(['start', 'connect', 'disconnect', 'destroy', 'close', 'socket.disconnected', 'error', 'data']);
const EVENT_NAME = /^(?:[a-z][a-z0-9_]*|[a-z][a-z0-9_-]*\.[a-z][a-z0-9_]*)$/;
const TASK_NAME = /^[a-z][a-z0-9-]*\.[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$/;

/**
 * Check the naming rules (events `model.pastverb` or a chain op name, tasks `<app>.<model>.<verb>`,
 * no reserved names) and return the catalogue unchanged, with its literal types.
 */
export function defineCatalogue<C extends CatalogueShape>(catalogue: C): C {
  const bad: string[] = [];
  for (const name of Object.keys(catalogue.events)) {
    if (!EVENT_NAME.test(name) || RESERVED.has(name) || name.startsWith('bus.')) bad.push(`event "${name}"`);
  }
  for (const name of Object.keys(catalogue.tasks)) {
    if (!TASK_NAME.test(name) || name.startsWith('bus.')) bad.push(`task "${name}"`);
  }
  if (catalogue.publishers) {
    const owner = new Map<string, string>();
    for (const [app, names] of Object.entries(catalogue.publishers)) {
      for (const name of names) {
        if (!(name in catalogue.events)) bad.push(`publisher ${app} of unknown event "${name}"`);
        else if (owner.has(name)) bad.push(`event "${name}" published by both ${owner.get(name)} and ${app}`);
        owner.set(name, app);
      }
    }
    for (const name of Object.keys(catalogue.events)) if (!owner.has(name)) bad.push(`event "${name}" has no publisher`);
  }
  if (bad.length > 0) throw new TypeError(`catalogue names break the naming rules: ${bad.join(', ')}`);
  return catalogue;
}

/** Whether `name` is a well-formed task name, `<app>.<model>.<verb>` (a task sent by name is checked by its receiver). */
export function isTaskName(name: string): boolean {
  return TASK_NAME.test(name) && !name.startsWith('bus.');
}

/**
 * What a package adds to a catalogue: its own tasks, and the events it publishes, every name
 * starting with the package's app name (`digest.report.send`). See `extendCatalogue`.
 */
export interface CatalogueExtension {
  readonly events?: Readonly<Record<string, z.ZodType>>;
  readonly tasks?: Readonly<Record<string, TaskDef>>;
}

type Entries<T> = T extends object ? T : unknown;

/** `C` with the tasks and events of `E`, the events published by `A`. */
export type ExtendedCatalogue<C extends CatalogueShape, A extends string, E extends CatalogueExtension> = {
  readonly events: C['events'] & Entries<E['events']>;
  readonly tasks: C['tasks'] & Entries<E['tasks']>;
} & (C extends { readonly publishers: infer P }
  ? { readonly publishers: P & { readonly [K in A]: ReadonlyArray<keyof Entries<E['events']> & string> } }
  : unknown);

const APP_NAME = /^[a-z][a-z0-9-]{0,31}$/;

/**
 * The catalogue `base` plus the tasks and events `app` declares in its own package (a bot's own
 * tasks), typed: the app's bus narrows `handle`/`send` by the result, and validates what arrives
 * against it. Every name must start with `<app>.` and be new; a name that breaks this or the
 * naming rules throws a TypeError listing every problem.
 */
export function extendCatalogue<C extends CatalogueShape, const A extends string, const E extends CatalogueExtension>(
  base: C,
  app: A,
  extension: E,
): ExtendedCatalogue<C, A, E> {
  if (!APP_NAME.test(app)) throw new TypeError(`"${app}" is not an app name (lower-case letters, digits and dashes)`);
  const bad: string[] = [];
  const check = (kind: 'task' | 'event', names: string[], existing: object): void => {
    for (const name of names) {
      if (!name.startsWith(`${app}.`)) bad.push(`${kind} "${name}" does not start with "${app}." (an app declares only its own names)`);
      else if (name in existing) bad.push(`${kind} "${name}" is already in the catalogue`);
    }
  };
  const events = extension.events ?? {};
  const tasks = extension.tasks ?? {};
  check('event', Object.keys(events), base.events);
  check('task', Object.keys(tasks), base.tasks);
  if (bad.length > 0) throw new TypeError(`the catalogue entries of ${app} are refused: ${bad.join(', ')}`);
  const eventNames = Object.keys(events);
  const publishers =
    base.publishers && eventNames.length > 0
      ? { ...base.publishers, [app]: [...(base.publishers[app] ?? []), ...eventNames] }
      : base.publishers;
  return defineCatalogue({
    events: { ...base.events, ...events },
    tasks: { ...base.tasks, ...tasks },
    ...(publishers ? { publishers } : {}),
  }) as unknown as ExtendedCatalogue<C, A, E>;
}

/** The app a task is addressed to: its first segment. */
export function taskApp(name: string): string {
  return name.slice(0, name.indexOf('.'));
}
