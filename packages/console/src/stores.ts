import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

import { openDatabase } from '@steem-bot/store';

import { histogramColumns, histogramOf, MAIL_LATENCY_LE, type StoredHistogram, WEBHOOK_DURATION_LE } from './histogram';

// The apps below expose no status call yet, so their state is read from their SQLite files,
// always read-only (`readonly: true`, `fileMustExist`): the console never writes another app's store.

/** A bot's dead letter as the console shows it. */
export interface DeadLetterView {
  id: number;
  name: string;
  position: number;
  tid: string;
  error: string;
  attempts: number;
  state: string;
  created_at: string;
}

/** Run `read` on a store file opened read-only; undefined when the file does not exist (yet). */
export function readOnly<T>(file: string, read: (db: ReturnType<typeof openDatabase>) => T): T | undefined {
  if (!existsSync(file)) return undefined;
  const db = openDatabase(file, { readonly: true, busyTimeoutMs: 2_000 });
  try {
    return read(db);
  } finally {
    db.close();
  }
}

/** The bots that have a store under `dataDir` (`bot-<name>.sqlite`). */
export function botNamesOnDisk(dataDir: string): string[] {
  if (!existsSync(dataDir)) return [];
  return readdirSync(dataDir)
    .map((f) => /^bot-([a-z][a-z0-9-]*)\.sqlite$/.exec(f)?.[1])
    .filter((n): n is string => n !== undefined);
}

/** A bot's checkpoint and its dead letters not yet replayed (newest 100). */
export function readBot(
  dataDir: string,
  name: string,
): { checkpoint: number | null; dead: DeadLetterView[]; dead_total: number; dead_ever: number } | undefined {
  return readOnly(join(dataDir, `bot-${name}.sqlite`), (db) => {
    const cp = db.prepare('SELECT position FROM checkpoint WHERE id = 1').get() as { position: number } | undefined;
    const total = db.prepare("SELECT COUNT(*) AS n FROM dead_letters WHERE state IN ('dead', 'replay')").get() as { n: number };
    // Ids are AUTOINCREMENT: the highest ever given counts every op dead-lettered, discarded ones too.
    const ever = db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'dead_letters'").get() as { seq: number } | undefined;
    const rows = db
      .prepare(
        "SELECT id, name, position, tid, error, attempts, state, created_at FROM dead_letters WHERE state IN ('dead', 'replay') ORDER BY id DESC LIMIT 100",
      )
      .all() as Array<Omit<DeadLetterView, 'created_at'> & { created_at: number }>;
    return {
      checkpoint: cp?.position ?? null,
      dead_total: total.n,
      dead_ever: ever?.seq ?? 0,
      dead: rows.map((r) => ({ ...r, created_at: new Date(r.created_at).toISOString() })),
    };
  });
}

/** A mail message as the console shows it (never its body or addresses). */
export interface MessageView {
  id: string;
  client: string;
  status: string;
  attempts: number;
  tid: string;
  last_error: string | null;
  next_attempt_at: string;
}

export interface MailerView {
  counts: Record<string, number>;
  oldest_due: string | null;
  next_due: string | null;
  /** Dead messages (Retry) and pending ones (Cancel), newest 100 of each. */
  dead: MessageView[];
  pending: MessageView[];
  /** Sent messages kept: from queued (or due, if sent later on purpose) to sent. */
  send_latency: StoredHistogram;
}

const iso = (ms: number | null | undefined): string | null => (ms === null || ms === undefined ? null : new Date(ms).toISOString());

/** How long a computed send latency histogram is reused. */
const LATENCY_TTL_MS = 15_000;
const latencies = new Map<string, { at: number; h: StoredHistogram }>();

export function readMailer(file: string, now: number): MailerView | undefined {
  return readOnly(file, (db) => {
    const counts = Object.fromEntries(
      (db.prepare('SELECT status, COUNT(*) AS n FROM messages GROUP BY status').all() as Array<{ status: string; n: number }>).map((r) => [
        r.status,
        r.n,
      ]),
    );
    const due = "status IN ('scheduled', 'retrying')";
    const oldest = db.prepare(`SELECT MIN(next_attempt_at) AS t FROM messages WHERE ${due} AND next_attempt_at <= ?`).get(now) as {
      t: number | null;
    };
    const next = db.prepare(`SELECT MIN(next_attempt_at) AS t FROM messages WHERE ${due}`).get() as { t: number | null };
    const list = (where: string): MessageView[] =>
      (
        db
          .prepare(
            `SELECT id, client, status, attempts, tid, last_error, next_attempt_at FROM messages WHERE ${where} ORDER BY seq DESC LIMIT 100`,
          )
          .all() as Array<Omit<MessageView, 'next_attempt_at'> & { next_attempt_at: number }>
      ).map((m) => ({ ...m, next_attempt_at: iso(m.next_attempt_at) as string }));
    // A scan of every sent message kept: done at most every LATENCY_TTL_MS (the page collects every 2 s).
    let latency = latencies.get(file);
    if (!latency || now - latency.at >= LATENCY_TTL_MS || now < latency.at) {
      const row = db
        .prepare(`SELECT ${histogramColumns('(finished_at - MAX(created_at, send_at))', MAIL_LATENCY_LE)} FROM messages WHERE status = 'sent'`)
        .get() as Record<string, number | null>;
      latencies.set(file, (latency = { at: now, h: histogramOf(row, MAIL_LATENCY_LE) }));
    }
    return {
      counts,
      oldest_due: iso(oldest.t),
      next_due: iso(next.t),
      dead: list("status = 'dead'"),
      pending: list(due),
      send_latency: latency.h,
    };
  });
}

