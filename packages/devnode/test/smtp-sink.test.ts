import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { createTransport } from 'nodemailer';

import { SmtpSink } from '../src';

let dir: string;
let sink: SmtpSink;
beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sbs-'));
  sink = await SmtpSink.start({ dir, slowMs: 400 });
});
afterEach(async () => {
  await sink.stop();
  rmSync(dir, { recursive: true, force: true });
});

const send = (subject = 'Hello'): Promise<unknown> =>
  createTransport({
    host: '127.0.0.1',
    port: sink.port,
    secure: false,
    ignoreTLS: true,
    connectionTimeout: 2000,
    greetingTimeout: 2000,
    socketTimeout: 2000,
  }).sendMail({
    from: 'bot@example.org',
    to: ['alice@example.org', 'bob@example.org'],
    subject,
    text: 'A new post by @alice',
    messageId: '<fixed-123@steem-bot>',
    headers: { 'X-Steem-Tid': '0123456789abcdef' },
  });

describe('SMTP sink', () => {
  test('keeps every accepted message as .eml with a parsed JSON index', async () => {
    await send('First');
    await send('Second');
    expect(sink.messages.map((m) => m.subject)).toEqual(['First', 'Second']);
    const first = sink.messages[0];
    expect(first).toMatchObject({
      messageId: '<fixed-123@steem-bot>',
      from: 'bot@example.org',
      to: ['alice@example.org', 'bob@example.org'],
      text: 'A new post by @alice\n',
    });
    expect(first?.headers['x-steem-tid']).toBe('0123456789abcdef');
    expect(readFileSync(first?.file as string, 'utf8')).toMatch(/Subject: First/);
    expect(JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8'))).toHaveLength(2);
  });

  test('fault modes: 421 temporary failure, 550 rejection, dropped connection, slow replies', async () => {
    sink.fault = 'tempfail';
    await expect(send()).rejects.toMatchObject({ responseCode: 421 });
    sink.fault = 'reject';
    await expect(send()).rejects.toMatchObject({ responseCode: 550 });
    sink.fault = 'drop';
    await expect(send()).rejects.toThrow();
    sink.fault = 'slow';
    const started = Date.now();
    await send();
    expect(Date.now() - started).toBeGreaterThanOrEqual(390);
    expect(sink.messages).toHaveLength(1);
    expect(existsSync(join(dir, 'index.json'))).toBe(true);
  });
});
