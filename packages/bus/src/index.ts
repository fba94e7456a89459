export { backoffDelay } from './backoff';
export type {
  BusOptions,
  EventContext,
  EventHandler,
  EventHandlers,
  SendOptions,
  ServeOptions,
  SubscribeOptions,
  TaskContext,
  TaskHandler,
} from './bus';
export { Bus } from './bus';
export { createIpcBus } from './create';
export type { EventMeta, WireEvent, WireTask } from './frames';
export { CONTROL, META_KEY } from './frames';
export type { IpcOptions, IpcTransportOptions } from './ipc-options';
export { IPC_DEFAULTS } from './ipc-options';
export { IpcTransport } from './ipc-transport';
export type { AppContext, RunAppOptions, RunningApp } from './lifecycle';
export { runApp } from './lifecycle';
export { MemoryHub, MemoryTransport } from './memory-transport';
export { ReplayWindow } from './replay-window';
export type { ServeHooks, SubscribeHandlers, Transport, TransportServer, TransportSubscription } from './transport';
