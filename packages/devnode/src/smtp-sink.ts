import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';

import { simpleParser } from 'mailparser';
import { SMTPServer, type SMTPServerSession } from 'smtp-server';

/** How the sink misbehaves: `tempfail` 421, `reject` 550, `drop` the connection, `slow` replies. */
export type SmtpFault = 'none' | 'tempfail' | 'reject' | 'drop' | 'slow';

export interface SmtpSinkOptions {
  /** Port on 127.0.0.1; 0 (default) picks a free one. */
  port?: number;
  /** Where each message is stored as `<n>.eml`, with `index.json` beside them. */
  dir: string;
  fault?: SmtpFault;
  /** Delay of every reply in `slow` mode (default 2000 ms). */
  slowMs?: number;
}

/** One received message, as listed in index.json. */
export interface SinkMessage {
  n: number;
  file: string;
  messageId: string | undefined;
  from: string | undefined;
  to: string[];
  subject: string | undefined;
  text: string | undefined;
  headers: Record<string, string>;
  receivedAt: string;
}

/** A local SMTP server that keeps every message it accepts on disk, for tests and the demo. */
export class SmtpSink {
  readonly messages: SinkMessage[] = [];
  fault: SmtpFault;
  private readonly server: SMTPServer;

  private constructor(private readonly options: SmtpSinkOptions) {
    this.fault = options.fault ?? 'none';
    mkdirSync(options.dir, { recursive: true });
    this.server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      logger: false,
      size: 10 * 1024 * 1024,
      onMailFrom: (_address, session, callback) => void this.gate(session, callback),
      onData: (stream, _session, callback) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          this.store(Buffer.concat(chunks)).then(
            () => callback(),
            (err: Error) => callback(err),
          );
        });
      },
    });
    this.server.on('error', () => undefined); // a client's broken connection is not the sink's problem
  }

  static async start(options: SmtpSinkOptions): Promise<SmtpSink> {
    const sink = new SmtpSink(options);
    await new Promise<void>((resolve, reject) => {
      sink.server.server.once('error', reject);
      sink.server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
    });
    return sink;
  }

  get port(): number {
    return (this.server.server.address() as AddressInfo).port;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private async gate(session: SMTPServerSession, callback: (err?: Error | null) => void): Promise<void> {
    const fail = (code: number, text: string): void => callback(Object.assign(new Error(text), { responseCode: code }));
    switch (this.fault) {
      case 'tempfail':
        return fail(421, 'Service not available, try again later');
      case 'reject':
        return fail(550, 'Mailbox unavailable: rejected by the devnode sink');
      case 'drop':
        for (const conn of (this.server as unknown as { connections: Set<{ id: string; _socket: Socket }> }).connections) {
          if (conn.id === session.id) conn._socket.destroy();
        }
        return;
      case 'slow':
        await new Promise((r) => setTimeout(r, this.options.slowMs ?? 2000));
        return callback();
      default:
        return callback();
    }
  }

  private async store(raw: Buffer): Promise<void> {
    const n = this.messages.length + 1;
    const file = join(this.options.dir, `${String(n).padStart(6, '0')}.eml`);
    writeFileSync(file, raw);
    const mail = await simpleParser(raw);
    const to = [mail.to ?? []].flat().flatMap((a) => a.value.map((v) => v.address ?? ''));
    const headers: Record<string, string> = {};
    for (const line of mail.headerLines) headers[line.key] = line.line.slice(line.line.indexOf(':') + 1).trim();
    this.messages.push({
      n,
      file,
      messageId: mail.messageId,
      from: mail.from?.value[0]?.address,
      to,
      subject: mail.subject,
      text: mail.text,
      headers,
      receivedAt: new Date().toISOString(),
    });
    const index = join(this.options.dir, 'index.json');
    writeFileSync(`${index}.tmp`, JSON.stringify(this.messages, null, 2));
    renameSync(`${index}.tmp`, index);
  }
}
