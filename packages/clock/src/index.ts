export type { ClockOptions } from './clock';
export { Clock } from './clock';
export type { Schedule } from './schedules';
export { loadSchedules, parseSchedules } from './schedules';
export { clockStoreFile, openClockStore, startClock } from './start';
export type { ClockStore, TickChange, TickRow, TickState } from './store';
export { SqliteClockStore } from './store';
export { PostgresClockStore } from './store-postgres';
