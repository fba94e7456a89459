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

/** The app a task is addressed to: its first segment. */
export function taskApp(name: string): string {
  return name.slice(0, name.indexOf('.'));
}
