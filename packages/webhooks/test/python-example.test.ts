import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

import { call, client, fakeBroadcaster, startApp, waitFor, webhooksEnv } from './helpers';

// The README's Python receiver, run as it is printed there, with python3 + requests against the
// app. standardwebhooks (PyPI) is not installed here: the example's hmac fallback verifies.
const python = spawnSync('python3', ['-c', 'import requests'], { encoding: 'utf8' });
const runnable = python.status === 0;
if (!runnable)
  process.stdout.write('webhooks/python-example: python3 with requests is not available; the README example test is skipped\n');

/** The first ```python block of the README's "Webhooks" section. */
function readmeExample(): string {
  const readme = readFileSync(join(__dirname, '..', '..', '..', 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('\n## Webhooks'));
  const match = /```python\n([\s\S]*?)```/.exec(section);
  if (!match) throw new Error('no python block in the README Webhooks section');
  return match[1] as string;
}

const freePort = (): Promise<number> =>
  new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

(runnable ? test : test.skip)(
  "the README's Python receiver registers, verifies our signatures, handles each transfer to alice once (also after a replay) and refuses a forged POST",
  async () => {
    const w = webhooksEnv();
    cleanups.push(() => w.cleanup());
    const app = await startApp(w);
    cleanups.push(() => app.stop());
    const token = await client(w, 'bot');
    const chain = await fakeBroadcaster(w);
    cleanups.push(() => chain.bus.close());

    const file = join(w.dir, 'receiver.py');
    writeFileSync(file, readmeExample());
    const port = await freePort();
    const py = spawn('python3', [file], {
      env: { ...process.env, WEBHOOKS_URL: app.url, WEBHOOKS_TOKEN: token, RECEIVER_PORT: String(port) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    py.stdout.on('data', (c: Buffer) => (out += c.toString()));
    py.stderr.on('data', (c: Buffer) => (err += c.toString()));
    cleanups.push(() => py.kill('SIGKILL'));
    await waitFor(() => out.includes('receiving on') || py.exitCode !== null, 15_000, 'the receiver to start');
    expect(err).toBe('');
    expect(out).toContain(`receiving on http://127.0.0.1:${port}/steem`);

    const B = 1_000_000 * 1_000_000;
    await chain.transfer(B + 1, 'bob', 'alice');
    await chain.transfer(B + 2, 'bob', 'carol'); // filtered out by the endpoint
    await chain.transfer(B + 3, 'carol', 'alice');
    const payments = () => out.split('\n').filter((l) => l.includes(' sent '));
    await waitFor(() => payments().length === 2, 10_000, 'two payments handled');
    expect(payments()).toEqual([
      "bob sent 1.000 STEEM to alice (block 1000000, memo '#1000000000001')",
      "carol sent 1.000 STEEM to alice (block 1000000, memo '#1000000000003')",
    ]);

    // A replay sends both again (same webhook-ids): delivered (2xx), not handled twice.
    expect((await call(app.url, token, 'POST', '/v1/endpoints/alice-payments/replay', { from_position: B })).status).toBe(202);
    const ok = async () => {
      const log = await call(app.url, token, 'GET', '/v1/endpoints/alice-payments/deliveries');
      return (log.body.deliveries as Array<{ status: number }>).filter((d) => d.status === 204).length;
    };
    await waitFor(async () => (await ok()) === 4, 10_000, 'the replayed deliveries');
    expect(payments()).toHaveLength(2);

    // Anything not signed with the endpoint's secret is refused.
    const body = JSON.stringify({ type: 'transfer', position: B + 9, tid: 'x', timestamp: new Date().toISOString(), data: {} });
    const stamp = String(Math.floor(Date.now() / 1000));
    const forged = await fetch(`http://127.0.0.1:${port}/steem`, {
      method: 'POST',
      headers: { 'webhook-id': 'msg_x', 'webhook-timestamp': stamp, 'webhook-signature': 'v1,AAAA', 'content-type': 'application/json' },
      body,
    });
    expect(forged.status).toBe(401);
    const unsigned = await fetch(`http://127.0.0.1:${port}/steem`, { method: 'POST', body });
    expect(unsigned.status).toBe(401);
    expect(payments()).toHaveLength(2);
  },
);
