import type { Socket } from 'node:net';
import { join } from 'node:path';

import { AppError, type Logger, serializeError } from '@steem-bot/config';
import { IPCModule } from 'node-ipc';

import type { LogEntry } from './event-log';
import { CONTROL, encodeEvent, isObject, NODE_IPC_LIFECYCLE, type TaskFrame, type WireEvent } from './frames';
import type { IpcOptions } from './ipc-options';
import { Stream } from './stream';
import type { ServeHooks, StreamInfo, TaskKeyStore, TransportServer } from './transport';

/** One connection and its cursor. Until it subscribes it is a plain node-ipc client: every event, from the head at connect. */
interface Peer {
  readonly socket: Socket;
  /** Names it gets; null: every name (a plain client). */
  names: Set<string> | null;
  /** Position of the last event written to it (or skipped as not its name). */
  pos: number;
  subscribed: boolean;
  /** The pump is writing or waiting for the socket to drain. */
  running: boolean;
  /** The pump found nothing more to read: the next append wakes it. */
  idle: boolean;
  closed: boolean;
  /** The backfill running for it, if any (at most one). */
  backfill: AsyncIterator<WireEvent> | undefined;
  /** Aborted when the connection goes: the app's backfill for it stops at once. */
  gone: AbortController;
  /** It reads from the head at connect (plain client, or `from: null`): never from before the floor. */
  fromHead: boolean;
}

// Events read per step of a cursor; the socket's send budget usually stops a step first.
const READ_BATCH = 256;
const MAX_SUBSCRIBE_NAMES = 1_000;
// Longest run of appends without letting the event loop (and so the sockets) turn.
const YIELD_MS = 2;

/**
 * The node-ipc server of one app. Publishing appends to the app's durable stream and wakes the
 * cursors; each connection's cursor writes what follows its position as fast as its socket
 * drains, from the tail cache or the log, so no subscriber waits for another and none is cut
 * off for being slow. Before the stream's floor: the app's backfill, else a gap frame.
 */
export class IpcServer implements TransportServer {
  private readonly ipc = new IPCModule();
  private readonly peers = new Map<Socket, Peer>();
  private readonly stream: Stream;
  private readonly log: Logger;
  private closed = false;
  /** When the current run of appends without a turn of the event loop began. */
  private busySince: number | undefined;
  /** Resolves once the stream's start is known (see ServeOptions.floor). */
  private floorKnown: Promise<void> = Promise.resolve();

  constructor(
    private readonly app: string,
    private readonly hooks: ServeHooks,
    private readonly options: IpcOptions,
    floor: number | Promise<number>,
  ) {
    this.log = options.logger.child({ component: 'bus-server' });
    this.stream = new Stream({
      file: options.dataDir === undefined ? ':memory:' : join(options.dataDir, 'streams', `${app}.sqlite`),
      floor: typeof floor === 'number' ? floor : 0,
      retention: { hours: options.retentionHours, bytes: options.retentionBytes },
      cacheBytes: options.cacheBytes,
      pruneIntervalMs: options.pruneIntervalMs,
      cursors: () => [...this.peers.values()].map((p) => ({ names: p.names && [...p.names], pos: p.pos })),
      logger: this.log,
    });
    if (typeof floor !== 'number') {
      // Serving (calls, status) before the stream's start is known: once it is, a new stream's
      // floor moves up to it, and cursors below it get the backfill (see ServeOptions.floor).
      this.floorKnown = floor.then((f) => {
        if (!this.closed) this.stream.raiseFloor(f);
      });
      this.floorKnown.catch(() => undefined); // awaited by pumps; never unhandled
    }
    Object.assign(this.ipc.config, {
      id: app,
      appspace: options.appspace,
      socketRoot: `${options.socketDir}/`,
      parser: 'guarded',
      silent: true,
      maxMessageSize: options.maxMessageBytes,
      // Cursors stop writing at sendBytes; node-ipc's limit is only the backstop.
      maxPendingBytes: options.sendBytes + options.maxMessageBytes * 2,
      maxConnections: options.maxConnections,
    });
  }

  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.ipc.serve(() => resolve());
      const server = this.ipc.server;
      server.on('connect', (socket: Socket) => {
        const peer: Peer = {
          socket,
          names: null,
          pos: this.stream.head,
          subscribed: false,
          running: false,
          idle: true,
          closed: false,
          backfill: undefined,
          gone: new AbortController(),
          fromHead: true,
        };
        this.peers.set(socket, peer);
        socket.once('close', () => this.drop(peer));
      });
      server.on('socket.disconnected', (socket: Socket) => {
        const peer = this.peers.get(socket);
        if (peer) this.drop(peer);
      });
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

