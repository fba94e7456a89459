import { searchStreams } from '@steem-bot/bus';

import type { StoreReaders } from './readers';

/** One stored record a TID touches. */
export interface TraceRecord {
  /** ISO time of the record (an event's publish time, a row's creation or last change). */
  at: string;
  /** The app whose store holds it. */
  app: string;
  kind: 'event' | 'bot' | 'dead-letter' | 'email' | 'email-attempt' | 'action' | 'tick';
  summary: string;
}

const TID = /^[A-Za-z0-9_-]{6,64}$/;

/** Whether `tid` looks like a TID (what the console accepts before it searches). */
export const isTid = (tid: string): boolean => TID.test(tid);

const iso = (ms: number): string => new Date(ms).toISOString();

// A bot's task carries the idempotency key `<bot>:<op position>:<n>` (its n-th email or chain action of that op).
const BOT_KEY = /^([a-z][a-z0-9-]{0,31}):(\d+):(\d+)$/;

/** The bot's handling of an op, as the task it sent shows it (accepted at `at`); undefined for other keys. */
function handling(key: string | null, at: number, what: string): TraceRecord | undefined {
  const m = key === null ? null : BOT_KEY.exec(key);
  if (!m) return undefined;
  return { at: iso(at), app: m[1] as string, kind: 'bot', summary: `handled the op at ${m[2]}: sent ${what} #${m[3]} (key ${key})` };
}

/**
 * Every record that carries `tid`, in time order: events of every stream under the stores'
 * DATA_DIR (the op, email.*, transaction.*; events posted to the webhooks app are in its stream),
 * the bots' dead letters, the bot's handling of an op as its email's or action's idempotency key
 * `<bot>:<position>:<n>` shows it, the mailer's message and its attempts, the signer's action,
 * the clock's tick; from SQLite files or PostgreSQL (STORE), read-only. Not covered: a bot's own
 * state (its keys are the bot's), webhook deliveries (they are keyed by position, not TID),
 * streams on RabbitMQ.
 */
export async function traceTid(stores: StoreReaders, tid: string, limit = 500): Promise<TraceRecord[]> {
  if (!isTid(tid)) throw new RangeError('not a TID: letters, digits, - and _ (6 to 64 characters)');
  const out: TraceRecord[] = [];
  for (const e of searchStreams(stores.dataDir, `"tid":${JSON.stringify(tid)}`, limit))
    out.push({ at: iso(e.ts), app: e.app, kind: 'event', summary: `${e.name} at ${e.pos}: ${summarize(e.frame)}` });
  for (const bot of await stores.botNames())
    await stores.read(`bot:${bot}`, async (r) => {
      for (const d of await r.all<{
        id: number;
        name: string;
        position: number;
        state: string;
        error: string;
        attempts: number;
        created_at: number;
      }>(`SELECT id, name, position, state, error, attempts, created_at FROM ${r.t('dead_letters')} WHERE tid = ?`, [tid]))
        out.push({
          at: iso(d.created_at),
          app: bot,
          kind: 'dead-letter',
          summary: `#${d.id} ${d.name} at ${d.position} ${d.state} after ${d.attempts} tries: ${d.error}`,
        });
    });
  await stores.read('mailer', async (r) => {
    const rows = await r.all<{
      seq: number;
      id: string;
      client: string;
      idem_key: string | null;
      status: string;
      attempts: number;
      created_at: number;
      finished_at: number | null;
    }>(`SELECT seq, id, client, idem_key, status, attempts, created_at, finished_at FROM ${r.t('messages')} WHERE tid = ?`, [tid]);
    for (const m of rows) {
      const bot = handling(m.idem_key, m.created_at, `email ${m.id}`);
      if (bot) out.push(bot);
      out.push({
        at: iso(m.created_at),
        app: 'mailer',
        kind: 'email',
        // A bot's email carries the key `<bot>:<op position>:<n>`: the bot's handling of the op.
        summary: `message ${m.id} from ${m.client}${m.idem_key ? ` (key ${m.idem_key})` : ''}: now ${m.status}, ${m.attempts} attempts`,
      });
      // In the order they were logged: SQLite's rowid, PostgreSQL's id.
      for (const a of await r.all<{ at: number; outcome: string; error: string | null }>(
        `SELECT at, outcome, error FROM ${r.t('attempts')} WHERE message_seq = ? ORDER BY ${r.dialect === 'sqlite' ? 'rowid' : 'id'}`,
        [m.seq],
      ))
        out.push({
          at: iso(a.at),
          app: 'mailer-worker',
          kind: 'email-attempt',
          summary: `message ${m.id}: ${a.outcome}${a.error ? ` (${a.error})` : ''}`,
        });
    }
  });
  await stores.read('signer', async (r) => {
    for (const a of await r.all<{
      id: string;
      key: string;
      kind: string;
      account: string;
      state: string;
      trx_id: string | null;
      block_num: number | null;
      reason: string | null;
      created_at: number;
    }>(`SELECT id, key, kind, account, state, trx_id, block_num, reason, created_at FROM ${r.t('actions')} WHERE tid = ?`, [tid])) {
      const bot = handling(a.key, a.created_at, `${a.kind} action ${a.id}`);
      if (bot) out.push(bot);
      out.push({
        at: iso(a.created_at),
        app: 'signer',
        kind: 'action',
        summary: `${a.kind} by ${a.account}: ${a.state}${a.trx_id ? ` trx ${a.trx_id}` : ''}${a.block_num ? ` in block ${a.block_num}` : ''}${a.reason ? ` (${a.reason})` : ''}`,
      });
    }
  });
  await stores.read('clock', async (r) => {
    for (const t of await r.all<{ schedule_id: string; tick_time: number; owner: string; state: string; claimed_at: number }>(
      `SELECT schedule_id, tick_time, owner, state, claimed_at FROM ${r.t('ticks')} WHERE tid = ?`,
      [tid],
    ))
      out.push({
        at: iso(t.claimed_at),
        app: 'clock',
        kind: 'tick',
        summary: `${t.schedule_id} tick ${iso(t.tick_time)} by ${t.owner}: ${t.state}`,
      });
  });
  return out.sort((a, b) => a.at.localeCompare(b.at)).slice(0, limit);
}

/** A short, secret-free line of an event frame: its data's scalar fields, truncated. */
function summarize(frame: Buffer): string {
  try {
    const { data } = JSON.parse(frame.toString('utf8').replace(/\f$/, '')) as { data: Record<string, unknown> };
    const parts = Object.entries(data)
      .filter(([k, v]) => !k.startsWith('$') && (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean'))
      .filter(([k]) => !/key|token|secret|password|memo|body/i.test(k))
      .map(([k, v]) => `${k}=${String(v).slice(0, 60)}`);
    return parts.join(' ').slice(0, 300);
  } catch {
    return '(unreadable frame)';
  }
}
