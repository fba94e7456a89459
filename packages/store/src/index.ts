export type { OutboxEvent, OutboxTarget } from './outbox';
export { Outbox, OUTBOX_MIGRATION } from './outbox';
export type { Database, OpenOptions, Statement } from './sqlite';
export { openDatabase } from './sqlite';
