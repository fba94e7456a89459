import { Writable } from 'node:stream';

import { AppError, createLogger, deserializeError, newTid, serializeError, withTid } from '../src';

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

describe('logger', () => {
  test('JSON lines carry the app, the current TID, and never a secret', () => {
    const { lines, stream } = capture();
    const log = createLogger({ app: 'mailer', format: 'json', destination: stream }).child({ component: 'api' });
    withTid('00aa11bb22cc33dd', () =>
      log.info({ token: 's3cret', client: { password: 'hunter2' }, headers: { authorization: 'Bearer x' } }, 'accepted'),
    );
    log.info('no tid here');
    const first = JSON.parse(lines[0] as string) as Record<string, unknown>;
    expect(first).toMatchObject({ app: 'mailer', component: 'api', tid: '00aa11bb22cc33dd', msg: 'accepted', token: '[redacted]' });
    expect(lines[0]).not.toMatch(/s3cret|hunter2|Bearer x/);
    expect(JSON.parse(lines[1] as string)).not.toHaveProperty('tid');
  });

  test('pretty output is one readable line per event with app/component and the TID', () => {
    const { lines, stream } = capture();
    const log = createLogger({ app: 'broadcaster', format: 'pretty', destination: stream }).child({ component: 'stream' });
    withTid('0123456789abcdef', () => log.warn({ block: 5 }, 'node stale'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^\[[\d:.]+\] WARN: broadcaster\/stream \[0123456789abcdef\] node stale {"block":5}$/);
  });
});

describe('errors', () => {
  test('carry a stable code, a retry hint and their class name, and survive the wire', () => {
    const err = new AppError('ERR_BUS_TIMEOUT', 'no ack', { data: { app: 'mailer' } });
    expect(err).toMatchObject({ name: 'AppError', code: 'ERR_BUS_TIMEOUT', retryable: true, data: { app: 'mailer' } });
    const back = deserializeError(JSON.parse(JSON.stringify(serializeError(err))));
    expect(back).toBeInstanceOf(AppError);
    expect(back).toMatchObject({ code: 'ERR_BUS_TIMEOUT', retryable: true, message: 'no ack', data: { app: 'mailer' } });
    expect(serializeError(new TypeError('x'))).toMatchObject({ code: 'ERR_BUS_HANDLER_FAILED', name: 'TypeError', retryable: true });
  });

  test('TIDs are 16 hex characters and unique', () => {
    const tids = new Set(Array.from({ length: 5000 }, () => newTid()));
    expect(tids.size).toBe(5000);
    for (const t of tids) expect(t).toMatch(/^[0-9a-f]{16}$/);
  });
});
