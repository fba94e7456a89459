import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';

import { AppError, type ConfigProblem, createLogger, isSecretName, loadConfig, redactSecrets, serializeError } from '../src';

// Secrets must never reach a log line, an error message or the bus, wherever they sit.
const SECRETS = ['hunter2', 's3cret-key', '5JwifwifwifWIF', 'tok_abc123', 'pa55word'];

function capture(): { lines: string[]; stream: Writable } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _e, cb) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      cb();
    },
  });
  return { lines, stream };
}

function expectNoSecret(text: string): void {
  for (const s of SECRETS) expect(text).not.toContain(s);
}

describe('secret redaction', () => {
  test('secret-named keys are redacted at any depth; idempotency keys and ordinary fields stay readable', () => {
    const deep = { a: { b: { c: { d: { apiKey: 's3cret-key', STEEM_POSTING_KEY: '5JwifwifwifWIF', idempotency_key: 'bot:1:0' } } } } };
    const out = redactSecrets({ deep, list: [{ accessToken: 'tok_abc123' }], pass: 'pa55word', author: 'alice' });
    expectNoSecret(JSON.stringify(out));
    expect(out.deep.a.b.c.d.idempotency_key).toBe('bot:1:0');
    expect(out.author).toBe('alice');
    expect(deep.a.b.c.d.apiKey).toBe('s3cret-key'); // the logged object itself is not changed
    for (const name of ['SMTP_PASSWORD', 'webhookSecret', 'Authorization', 'pass', 'active_key', 'token'])
      expect(isSecretName(name)).toBe(true);
    for (const name of ['key', 'idempotency_key', 'author', 'permlink', 'passage']) expect(isSecretName(name)).toBe(false);
  });

  test('log lines never carry a secret: nested keys, URL credentials in messages, objects, errors and child bindings', () => {
    for (const format of ['json', 'pretty'] as const) {
      const { lines, stream } = capture();
      const log = createLogger({ app: 'mailer', format, destination: stream }).child({ smtp: 'smtp://mailer:hunter2@mail.example' });
      log.info(
        { config: { smtp: { url: 'smtps://u:pa55word@host:465' } }, request: { headers: { authorization: 'Bearer tok_abc123' } } },
        'sending',
      );
      log.error({ err: new Error('connect to smtp://mailer:hunter2@mail.example failed') }, 'delivery failed');
      log.warn('retrying smtp://mailer:hunter2@mail.example in 5 s');
      const deep = { l1: { l2: { l3: { l4: { l5: { privateKey: 's3cret-key' } } } } } };
      log.info(deep, 'deep');
      const all = lines.join('\n');
      expectNoSecret(all);
      expect(all).toContain('smtp://***@mail.example');
      expect(all).toContain('delivery failed');
      expect(all).toContain('Error'); // the error keeps its class name
    }
  });

  test('errors that cross the bus carry no URL credentials', () => {
    const wire = serializeError(new Error('cannot reach smtp://mailer:hunter2@mail.example'));
    expect(wire.message).toBe('cannot reach smtp://***@mail.example');
    const app = new AppError('ERR_BUS_HANDLER_FAILED', 'via https://u:pa55word@node.example', { data: { token: 'tok_abc123' } });
    expectNoSecret(JSON.stringify(serializeError(app)));
  });
});

describe('configuration and secrets', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'sbs-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const base = (): Record<string, string> => ({ SOCKET_DIR: join(dir, 'run'), DATA_DIR: join(dir, 'data') });

  test('an invalid value is reported with its variable and the reason, never with a password', () => {
    let problems: ConfigProblem[] = [];
    let message = '';
    try {
      loadConfig({
        env: { ...base(), SMTP_URL: 'smtp://mailer:hunter2@mail.example:notaport', STEEM_NODES: 'https://u:pa55word@node.example,ftp://x' },
        dotenvPath: false,
      });
    } catch (err) {
      problems = (err as AppError).data as ConfigProblem[];
      message = (err as AppError).message;
    }
    expect(problems.map((p) => p.variable).sort()).toEqual(['SMTP_URL', 'STEEM_NODES']);
    expectNoSecret(message);
    expectNoSecret(JSON.stringify(problems));
    expect(message).toMatch(/SMTP_URL: expected an smtp:\/\/ or smtps:\/\/ URL; got "smtp:\/\/\*\*\*@mail.example:notaport"/);
  });

  test('a .env holding a key warns when others can read it, and .env.<app> applies over .env', () => {
    writeFileSync(join(dir, '.env'), 'STEEM_POSTING_KEY=5JwifwifwifWIF\nLOG_LEVEL=debug\n');
    chmodSync(join(dir, '.env'), 0o644);
    const warnings: string[] = [];
    loadConfig({ env: base(), dotenvPath: join(dir, '.env'), onWarning: (w) => warnings.push(w) });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/holds STEEM_POSTING_KEY but is readable by others \(mode 644\); run: chmod 600/);
    expectNoSecret(warnings[0] as string);

    chmodSync(join(dir, '.env'), 0o600);
    warnings.length = 0;
    const config = loadConfig({ env: base(), dotenvPath: join(dir, '.env'), onWarning: (w) => warnings.push(w) });
    expect(warnings).toEqual([]);
    expect(config.LOG_LEVEL).toBe('debug');
  });
});
