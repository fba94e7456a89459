import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';

import { type Config, createLogger, loadConfig, type Logger, projectRoot } from '@steem-bot/config';

/** A child process of a test: its stdout lines (JSON parsed where possible), its IPC messages. */
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

  /** Send an IPC message to the child. */
  send(msg: unknown): void {
    this.child.send(msg as never);
  }

  /** Log messages (`msg`) so far. */
  get messagesLogged(): string[] {
    return this.lines.map((l) => String(l.msg));
  }

  /** Wait for an IPC message matching `pred` (also one that already arrived). */
  async message<T>(pred: (m: unknown) => boolean, timeoutMs = 30_000): Promise<T> {
    let found: unknown;
    await waitFor(
      () => {
        found = this.messages.find(pred);
        if (found === undefined && (this.child.exitCode !== null || this.child.signalCode !== null)) {
          throw new Error(`process exited (${this.child.exitCode ?? this.child.signalCode}) before the message`);
        }
        return found !== undefined;
      },
      timeoutMs,
      'an IPC message',
    );
    return found as T;
  }

  async stop(signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }

  /** Peak resident memory of the process so far, in MB (Linux /proc). */
  peakRssMb(): number {
    const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
    return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1]) / 1024;
  }
}

export interface SpawnOptions {
  args?: string[];
  env?: Record<string, string>;
  /** Wait for PM2's 'ready' message (default true). */
  ready?: boolean;
  /** Inherit stderr (default) or keep it on `proc.child.stderr`. */
  stderr?: 'inherit' | 'pipe';
}

/** Start a .js file, or a .ts one through ts-node (transpile only), from the repository root. */
export async function spawnProcess(file: string, options: SpawnOptions = {}): Promise<Proc> {
  const child = fork(file, options.args ?? [], {
    cwd: projectRoot,
    execArgv: file.endsWith('.ts') ? ['-r', 'ts-node/register'] : [],
    env: { ...process.env, TS_NODE_TRANSPILE_ONLY: '1', TS_NODE_PROJECT: join(projectRoot, 'tsconfig.test.json'), ...options.env },
    stdio: ['ignore', 'pipe', options.stderr ?? 'inherit', 'ipc'],
  });
  const proc = new Proc(child);
  if (options.ready ?? true) await proc.message((m) => m === 'ready');
  return proc;
}

/** Poll `predicate` (sync or async) every 20 ms; throw with `what` after `timeoutMs`. */
export async function waitFor(predicate: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A logger that keeps its JSON lines, for asserting on what an app logged. */
export function keptLogger(app: string, level = 'info'): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      callback();
    },
  });
  return { logger: createLogger({ app, format: 'json', level, destination }), lines };
}

/** A private temp SOCKET_DIR/DATA_DIR; `env` is what child processes need, `config` for this one. */
export function testSetup(vars: Record<string, string> = {}): {
  dir: string;
  env: Record<string, string>;
  config: Config;
  cleanup(): void;
} {
  const dir = mkdtempSync(join(tmpdir(), 'sbt-'));
  const env = {
    SOCKET_DIR: join(dir, 'run'),
    DATA_DIR: join(dir, 'data'),
    MAILER_OUTBOX: join(dir, 'outbox'),
    LOG_LEVEL: 'info',
    LOG_FORMAT: 'json',
    ...vars,
  };
  const config = loadConfig({ dotenvPath: false, env });
  return { dir, env, config, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A path inside the repository. */
export function projectRootFile(path: string): string {
  return join(projectRoot, path);
}
export type { SsrfRow } from './ssrf-table';
export { isHostName, ssrfTable, tableResolver } from './ssrf-table';
export type { StoreHarness, StoreMakers } from './stores';
export { storeImplementations, terminateLockHolder } from './stores';
