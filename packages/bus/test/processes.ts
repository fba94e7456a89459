import { type ChildProcess, fork } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..', '..');

/** A child process of a test: its JSON log lines, its IPC messages, and ways to wait for them. */
export class Proc {
  readonly lines: Array<Record<string, unknown>> = [];
  readonly messages: unknown[] = [];
  readonly exited: Promise<number | null>;

  constructor(readonly child: ChildProcess) {
    let rest = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      const parts = (rest + chunk.toString()).split('\n');
      rest = parts.pop() ?? '';
      for (const line of parts) {
        try {
          this.lines.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          this.lines.push({ msg: line });
        }
      }
    });
    child.on('message', (m) => this.messages.push(m));
    this.exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  }

  get pid(): number {
    return this.child.pid as number;
  }

  send(msg: unknown): void {
    this.child.send(msg as never);
  }

  /** Wait for an IPC message matching `pred` (also one that already arrived). */
  async message<T>(pred: (m: unknown) => boolean, timeoutMs = 30_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.find(pred);
      if (found !== undefined) return found as T;
      if (this.child.exitCode !== null || this.child.signalCode !== null)
        throw new Error(`process exited (${this.child.exitCode ?? this.child.signalCode})`);
      if (Date.now() > deadline) throw new Error(`no matching message within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  async stop(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    await this.exited;
  }

  /** Peak resident memory of the process so far, in MB (Linux /proc). */
  async peakRssMb(): Promise<number> {
    const status = await readFile(`/proc/${this.pid}/status`, 'utf8');
    const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1]);
    return kb / 1024;
  }
}

/** Start a TypeScript fixture with ts-node (transpile only) and wait for its 'ready' message. */
export async function startTs(file: string, args: string[], env: Record<string, string>): Promise<Proc> {
  return start(file, args, env, ['-r', 'ts-node/register']);
}

/** Start a plain JavaScript fixture and wait for its 'ready' message. */
export async function startJs(file: string, env: Record<string, string>): Promise<Proc> {
  return start(file, [], env, []);
}

async function start(file: string, args: string[], env: Record<string, string>, execArgv: string[]): Promise<Proc> {
  const child = fork(file, args, {
    cwd: ROOT,
    execArgv,
    env: { ...process.env, TS_NODE_TRANSPILE_ONLY: '1', TS_NODE_PROJECT: join(ROOT, 'tsconfig.test.json'), ...env },
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  const proc = new Proc(child);
  await proc.message((m) => m === 'ready');
  return proc;
}
