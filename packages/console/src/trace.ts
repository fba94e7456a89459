import { join } from 'node:path';

import { searchStreams } from '@steem-bot/bus';

import { botNamesOnDisk, readOnly } from './stores';

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
 * Every record under `dataDir` that carries `tid`, in time order: events of every stream (the
 * op, email.*, transaction.*; events posted to the webhooks app are in its stream), the bots'
 * dead letters, the bot's handling of an op as its email's or action's idempotency key
 * `<bot>:<position>:<n>` shows it, the mailer's message and its attempts, the signer's action,
 * the clock's tick. Stores are opened read-only. Not covered: a bot's own tables (their schema is the bot's), webhook deliveries
 * (they are keyed by position, not TID), PostgreSQL stores.
 */
export function traceTid(dataDir: string, tid: string, limit = 500): TraceRecord[] {
  if (!isTid(tid)) throw new RangeError('not a TID: letters, digits, - and _ (6 to 64 characters)');
  const out: TraceRecord[] = [];
  for (const e of searchStreams(dataDir, `"tid":${JSON.stringify(tid)}`, limit))
    out.push({ at: iso(e.ts), app: e.app, kind: 'event', summary: `${e.name} at ${e.pos}: ${summarize(e.frame)}` });
  for (const bot of botNamesOnDisk(dataDir))
    readOnly(join(dataDir, `bot-${bot}.sqlite`), (db) => {
      for (const r of db
        .prepare('SELECT id, name, position, state, error, attempts, created_at FROM dead_letters WHERE tid = ?')
        .all(tid) as Array<{
        id: number;
        name: string;
        position: number;
        state: string;
        error: string;
        attempts: number;
        created_at: number;
      }>)
        out.push({
          at: iso(r.created_at),
          app: bot,
          kind: 'dead-letter',
          summary: `#${r.id} ${r.name} at ${r.position} ${r.state} after ${r.attempts} tries: ${r.error}`,
        });
    });
  readOnly(join(dataDir, 'mailer.sqlite'), (db) => {
    const rows = db
      .prepare('SELECT seq, id, client, idem_key, status, attempts, created_at, finished_at FROM messages WHERE tid = ?')
      .all(tid) as Array<{
      seq: number;
      id: string;
      client: string;
      idem_key: string | null;
      status: string;
      attempts: number;
      created_at: number;
      finished_at: number | null;
    }>;
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
      for (const a of db.prepare('SELECT at, outcome, error FROM attempts WHERE message_seq = ? ORDER BY rowid').all(m.seq) as Array<{
        at: number;
        outcome: string;
        error: string | null;
      }>)
        out.push({
          at: iso(a.at),
          app: 'mailer-worker',
          kind: 'email-attempt',
          summary: `message ${m.id}: ${a.outcome}${a.error ? ` (${a.error})` : ''}`,
        });
    }
  });
  readOnly(join(dataDir, 'signer.sqlite'), (db) => {
    for (const r of db
      .prepare('SELECT id, key, kind, account, state, trx_id, block_num, reason, created_at FROM actions WHERE tid = ?')
      .all(tid) as Array<{
      id: string;
      key: string;
      kind: string;
      account: string;
      state: string;
      trx_id: string | null;
      block_num: number | null;
      reason: string | null;
      created_at: number;
    }>) {
      const bot = handling(r.key, r.created_at, `${r.kind} action ${r.id}`);
      if (bot) out.push(bot);
      out.push({
        at: iso(r.created_at),
        app: 'signer',
        kind: 'action',
        summary: `${r.kind} by ${r.account}: ${r.state}${r.trx_id ? ` trx ${r.trx_id}` : ''}${r.block_num ? ` in block ${r.block_num}` : ''}${r.reason ? ` (${r.reason})` : ''}`,
      });
    }
  });
  readOnly(join(dataDir, 'clock.sqlite'), (db) => {
    for (const r of db.prepare('SELECT schedule_id, tick_time, owner, state, claimed_at FROM ticks WHERE tid = ?').all(tid) as Array<{
      schedule_id: string;
      tick_time: number;
      owner: string;
      state: string;
      claimed_at: number;
    }>)
      out.push({
        at: iso(r.claimed_at),
        app: 'clock',
        kind: 'tick',
        summary: `${r.schedule_id} tick ${iso(r.tick_time)} by ${r.owner}: ${r.state}`,
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