export interface SignerView {
  /** account -> state -> count */
  actions: Record<string, Record<string, number>>;
  recent: Array<{
    id: string;
    key: string;
    kind: string;
    account: string;
    state: string;
    trx_id: string | null;
    block_num: number | null;
    reason: string | null;
  }>;
  /** Failed actions, newest 100: the reason, and whether the signer allows a Retry. */
  failed: Array<{
    id: string;
    key: string;
    kind: string;
    account: string;
    reason: string | null;
    retryable: boolean;
    tid: string;
    failed_at: string;
  }>;
}

export function readSigner(file: string): SignerView | undefined {
  return readOnly(file, (db) => {
    const actions: SignerView['actions'] = {};
    for (const r of db.prepare('SELECT account, state, COUNT(*) AS n FROM actions GROUP BY account, state').all() as Array<{
      account: string;
      state: string;
      n: number;
    }>)
      (actions[r.account] ??= {})[r.state] = r.n;
    const recent = db
      .prepare('SELECT id, key, kind, account, state, trx_id, block_num, reason FROM actions ORDER BY seq DESC LIMIT 20')
      .all() as SignerView['recent'];
    const failed = (
      db
        .prepare(
          "SELECT id, key, kind, account, reason, retryable, tid, updated_at FROM actions WHERE state = 'failed' ORDER BY seq DESC LIMIT 100",
        )
        .all() as Array<Omit<SignerView['failed'][number], 'retryable' | 'failed_at'> & { retryable: number | null; updated_at: number }>
    ).map(({ updated_at, retryable, ...a }) => ({ ...a, retryable: retryable === 1, failed_at: new Date(updated_at).toISOString() }));
    return { actions, recent, failed };
  });
}

export interface EndpointView {
  client: string;
  id: string;
  url: string;
  disabled: boolean;
  disabled_reason: string | null;
  deliveries: Record<string, number>;
  /** Failed tries of the event it is on (0: flowing), since when it fails. */
  attempts: number;
  failing_since: string | null;
  /** The newest tries, newest first (status null: no answer). */
  last: Array<{ at: string; type: string; position: number; status: number | null; error: string | null; duration_ms: number }>;
  /** Duration of the tries kept (the newest 1,000 per endpoint). */
  duration: StoredHistogram;
}

export function readWebhooks(file: string): EndpointView[] | undefined {
  return readOnly(file, (db) => {
    const rows = db
      .prepare('SELECT seq, client, id, url, disabled, disabled_reason, attempts, failing_since FROM endpoints ORDER BY seq')
      .all() as Array<{
      seq: number;
      client: string;
      id: string;
      url: string;
      disabled: number;
      disabled_reason: string | null;
      attempts: number;
      failing_since: number | null;
    }>;
    const last = db.prepare(
      'SELECT at, type, position, status, error, duration_ms FROM deliveries WHERE endpoint_seq = ? ORDER BY seq DESC LIMIT 5',
    );
    const duration = db.prepare(`SELECT ${histogramColumns('duration_ms', WEBHOOK_DURATION_LE)} FROM deliveries WHERE endpoint_seq = ?`);
    const outcomes = db
      .prepare(
        "SELECT endpoint_seq, CASE WHEN status BETWEEN 200 AND 299 THEN 'ok' ELSE 'failed' END AS outcome, COUNT(*) AS n FROM deliveries GROUP BY endpoint_seq, outcome",
      )
      .all() as Array<{ endpoint_seq: number; outcome: string; n: number }>;
    return rows.map((r) => ({
      client: r.client,
      id: r.id,
      // Endpoint URLs may carry credentials in their query; show scheme, host and path only.
      url: safeUrl(r.url),
      disabled: r.disabled === 1,
      disabled_reason: r.disabled_reason,
      deliveries: Object.fromEntries(outcomes.filter((o) => o.endpoint_seq === r.seq).map((o) => [o.outcome, o.n])),
      attempts: r.attempts,
      failing_since: iso(r.failing_since),
      last: (last.all(r.seq) as Array<EndpointView['last'][number] & { at: number }>).map((d) => ({ ...d, at: iso(d.at) as string })),
      duration: histogramOf(duration.get(r.seq) as Record<string, number | null>, WEBHOOK_DURATION_LE),
    }));
  });
}

function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}

export interface TicksView {
  /** schedule -> state (claimed, acked, expired, skipped, ...) -> ticks kept (CLOCK_KEEP_DAYS) */
  counts: Record<string, Record<string, number>>;
  /** The newest ten ticks: which clock fired them and whether the task was acknowledged. */
  recent: Array<{ schedule: string; tick: string; owner: string; state: string; attempts: number; error: string | null }>;
}

/** The clock's record of ticks (its SQLite store; a clock on PostgreSQL is not read). */
export function readTicks(file: string): TicksView | undefined {
  return readOnly(file, (db) => {
    const counts: TicksView['counts'] = {};
    for (const r of db.prepare('SELECT schedule_id, state, COUNT(*) AS n FROM ticks GROUP BY schedule_id, state').all() as Array<{
      schedule_id: string;
      state: string;
      n: number;
    }>)
      (counts[r.schedule_id] ??= {})[r.state] = r.n;
    const recent = (
      db
        .prepare('SELECT schedule_id, tick_time, owner, state, attempts, error FROM ticks ORDER BY tick_time DESC LIMIT 10')
        .all() as Array<{
        schedule_id: string;
        tick_time: number;
        owner: string;
        state: string;
        attempts: number;
        error: string | null;
      }>
    ).map((r) => ({
      schedule: r.schedule_id,
      tick: new Date(r.tick_time).toISOString(),
      owner: r.owner,
      state: r.state,
      attempts: r.attempts,
      error: r.error,
    }));
    return { counts, recent };
  });
}
