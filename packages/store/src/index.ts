export type { ActiveInstance } from './active';
export { becomeActive, STANDBY_POLL_MS } from './active';
export type { OutboxEvent, OutboxTarget, Relayer } from './outbox';
export { Outbox, OUTBOX_MIGRATION, relayer } from './outbox';
export { POSTGRES_OUTBOX_MIGRATION, PostgresOutbox } from './outbox-postgres';
export type { PoolClient, PostgresOptions, QueryResultRow } from './postgres';
export { ActiveLock, Listener, Postgres } from './postgres';
export type { Database, OpenOptions, Statement } from './sqlite';
export { openDatabase } from './sqlite';
