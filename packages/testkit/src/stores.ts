import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Postgres } from '@steem-bot/store';

/** What a store under a conformance suite must have: a way to let go of its handles. */
interface Closable {
  close(): Promise<void> | void;
}

/** How to open the store of one app on each implementation (a new handle on one shared store per call). */
export interface StoreMakers<S> {
  sqlite(dir: string): S | Promise<S>;
  postgres(url: string, schema: string): Promise<S>;
}

/**
 * One store implementation inside a test: `open` gives a new handle on the same shared store (as
 * another process of the app would open), `setup` / `teardown` go in beforeEach / afterEach
 * (teardown closes every handle, then deletes the SQLite directory or drops the schema).
 */
export interface StoreHarness<S> {
  open(): Promise<S>;
  setup(): void;
  teardown(): Promise<void>;
}

/**
 * The implementations a conformance suite runs its one contract against, for `describe.each`:
 * SQLite in a temporary directory always, PostgreSQL when TEST_DATABASE_URL is set (a schema of
 * its own per test, dropped after); without it one line says the PostgreSQL half is skipped.
 */
export function storeImplementations<S extends Closable>(app: string, make: StoreMakers<S>): Array<[string, StoreHarness<S>]> {
  const url = process.env.TEST_DATABASE_URL;
  if (!url) process.stdout.write(`${app}/store conformance: TEST_DATABASE_URL is not set; the PostgreSQL half is skipped\n`);
  const harness = (place: () => { open(): Promise<S>; cleanup(): Promise<void> }): StoreHarness<S> => {
    let current: ReturnType<typeof place> | undefined;
    const handles: S[] = [];
    return {
      async open() {
        if (!current) throw new Error('call setup() first (in beforeEach)');
        const store = await current.open();
        handles.push(store);
        return store;
      },
      setup() {
        current = place();
      },
      async teardown() {
        await Promise.all(handles.splice(0).map((s) => s.close()));
        await current?.cleanup();
        current = undefined;
      },
    };
  };
  const sqlite = harness(() => {
    const dir = mkdtempSync(join(tmpdir(), `${app}-store-`));
    return {
      open: () => Promise.resolve(make.sqlite(dir)),
      cleanup: () => Promise.resolve(rmSync(dir, { recursive: true, force: true })),
    };
  });
  const impls: Array<[string, StoreHarness<S>]> = [['sqlite', sqlite]];
  if (url) {
    const postgres = harness(() => {
      const schema = `sbt_${app.replace(/\W/g, '_')}_${process.pid}_${randomBytes(3).toString('hex')}`;
      return {
        open: () => make.postgres(url, schema),
        async cleanup() {
          const admin = await Postgres.open({ url, schema, name: 'cleanup' });
          await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
          await admin.close();
        },
      };
    });
    impls.push(['postgres', postgres]);
  }
  return impls;
}

/**
 * Cut the connection holding the single-active-instance lock of app `name` in `schema`
 * (pg_terminate_backend), as a server restart or a network cut would; how many were cut (1).
 * Only the session granted that lock's own key counts, not any advisory lock: a starting standby
 * briefly holds the migrations' one.
 */
export async function terminateLockHolder(admin: Postgres, schema: string, name: string): Promise<number> {
  const [row] = await admin.query<{ n: number }>(
    `SELECT COUNT(pg_terminate_backend(l.pid))::int AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
     WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = $2 AND a.datname = current_database()
       AND l.objid::bigint = (hashtext($1)::bigint & 4294967295)`,
    [`${schema}:${name}`, `steem-bot/${name}`],
  );
  return row?.n ?? 0;
}
