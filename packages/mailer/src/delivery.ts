import { closeSync, fsyncSync, lstatSync, mkdirSync, openSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { AppError, type Config } from '@steem-bot/config';
import nodemailer, { type SendMailOptions, type TransportOptions } from 'nodemailer';

import { type Message, syncDirectory } from './store';

/** How a message leaves: SMTP (pooled), or .eml files in the outbox when no SMTP_URL is set. */
export interface Delivery {
  readonly description: string;
  send(message: Message, from: string): Promise<void>;
  close(): void;
}

/** A delivery failure: temporary ones are retried, permanent ones make the message dead at once. */
export class DeliveryError extends Error {
  /** What the operator's log shows (server replies, addresses); `message` is the short reason clients see. */
  readonly detail: string;

  constructor(
    reason: string,
    readonly permanent: boolean,
    /** The server was not reached at all (connection refused, timeout): counts towards the circuit breaker. */
    readonly unreachable: boolean,
    detail?: string,
  ) {
    super(reason);
    this.detail = detail ?? reason;
  }
}

type SmtpError = Error & { responseCode?: number; code?: string; response?: string };

/**
 * 5xx replies are permanent; 4xx replies, connection errors and timeouts are temporary. The
 * reason clients see is short (the reply code); the server's words stay in the operator's log.
 */
export function classify(err: unknown): DeliveryError {
  const e = err as SmtpError;
  const text = e.response ?? e.message ?? String(err);
  if (typeof e.responseCode === 'number') {
    const code = e.responseCode;
    return new DeliveryError(`${code} from the mail server`, code >= 500, false, `${code} ${text}`);
  }
  if (e.code === 'EENVELOPE' || e.code === 'EMESSAGE')
    return new DeliveryError(`message refused (${e.code})`, true, false, `${e.code}: ${text}`);
  return new DeliveryError(`mail server unreachable (${e.code ?? 'error'})`, false, true, `${e.code ?? 'error'}: ${text}`);
}

function mailOptions(message: Message, from: string): SendMailOptions {
  const r = message.request;
  return {
    from,
    to: r.to,
    ...(r.cc ? { cc: r.cc } : {}),
    ...(r.bcc ? { bcc: r.bcc } : {}),
    subject: r.subject,
    ...(r.text !== undefined ? { text: r.text } : {}),
    ...(r.html !== undefined ? { html: r.html } : {}),
    headers: { ...r.headers, 'X-Steem-Bot-Message': message.id },
    // Stable per message, so a resend after a crash can be recognised by the receiver.
    messageId: message.message_id,
    date: new Date(message.created_at),
    disableFileAccess: true,
    disableUrlAccess: true,
  };
}

export function createDelivery(config: Config<'mailer'>): Delivery {
  if (config.SMTP_URL === '') return outbox(config.MAILER_OUTBOX);
  const transport = nodemailer.createTransport({
    url: config.SMTP_URL,
    pool: true,
    maxConnections: 5,
    connectionTimeout: config.MAILER_SMTP_TIMEOUT_MS,
    greetingTimeout: config.MAILER_SMTP_TIMEOUT_MS,
    socketTimeout: config.MAILER_SMTP_TIMEOUT_MS,
    disableFileAccess: true,
    disableUrlAccess: true,
  } as TransportOptions);
  const url = new URL(config.SMTP_URL);
  return {
    description: `SMTP ${url.protocol}//${url.host}`,
    async send(message, from) {
      try {
        await transport.sendMail(mailOptions(message, from));
      } catch (err) {
        throw classify(err);
      }
    },
    close: () => transport.close(),
  };
}

/**
 * MAILER_OUTBOX holds whole messages: create it 0700 and refuse one that others can read or that
 * is not this user's own directory (a configuration error: exit 78, no restart loop).
 */
export function checkOutbox(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const stat = lstatSync(dir);
  const uid = process.getuid?.();
  const got = !stat.isDirectory()
    ? `${stat.isSymbolicLink() ? 'a symbolic link' : 'a file'} at ${dir}`
    : uid !== undefined && stat.uid !== uid
      ? `a directory owned by uid ${stat.uid} (${dir})`
      : (stat.mode & 0o077) !== 0
        ? `mode ${(stat.mode & 0o777).toString(8)} (${dir}); chmod 700 it`
        : undefined;
  if (got === undefined) return;
  const expected = 'a directory of this user that group and others cannot read (mode 700)';
  throw new AppError('ERR_CONFIG_INVALID', `invalid configuration:\n  MAILER_OUTBOX: expected ${expected}; got ${got}`, {
    data: [{ variable: 'MAILER_OUTBOX', expected, got }],
  });
}

/**
 * The embedded default: each message as `<id>.eml` in `dir`, written, fsynced, renamed, and the
 * directory fsynced, before the message counts as sent (it survives a power loss).
 */
function outbox(dir: string): Delivery {
  checkOutbox(dir);
  const transport = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'unix' });
  return {
    description: `outbox ${dir} (no SMTP_URL: nothing is really sent)`,
    async send(message, from) {
      const info = (await transport.sendMail(mailOptions(message, from))) as { message: Buffer };
      const file = join(dir, `${message.id}.eml`);
      const fd = openSync(`${file}.tmp`, 'w', 0o600);
      try {
        writeFileSync(fd, info.message);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(`${file}.tmp`, file);
      syncDirectory(dir);
    },
    close: () => undefined,
  };
}
