import type { Socket } from 'node:net';

import { AppError, type Logger, serializeError } from '@steem-bot/config';
import { IPCModule } from 'node-ipc';

import { CONTROL, encodeEvent, type GapFrame, isObject, NODE_IPC_LIFECYCLE, type TaskFrame, type WireEvent } from './frames';
import type { IpcOptions } from './ipc-options';
import { ReplayWindow } from './replay-window';
import type { ServeHooks, TransportServer } from './transport';

/** One connected client. Until it subscribes it is a plain node-ipc client and gets every event live. */
interface Peer {
  readonly socket: Socket;
  names: Set<string> | null;
  /** Receives live events directly; false while it is being caught up from the window. */
  live: boolean;
  /** Fell behind the others: the publisher stops waiting for it until its buffer drains. */
  lagging: boolean;
  /** Aborts its catch-up (and the app's backfill) when it goes away. */
  readonly gone: AbortController;
}

const CATCH_UP_BATCH = 256;

/** The node-ipc server of one app: subscribers with replay and bounded buffers, tasks with acks. */
export class IpcServer implements TransportServer {
  private readonly ipc = new IPCModule();
  private readonly peers = new Map<Socket, Peer>();
  private readonly window: ReplayWindow<Buffer>;
  private readonly log: Logger;
  private closed = false;
  private pacing: Promise<void> | undefined;
  /** Resolves once the window's floor is known (the app may serve before it knows it). */
  private readonly floorKnown: Promise<void>;

