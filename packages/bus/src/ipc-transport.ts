import type { WireTask } from './frames';
import { IpcConnection } from './ipc-connection';
import { IPC_DEFAULTS, type IpcOptions, type IpcTransportOptions } from './ipc-options';
import { IpcServer } from './ipc-server';
import type { ServeHooks, ServeOptions, SubscribeHandlers, Transport, TransportServer, TransportSubscription } from './transport';

/** The embedded transport: one node-ipc Unix socket per serving app, in a private directory. */
export class IpcTransport implements Transport {
  private readonly servers = new Set<IpcServer>();
  private readonly connections = new Set<IpcConnection>();
  private readonly requesters = new Map<string, IpcConnection>();

  private readonly options: IpcOptions;

  constructor(options: IpcTransportOptions) {
    this.options = { ...IPC_DEFAULTS, ...options };
  }

  async serve(app: string, hooks: ServeHooks, options: ServeOptions = {}): Promise<TransportServer> {
    const server = new IpcServer(app, hooks, this.options, options.floor ?? 0);
    await server.start();
    this.servers.add(server);
    return server;
  }

  subscribe(app: string, names: readonly string[], from: number | null, handlers: SubscribeHandlers): TransportSubscription {
    // One connection per subscription, so that a slow subscription is cut off alone.
    const conn = new IpcConnection(app, this.options);
    this.connections.add(conn);
    return conn.subscribe(names, from, handlers);
  }

  request(app: string, task: WireTask, timeoutMs: number): Promise<unknown> {
    let conn = this.requesters.get(app);
    if (!conn) {
      conn = new IpcConnection(app, this.options);
      this.requesters.set(app, conn);
      this.connections.add(conn);
    }
    return conn.request(task, timeoutMs);
  }

  async close(): Promise<void> {
    for (const conn of this.connections) conn.close();
    this.connections.clear();
    this.requesters.clear();
    await Promise.all([...this.servers].map((s) => s.close()));
    this.servers.clear();
  }
}