  get head(): number {
    return this.stream.head;
  }

  info(): StreamInfo {
    return this.stream.info();
  }

  get taskKeys(): TaskKeyStore {
    return this.stream.taskKeys;
  }

  append(events: readonly WireEvent[]): Promise<void> {
    if (this.closed) return Promise.reject(new AppError('ERR_BUS_CLOSED', `${this.app}: the bus is closed`));
    try {
      this.stream.append(events.map((e) => ({ pos: e.pos, name: e.name, ts: e.ts, frame: this.encodeEvent(e) })));
    } catch (err) {
      return Promise.reject(err as Error);
    }
    for (const peer of this.peers.values()) if (peer.idle) void this.pump(peer);
    return this.turn();
  }

  /**
   * Resolved at once, except when appends have run for YIELD_MS without the event loop turning
   * (a publisher awaiting each append in a tight loop): then after pending I/O, so that the
   * sockets are written meanwhile. Never waits for a subscriber, only for the loop to turn.
   */
  private turn(): Promise<void> {
    const now = performance.now();
    if (this.busySince === undefined) {
      this.busySince = now;
      setImmediate(() => (this.busySince = undefined));
    } else if (now - this.busySince > YIELD_MS) {
      return new Promise((resolve) => setImmediate(resolve));
    }
    return Promise.resolve();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const net = this.ipc.server.server;
    this.ipc.server.stop();
    if (net) await new Promise<void>((resolve) => (net.listening ? net.close(() => resolve()) : resolve()));
    for (const peer of this.peers.values()) this.drop(peer);
    this.peers.clear();
    this.stream.close();
  }

  private drop(peer: Peer): void {
    if (peer.closed) return;
    peer.closed = true;
    this.peers.delete(peer.socket);
    // Stop the backfill tied to this subscriber (the broadcaster stops refetching for it).
    peer.gone.abort();
    const it = peer.backfill;
    peer.backfill = undefined;
    if (it?.return) it.return().catch((err: unknown) => this.log.warn({ err }, 'stopping a backfill failed'));
  }

  /**
   * Write what follows the peer's position until its socket's send budget is used, wait for the
   * socket to drain, and go on; stop (idle) at the head. One pump per peer at a time.
   */
  private async pump(peer: Peer): Promise<void> {
    if (peer.running || peer.closed) return;
    peer.running = true;
    peer.idle = false;
    const socket = peer.socket;
    try {
      await this.floorKnown;
      if (peer.fromHead) peer.pos = Math.max(peer.pos, this.stream.floor);
      // A destroyed socket stops the pump at once: its 'close' (which drops the peer) comes only
      // after the event loop turns, and a pump that went on writing into it would never let it.
      while (!peer.closed && !this.closed && !socket.destroyed) {
        if (socket.writableLength >= this.options.sendBytes) {
          await drainedOrClosed(socket);
          continue;
        }
        if (peer.pos < this.stream.floor) {
          await this.beforeFloor(peer);
          continue;
        }
        const batch = this.stream.read(peer.pos, READ_BATCH);
        if (batch.length === 0) {
          peer.idle = true;
          return;
        }
        // A batch with none of the peer's names writes nothing, so the socket never asks it to
        // wait: let the event loop turn between such batches, or a filtered cursor far behind
        // would scan the whole stream in one go while tasks, calls and other peers wait.
        if (!this.writeBatch(peer, batch)) await new Promise((resolve) => setImmediate(resolve));
      }
    } catch (err) {
      this.log.warn({ err }, 'serving a subscriber failed; closed its connection so that it resumes');
      socket.destroy();
    } finally {
      peer.running = false;
    }
  }

