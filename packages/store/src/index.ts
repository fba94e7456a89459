export type { Database, OpenOptions } from './sqlite';
export { openDatabase } from './sqlite';
