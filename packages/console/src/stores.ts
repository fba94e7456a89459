import { histogramColumns, histogramOf, MAIL_LATENCY_LE, type StoredHistogram, WEBHOOK_DURATION_LE } from './histogram';
import type { StoreReaders } from './readers';

// The apps below expose no status call yet, so their state is read from their stores (SQLite
// files or PostgreSQL tables, see readers.ts), always read-only: the console never writes another app's store.

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

/** A bot's checkpoint and its dead letters not yet replayed (newest 100). */
export function readBot(
  stores: StoreReaders,
  name: string,
): Promise<{ checkpoint: number | null; dead: DeadLetterView[]; dead_total: number; dead_ever: number } | undefined> {
  return stores.read(`bot:${name}`, async (r) => {
    // One row: SQLite's has id 1, PostgreSQL's the bot's name.
    const cp = await r.get<{ position: number }>(`SELECT position FROM ${r.t('checkpoint')}`);
    const total = await r.get<{ n: number }>(`SELECT COUNT(*) AS n FROM ${r.t('dead_letters')} WHERE state IN ('dead', 'replay')`);
    // SQLite ids are AUTOINCREMENT: the highest ever given counts every op dead-lettered, discarded
    // ones too. PostgreSQL's ids are shared by every bot: there the letters kept are counted
    // (replayed ones too, discarded ones no longer).
    const ever =
      r.dialect === 'sqlite'
        ? (await r.get<{ n: number }>("SELECT seq AS n FROM sqlite_sequence WHERE name = 'dead_letters'"))?.n
        : (await r.get<{ n: number }>(`SELECT COUNT(*) AS n FROM ${r.t('dead_letters')}`))?.n;
    const rows = await r.all<Omit<DeadLetterView, 'created_at'> & { created_at: number }>(
      `SELECT id, name, position, tid, error, attempts, state, created_at FROM ${r.t('dead_letters')} WHERE state IN ('dead', 'replay') ORDER BY id DESC LIMIT 100`,
    );
    return {
      checkpoint: cp?.position ?? null,
      dead_total: total?.n ?? 0,
      dead_ever: ever ?? 0,
      dead: rows.map((d) => ({ ...d, created_at: new Date(d.created_at).toISOString() })),
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

export function readMailer(stores: StoreReaders, now: number): Promise<MailerView | undefined> {
  return stores.read('mailer', async (r) => {
    const messages = r.t('messages');
    const counts = Object.fromEntries(
      (await r.all<{ status: string; n: number }>(`SELECT status, COUNT(*) AS n FROM ${messages} GROUP BY status`)).map((c) => [
        c.status,
        c.n,
      ]),
    );
    const due = "status IN ('scheduled', 'retrying')";
    const oldest = await r.get<{ t: number | null }>(
      `SELECT MIN(next_attempt_at) AS t FROM ${messages} WHERE ${due} AND next_attempt_at <= ?`,
      [now],
    );
    const next = await r.get<{ t: number | null }>(`SELECT MIN(next_attempt_at) AS t FROM ${messages} WHERE ${due}`);
    const list = async (where: string): Promise<MessageView[]> =>
      (
        await r.all<Omit<MessageView, 'next_attempt_at'> & { next_attempt_at: number }>(
          `SELECT id, client, status, attempts, tid, last_error, next_attempt_at FROM ${messages} WHERE ${where} ORDER BY seq DESC LIMIT 100`,
        )
      ).map((m) => ({ ...m, next_attempt_at: iso(m.next_attempt_at) as string }));
    // A scan of every sent message kept: done at most every LATENCY_TTL_MS (the page collects every 2 s).
    const key = stores.key('mailer');
    let latency = latencies.get(key);
    if (!latency || now - latency.at >= LATENCY_TTL_MS || now < latency.at) {
      const row = await r.get<Record<string, number | null>>(
        `SELECT ${histogramColumns(`(finished_at - ${r.greatest('created_at', 'send_at')})`, MAIL_LATENCY_LE)} FROM ${messages} WHERE status = 'sent'`,
      );
      latencies.set(key, (latency = { at: now, h: histogramOf(row, MAIL_LATENCY_LE) }));
    }
    return {
      counts,
      oldest_due: iso(oldest?.t),
      next_due: iso(next?.t),
      dead: await list("status = 'dead'"),
      pending: await list(due),
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

export function readSigner(stores: StoreReaders): Promise<SignerView | undefined> {
  return stores.read('signer', async (r) => {
    const table = r.t('actions');
    const actions: SignerView['actions'] = {};
    for (const c of await r.all<{ account: string; state: string; n: number }>(
      `SELECT account, state, COUNT(*) AS n FROM ${table} GROUP BY account, state`,
    ))
      (actions[c.account] ??= {})[c.state] = c.n;
    const recent = await r.all<SignerView['recent'][number]>(
      `SELECT id, key, kind, account, state, trx_id, block_num, reason FROM ${table} ORDER BY seq DESC LIMIT 20`,
    );
    const failed = (
      await r.all<
        Omit<SignerView['failed'][number], 'retryable' | 'failed_at'> & { retryable: number | boolean | null; updated_at: number }
      >(
        `SELECT id, key, kind, account, reason, retryable, tid, updated_at FROM ${table} WHERE state = 'failed' ORDER BY seq DESC LIMIT 100`,
      )
    ).map(({ updated_at, retryable, ...a }) => ({
      ...a,
      // An INTEGER 0/1 in SQLite, a BOOLEAN in PostgreSQL.
      retryable: retryable === 1 || retryable === true,
      failed_at: new Date(updated_at).toISOString(),
    }));
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

export function readWebhooks(stores: StoreReaders): Promise<EndpointView[] | undefined> {
  return stores.read('webhooks', async (r) => {
    const deliveries = r.t('deliveries');
    const rows = await r.all<{
      seq: number;
      client: string;
      id: string;
      url: string;
      disabled: number;
      disabled_reason: string | null;
      attempts: number;
      failing_since: number | null;
    }>(`SELECT seq, client, id, url, disabled, disabled_reason, attempts, failing_since FROM ${r.t('endpoints')} ORDER BY seq`);
    const outcomes = await r.all<{ endpoint_seq: number; outcome: string; n: number }>(
      `SELECT endpoint_seq, CASE WHEN status BETWEEN 200 AND 299 THEN 'ok' ELSE 'failed' END AS outcome, COUNT(*) AS n FROM ${deliveries} GROUP BY endpoint_seq, outcome`,
    );
    const out: EndpointView[] = [];
    for (const e of rows) {
      const last = await r.all<EndpointView['last'][number] & { at: number }>(
        `SELECT at, type, position, status, error, duration_ms FROM ${deliveries} WHERE endpoint_seq = ? ORDER BY seq DESC LIMIT 5`,
        [e.seq],
      );
      const duration = await r.get<Record<string, number | null>>(
        `SELECT ${histogramColumns('duration_ms', WEBHOOK_DURATION_LE)} FROM ${deliveries} WHERE endpoint_seq = ?`,
        [e.seq],
      );
      out.push({
        client: e.client,
        id: e.id,
        // Endpoint URLs may carry credentials in their query; show scheme, host and path only.
        url: safeUrl(e.url),
        disabled: e.disabled === 1,
        disabled_reason: e.disabled_reason,
        deliveries: Object.fromEntries(outcomes.filter((o) => o.endpoint_seq === e.seq).map((o) => [o.outcome, o.n])),
        attempts: e.attempts,
        failing_since: iso(e.failing_since),
        last: last.map((d) => ({ ...d, at: iso(d.at) as string })),
        duration: histogramOf(duration, WEBHOOK_DURATION_LE),
      });
    }
    return out;
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

/** The clock's record of ticks. */
export function readTicks(stores: StoreReaders): Promise<TicksView | undefined> {
  return stores.read('clock', async (r) => {
    const ticks = r.t('ticks');
    const counts: TicksView['counts'] = {};
    for (const c of await r.all<{ schedule_id: string; state: string; n: number }>(
      `SELECT schedule_id, state, COUNT(*) AS n FROM ${ticks} GROUP BY schedule_id, state`,
    ))
      (counts[c.schedule_id] ??= {})[c.state] = c.n;
    const recent = (
      await r.all<{ schedule_id: string; tick_time: number; owner: string; state: string; attempts: number; error: string | null }>(
        `SELECT schedule_id, tick_time, owner, state, attempts, error FROM ${ticks} ORDER BY tick_time DESC LIMIT 10`,
      )
    ).map((t) => ({
      schedule: t.schedule_id,
      tick: new Date(t.tick_time).toISOString(),
      owner: t.owner,
      state: t.state,
      attempts: t.attempts,
      error: t.error,
    }));
    return { counts, recent };
  });
}
