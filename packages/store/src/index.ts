export type { Database, OpenOptions, Statement } from './sqlite';
export { openDatabase } from './sqlite';
