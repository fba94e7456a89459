// The part of node-ipc 14.0.0's API the bus uses (the package ships no type declarations).
declare module 'node-ipc' {
  import type { Server as NetServer, Socket } from 'node:net';

  export interface IpcConfig {
    appspace: string;
    socketRoot: string;
    id: string;
    parser: 'raw' | 'fast' | 'guarded' | 'assured';
    silent: boolean;
    maxConnections: number;
    maxMessageSize: number;
    maxPendingBytes: number;
    messageTimeout: number;
    retry: number;
    maxRetries: number;
    stopRetrying: boolean;
    unlink: boolean;
    logger: (msg: string) => void;
  }

  type Listener = (...args: never[]) => void;

  interface EventPubSub {
    on(type: string, handler: Listener): this;
    off(type?: string, handler?: Listener | '*'): this;
  }

  export interface IpcServer extends EventPubSub {
    server: NetServer | false;
    sockets: Socket[];
    start(): void;
    stop(): void;
    /** Encode one frame (throws IPCProtocolError ERR_IPC_FRAME_TOO_LARGE past maxMessageSize). */
    encode(type: string, data: unknown): string;
    /** Write an encoded frame to one socket, within maxPendingBytes; false when the socket is full. */
    write(socket: Socket, frame: string | Buffer): boolean;
    emit(socket: Socket, type: string, data: unknown): boolean;
  }

  export interface IpcClient extends EventPubSub {
    socket: Socket | false;
    emit(type: string, data: unknown): boolean;
  }

  export class IPCModule {
    config: IpcConfig;
    server: IpcServer;
    of: Record<string, IpcClient | undefined>;
    serve(callback?: () => void): void;
    serve(path: string, callback?: () => void): void;
    connectTo(id: string, callback?: () => void): void;
    connectTo(id: string, path: string, callback?: () => void): void;
    disconnect(id: string): void;
  }
}
