export type { ClockOptions } from './clock';
export { Clock } from './clock';
export type { Schedule } from './schedules';
export { loadSchedules, parseSchedules } from './schedules';
export { clockStoreFile, startClock } from './start';
export type { TickRow, TickState } from './store';
export { ClockStore } from './store';
