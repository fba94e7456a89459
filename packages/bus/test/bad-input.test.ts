import { connect, type Socket } from 'node:net';
import { join } from 'node:path';

import { Bus, IpcTransport } from '../src';
import { memoryLogger, tempDir, type TestCatalogue, testCatalogue, waitFor } from './helpers';

// A server in this process, attacked over its real Unix socket with raw bytes.
let tmp: ReturnType<typeof tempDir>;
let server: Bus<TestCatalogue>;
let client: Bus<TestCatalogue>;
let lines: Array<Record<string, unknown>>;
let runs: number;

function transport(logger: ReturnType<typeof memoryLogger>['logger'], maxConnections = 16): IpcTransport {
  return new IpcTransport({ socketDir: join(tmp.dir, 'run'), maxMessageBytes: 64 * 1024, maxConnections, logger });
}

beforeEach(async () => {
  tmp = tempDir();
  const mem = memoryLogger('alpha');
  lines = mem.lines;
  runs = 0;
  server = new Bus({ app: 'alpha', catalogue: testCatalogue, transport: transport(mem.logger), logger: mem.logger });
  server.handle('alpha.job.run', (p) => {
    runs++;
    return { doubled: p.n * 2 };
  });
  await server.serve({ floor: 0 });
  const c = memoryLogger('client');
  client = new Bus({ app: 'client', catalogue: testCatalogue, transport: transport(c.logger), logger: c.logger, taskTimeoutMs: 2000 });
});
afterEach(async () => {
  await client.close();
  await server.close();
  tmp.cleanup();
});

/** Open a raw connection, write `bytes`, and collect what comes back until the server closes it. */
function raw(bytes: string | Buffer): Promise<{ closed: boolean; received: string; socket: Socket }> {
  return new Promise((resolve) => {
    const socket = connect(join(tmp.dir, 'run', 'app.alpha'));
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (received += d));
    socket.on('connect', () => socket.write(bytes));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve({ closed: true, received, socket }));
    setTimeout(() => resolve({ closed: socket.destroyed, received, socket }), 1500);
  });
}

async function stillServes(): Promise<void> {
  await expect(client.call('alpha.job.run', { n: 4 })).resolves.toEqual({ doubled: 8 });
}

const logged = (text: string): boolean => lines.some((l) => typeof l.msg === 'string' && l.msg.includes(text));

describe('bad input on a real socket: a log line, a closed connection or an error reply, never a crash', () => {
  test.each([
    ['a frame over the size limit', `{"type":"bus.task","data":{"pad":"${'x'.repeat(100 * 1024)}"}}\f`, 'ERR_IPC_FRAME_TOO_LARGE'],
    ['an unterminated frame over the size limit', 'y'.repeat(100 * 1024), 'ERR_IPC_FRAME_TOO_LARGE'],
    ['malformed JSON', '{"type": "bus.task", "data": {\f', 'ERR_IPC_INVALID_JSON'],
    ['a JSON null', 'null\f', 'ERR_IPC_INVALID_MESSAGE'],
    ['a numeric event type', '{"type":5,"data":{}}\f', 'ERR_IPC_INVALID_EVENT'],
    ['a missing event type', '{"data":{}}\f', 'ERR_IPC_INVALID_EVENT'],
    ['a reserved event type', '{"type":"error","data":{}}\f', 'ERR_IPC_RESERVED_EVENT'],
    ['a prototype name as event type', '{"type":"__proto__","data":{}}\f', 'ERR_IPC_INVALID_EVENT'],
    ['a constructor event type', '{"type":"constructor","data":{}}\f', 'ERR_IPC_INVALID_EVENT'],
    ['an unknown frame type', '{"type":"hello","data":{}}\f', 'unknown frame type'],
    ['a malformed task frame', '{"type":"bus.task","data":{"name":7}}\f', 'malformed task frame'],
    ['a malformed subscribe frame', '{"type":"bus.subscribe","data":{"names":"all","from":"x"}}\f', 'malformed subscribe frame'],
  ])('%s closes only that connection', async (_what, bytes, why) => {
    const result = await raw(bytes);
    expect(result.closed).toBe(true);
    await waitFor(() => logged(why) || lines.some((l) => l.code === why), 2000, `a log line about ${why}`);
    await stillServes();
  });

  test('tasks with bad names or payloads get an error reply with a stable code; the connection stays', async () => {
    const frames = [
      { id: 1, name: 'alpha.nope.run', payload: {}, tid: 't1' },
      { id: 2, name: 'alpha.job.run', payload: { n: 'two' }, tid: 't2' },
      { id: 3, name: 'alpha.job.run', payload: JSON.parse('{"n":1,"__proto__":{"polluted":true}}') as unknown, tid: 't3' },
      { id: 4, name: 'alpha.job.run', payload: { n: 1, deep: { constructor: { prototype: 1 } } }, tid: 't4' },
      { id: 5, name: 'beta.job.run', payload: { n: 1 }, tid: 't5' },
    ];
    const text = frames.map((f) => `${JSON.stringify({ type: 'bus.task', data: f })}\f`).join('');
    const result = await raw(text);
    expect(result.closed).toBe(false);
    result.socket.destroy();
    const replies = result.received
      .split('\f')
      .filter(Boolean)
      .map((f) => JSON.parse(f) as { type: string; data: { id: number; error: { code: string } } });
    replies.sort((a, b) => a.data.id - b.data.id); // independent tasks may be answered in any order
    expect(replies.map((r) => [r.type, r.data.id, r.data.error.code])).toEqual([
      ['bus.nack', 1, 'ERR_BUS_UNKNOWN_NAME'],
      ['bus.nack', 2, 'ERR_BUS_INVALID_PAYLOAD'],
      ['bus.nack', 3, 'ERR_BUS_INVALID_PAYLOAD'],
      ['bus.nack', 4, 'ERR_BUS_INVALID_PAYLOAD'],
      ['bus.nack', 5, 'ERR_BUS_WRONG_APP'],
    ]);
    expect(runs).toBe(0);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    await stillServes();
  });

  test('a flood of connections is refused past the limit, and service resumes when it ends', async () => {
    const flood: Socket[] = [];
    await Promise.all(
      Array.from(
        { length: 200 },
        () =>
          new Promise<void>((resolve) => {
            const s = connect(join(tmp.dir, 'run', 'app.alpha'));
            s.on('error', () => resolve());
            s.on('connect', () => resolve());
            s.on('close', () => resolve());
            flood.push(s);
          }),
      ),
    );
    await waitFor(() => flood.filter((s) => !s.destroyed).length <= 16, 5000, 'the excess connections to be closed');
    for (const s of flood) s.destroy();
    await stillServes();
  });
});