  constructor(
    private readonly app: string,
    private readonly hooks: ServeHooks,
    private readonly options: IpcOptions,
    floor: number | Promise<number>,
  ) {
    this.window = new ReplayWindow<Buffer>(options.replayBytes, typeof floor === 'number' ? floor : 0);
    this.floorKnown = typeof floor === 'number' ? Promise.resolve() : floor.then((f) => void (this.window.floor = f));
    this.floorKnown.catch(() => undefined); // awaited by each catch-up; never unhandled
    this.log = options.logger.child({ component: 'bus-server' });
    Object.assign(this.ipc.config, {
      id: app,
      appspace: options.appspace,
      socketRoot: `${options.socketDir}/`,
      parser: 'guarded',
      silent: true,
      maxMessageSize: options.maxMessageBytes,
      // Our own limit (bufferBytes) cuts a slow subscriber first; node-ipc's is the backstop.
      maxPendingBytes: options.bufferBytes + options.maxMessageBytes * 2,
      maxConnections: options.maxConnections,
    });
  }

  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.ipc.serve(() => resolve());
      const server = this.ipc.server;
      server.on('connect', (socket: Socket) => {
        const peer: Peer = { socket, names: null, live: true, lagging: false, gone: new AbortController() };
        this.peers.set(socket, peer);
        socket.on('drain', () => (peer.lagging = false));
        socket.once('close', () => this.drop(socket));
      });
      server.on('socket.disconnected', (socket: Socket) => this.drop(socket));
      server.on('error', (err: Error & { code?: string }) => {
        // Protocol violations close only the offending connection; node-ipc has done that already.
        this.log.warn({ err, code: err.code }, `rejected a connection's input: ${err.message}`);
      });
      server.on('*', (type: string, data: unknown, socket: Socket) => {
        if (!NODE_IPC_LIFECYCLE.has(type)) this.receive(type, data, socket);
      });
      try {
        server.start();
      } catch (err) {
        reject(err);
      }
      const net = server.server;
      if (net) net.once('error', reject);
    });
  }

  async publish(event: WireEvent): Promise<void> {
    if (this.closed) throw new AppError('ERR_BUS_CLOSED', `${this.app}: the bus is closed`);
    const frame = this.encodeEvent(event);
    this.window.push({ pos: event.pos, name: event.name, frame });
    let waiting: Socket[] | undefined;
    for (const peer of this.peers.values()) {
      if (!peer.live || (peer.names !== null && !peer.names.has(event.name))) continue;
      if (this.write(peer, frame) && !peer.lagging && peer.socket.writableNeedDrain) (waiting ??= []).push(peer.socket);
    }
    if (waiting !== undefined) await this.pace(waiting);
  }

  /**
   * Wait for full subscribers to drain, so that none is flooded. Once the first has drained the
   * others get `graceMs` more (at most `stallMs` in all): one that misses it is lagging, is no
   * longer waited for, and is cut off when its buffer limit is reached. So subscribers of about
   * the same speed pace the publisher together, and a slow or stalled one does not hold back the rest.
   */
  private pace(sockets: Socket[]): Promise<void> {
    // Publishers that do not await each other share one wait (and one set of socket listeners).
    this.pacing ??= this.waitForDrain(sockets).finally(() => (this.pacing = undefined));
    return this.pacing;
  }

  private async waitForDrain(sockets: Socket[]): Promise<void> {
    const late = await drained(sockets, this.options.graceMs, this.options.stallMs);
    for (const socket of late) {
      const peer = this.peers.get(socket);
      if (peer && !peer.lagging) {
        peer.lagging = true;
        this.log.debug({ buffered: socket.writableLength }, 'a subscriber is lagging; not waiting for it');
      }
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const net = this.ipc.server.server;
    this.ipc.server.stop();
    for (const socket of [...this.peers.keys()]) this.drop(socket);
    if (net) await new Promise<void>((resolve) => (net.listening ? net.close(() => resolve()) : resolve()));
  }

  /** Forget a peer that went away, and stop what was being done for it. */
  private drop(socket: Socket): void {
    this.peers.get(socket)?.gone.abort();
    this.peers.delete(socket);
  }

  /** Encode an event once, checking its size. */
  private encodeEvent(event: WireEvent): Buffer {
    // One Buffer per event, shared by every subscriber's socket and kept by the window: off the
    // V8 heap, so the window's byte bound is the memory it holds.
    const frame = Buffer.from(encodeEvent(event.name, event.payload, { tid: event.tid, pos: event.pos, ts: event.ts }));
    if (frame.length - 1 > this.options.maxMessageBytes) {
      throw new AppError('ERR_BUS_FRAME_TOO_LARGE', `${event.name}: ${frame.length - 1} bytes exceeds ${this.options.maxMessageBytes}`);
    }
    return frame;
  }

  /** Encode a control frame (node-ipc checks the name and size). */
  private encode(name: string, data: unknown): Buffer {
    try {
      return Buffer.from(this.ipc.server.encode(name, data));
    } catch (err) {
      throw new AppError('ERR_BUS_FRAME_TOO_LARGE', `${name}: ${(err as Error).message}`, { cause: err });
    }
  }

  /**
   * Write within the subscriber's buffer limit; a subscriber past it is cut off (it will resume).
   * False when the peer is gone; check `writableNeedDrain` for pacing.
   */
  private write(peer: Peer, frame: Buffer): boolean {
    const socket = peer.socket;
    if (socket.destroyed) return false;
    if (socket.writableLength + frame.length > this.options.bufferBytes) {
      this.log.warn(
        { buffered: socket.writableLength, limit: this.options.bufferBytes },
        'cut off a slow subscriber: its buffer is full; it resumes from its position when it reconnects',
      );
      socket.destroy();
      this.drop(socket);
      return false;
    }
    // Batch the frames written in one turn of the event loop into one system call.
    if (socket.writableCorked === 0) {
      socket.cork();
      process.nextTick(() => socket.uncork());
    }
    this.ipc.server.write(socket, frame);
    return !socket.destroyed;
  }

  private receive(type: string, data: unknown, socket: Socket): void {
    if (type === CONTROL.subscribe) this.subscribe(data, socket);
    else if (type === CONTROL.task) void this.task(data, socket);
    else {
      this.log.warn({ type }, 'closed a connection that sent an unknown frame type');
      socket.destroy();
    }
  }

  private subscribe(data: unknown, socket: Socket): void {
    const peer = this.peers.get(socket);
    const names = isObject(data) && Array.isArray(data.names) ? data.names : undefined;
    const from = isObject(data) ? data.from : undefined;
    if (!peer || !names || !names.every((n) => typeof n === 'string') || !(from === null || Number.isSafeInteger(from))) {
      this.log.warn('closed a connection that sent a malformed subscribe frame');
      socket.destroy();
      return;
    }
    if (peer.names !== null) {
      // One subscription per connection (clients resubscribe on a fresh one): at most one catch-up each.
      this.log.warn('closed a connection that subscribed twice');
      socket.destroy();
      return;
    }
    peer.names = new Set(names as string[]);
    this.ipc.server.write(socket, this.encode(CONTROL.subscribed, {}));
    if (from === null) {
      peer.live = true;
      return;
    }
    peer.live = false;
    this.catchUp(peer, from as number).catch((err: unknown) => {
      if (peer.gone.signal.aborted) return;
      this.log.warn({ err }, 'catch-up failed; closed the subscriber so that it resumes');
      socket.destroy();
    });
  }

  /** Give a resuming subscriber what it missed (backfill, window), then switch it to live. */
  private async catchUp(peer: Peer, from: number): Promise<void> {
    await this.floorKnown;
    let cursor = from;
    const names = peer.names as Set<string>;
    if (cursor < this.window.floor) {
      const until = this.window.floor;
      if (this.hooks.backfill) {
        for await (const event of this.hooks.backfill(cursor, until, names, peer.gone.signal)) {
          if (peer.gone.signal.aborted || !(await this.writePaced(peer, this.encodeEvent(event)))) return;
        }
        if (peer.gone.signal.aborted) return;
      } else {
        const gap: GapFrame = { after: cursor, resumeAt: until };
        this.log.info(gap, 'a subscriber resumed from before the replay window: sent it a gap signal');
        if (!(await this.writePaced(peer, this.encode(CONTROL.gap, gap)))) return;
      }
      cursor = until;
    }
    for (;;) {
      if (cursor < this.window.floor) return this.catchUp(peer, cursor); // evicted meanwhile
      const batch = this.window.after(cursor, CATCH_UP_BATCH);
      if (batch.length === 0) break;
      for (const entry of batch) {
        cursor = entry.pos;
        if (names.has(entry.name) && !(await this.writePaced(peer, entry.frame))) return;
      }
    }
    // Nothing after the cursor and no await since the check: live from the next publish on.
    peer.live = true;
  }

  private async writePaced(peer: Peer, frame: Buffer): Promise<boolean> {
    if (!this.peers.has(peer.socket) || !this.write(peer, frame)) return false;
    if (peer.socket.writableNeedDrain) await drained([peer.socket], 0, this.options.stallMs);
    return this.peers.has(peer.socket);
  }

  private async task(data: unknown, socket: Socket): Promise<void> {
    const frame = data as TaskFrame;
    if (!isObject(data) || !Number.isSafeInteger(frame.id) || typeof frame.name !== 'string' || typeof frame.tid !== 'string') {
      this.log.warn('closed a connection that sent a malformed task frame');
      socket.destroy();
      return;
    }
    try {
      const task = {
        name: frame.name,
        payload: frame.payload,
        tid: frame.tid,
        ...(typeof frame.key === 'string' ? { key: frame.key } : {}),
      };
      const reply = await this.hooks.onTask(task);
      this.reply(socket, CONTROL.ack, { id: frame.id, reply });
    } catch (err) {
      this.reply(socket, CONTROL.nack, { id: frame.id, error: serializeError(err) });
    }
  }

  private reply(socket: Socket, type: string, data: unknown): void {
    if (socket.destroyed) return;
    try {
      this.ipc.server.write(socket, this.ipc.server.encode(type, data));
    } catch (err) {
      const error = serializeError(new AppError('ERR_BUS_FRAME_TOO_LARGE', `reply: ${(err as Error).message}`));
      this.ipc.server.write(socket, this.ipc.server.encode(CONTROL.nack, { id: (data as { id: number }).id, error }));
    }
  }
}

/**
 * Resolve when every socket has drained (or closed), with the ones that had not: at most
 * `graceMs` after the first one drained, and at most `capMs` in all.
 */
function drained(sockets: Socket[], graceMs: number, capMs: number): Promise<Socket[]> {
  return new Promise((resolve) => {
    const pending = new Set(sockets);
    let grace: NodeJS.Timeout | undefined;
    const listeners = new Map<Socket, () => void>();
    const finish = (): void => {
      clearTimeout(cap);
      clearTimeout(grace);
      for (const [s, l] of listeners) {
        s.off('drain', l);
        s.off('close', l);
      }
      resolve([...pending]);
    };
    const cap = setTimeout(finish, capMs);
    for (const s of sockets) {
      const done = (): void => {
        pending.delete(s);
        if (pending.size === 0) finish();
        else grace ??= setTimeout(finish, graceMs);
      };
      listeners.set(s, done);
      s.once('drain', done);
      s.once('close', done);
    }
  });
}