  /**
   * Write the peer's events of `batch` until its send budget is used; the rest is read again
   * later. False when it wrote nothing (none of the peer's names, or the peer is gone).
   */
  private writeBatch(peer: Peer, batch: readonly LogEntry[]): boolean {
    const socket = peer.socket;
    // The peer's frames of the batch as one write (one buffer, not one per frame), within the budget.
    const budget = this.options.sendBytes - socket.writableLength;
    const frames: Buffer[] = [];
    let bytes = 0;
    let pos = peer.pos;
    for (const entry of batch) {
      if (bytes >= budget) break;
      if (peer.names === null || peer.names.has(entry.name)) {
        frames.push(entry.frame);
        bytes += entry.frame.length;
      }
      pos = entry.pos;
    }
    if (frames.length === 0) {
      peer.pos = pos;
      return false;
    }
    if (!this.write(peer, frames.length === 1 ? (frames[0] as Buffer) : Buffer.concat(frames, bytes))) return false;
    peer.pos = pos;
    return true;
  }

  /** The peer is below the stream's floor: the app's backfill up to the floor, else a gap frame. */
  private async beforeFloor(peer: Peer): Promise<void> {
    const after = peer.pos;
    const until = this.stream.floor;
    if (!this.hooks.backfill || peer.names === null) {
      this.log.info({ after, resumeAt: until }, `a subscriber is behind ${this.app}'s retention: sent it a gap signal`);
      this.write(peer, this.encode(CONTROL.gap, { after, resumeAt: until }));
      peer.pos = until;
      return;
    }
    const it = this.hooks.backfill(after, until, peer.names, peer.gone.signal)[Symbol.asyncIterator]();
    peer.backfill = it;
    try {
      for (;;) {
        if (peer.socket.writableLength >= this.options.sendBytes) await drainedOrClosed(peer.socket);
        if (peer.closed || peer.socket.destroyed || peer.backfill !== it) return;
        const next = await it.next();
        if (next.done || peer.closed) break;
        const event = next.value;
        if (event.pos <= peer.pos || event.pos > until) continue;
        if (!this.write(peer, this.encodeEvent(event))) return;
        peer.pos = event.pos;
      }
      peer.pos = Math.max(peer.pos, until);
    } finally {
      if (peer.backfill === it) {
        peer.backfill = undefined;
        await it.return?.();
      }
    }
  }

  /** Encode an event once, checking its size: the same bytes go to the log and every socket. */
  private encodeEvent(event: WireEvent): Buffer {
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

  /** False when the peer is gone. */
  private write(peer: Peer, frame: Buffer): boolean {
    if (peer.closed || peer.socket.destroyed) return false;
    this.ipc.server.write(peer.socket, frame);
    return !peer.socket.destroyed;
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
    if (!peer) return;
    const names = isObject(data) && Array.isArray(data.names) ? (data.names as unknown[]) : undefined;
    const from = isObject(data) ? data.from : undefined;
    const valid =
      names !== undefined &&
      names.length <= MAX_SUBSCRIBE_NAMES &&
      names.every((n) => typeof n === 'string') &&
      (from === null || (typeof from === 'number' && Number.isSafeInteger(from) && from >= 0));
    if (!valid) {
      this.log.warn('closed a connection that sent a malformed subscribe frame');
      socket.destroy();
      return;
    }
    if (peer.subscribed) {
      this.log.warn('closed a connection that subscribed twice (one subscription per connection)');
      socket.destroy();
      return;
    }
    const head = this.stream.head;
    const floor = this.stream.floor;
    if (typeof from === 'number' && from > head) {
      this.log.info(
        { from, head },
        `a subscriber resumes after ${from}, beyond ${this.app}'s head ${head}: it waits for what comes after it`,
      );
    }
    peer.subscribed = true;
    peer.names = new Set(names as string[]);
    peer.pos = from === null ? head : (from as number);
    peer.fromHead = from === null;
    // Everything written after this frame belongs to the subscription.
    this.write(peer, this.encode(CONTROL.subscribed, { head, floor }));
    if (peer.idle) void this.pump(peer);
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

/** Resolve once the socket has drained (or closed); without a pending drain, after pending I/O. */
function drainedOrClosed(socket: Socket): Promise<void> {
  if (socket.destroyed) return Promise.resolve();
  if (!socket.writableNeedDrain) return new Promise((resolve) => setImmediate(resolve));
  return new Promise((resolve) => {
    const done = (): void => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}
