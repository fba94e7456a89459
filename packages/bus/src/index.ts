export { AmqpLink } from './amqp-link';
export type { AmqpOptions, AmqpTransportOptions } from './amqp-transport';
export { AMQP_DEFAULTS, amqpNames, AmqpTransport, readAmqpStreams } from './amqp-transport';
export { backoffDelay } from './backoff';
export type {
  BatchEvent,
  BusOptions,
  EventContext,
  EventHandler,
  EventHandlers,
  PublishOptions,
  SendOptions,
  ServeOptions,
  SubscribeOptions,
  TaskContext,
  TaskHandler,
} from './bus';
export { Bus, MAX_KEY_LENGTH } from './bus';
export { createBus, createIpcBus, createTransport } from './create';
export type { CursorInfo, LogEntry, Retention, StreamStatus } from './event-log';
export { EventLog, readStreams, searchStreams } from './event-log';
export type { EventMeta, WireEvent, WireTask } from './frames';
export { CONTROL, META_KEY } from './frames';
export type { IpcOptions, IpcTransportOptions } from './ipc-options';
export { IPC_DEFAULTS } from './ipc-options';
export { IpcTransport } from './ipc-transport';
export type { AppContext, RunAppOptions, RunningApp } from './lifecycle';
export { runApp } from './lifecycle';
export { MemoryHub, MemoryTransport } from './memory-transport';
export type { CachedEntry } from './tail-cache';
export { TailCache } from './tail-cache';
export type {
  ServeHooks,
  StreamInfo,
  SubscribeHandlers,
  TaskKeyStore,
  Transport,
  TransportServer,
  TransportSubscription,
} from './transport';
