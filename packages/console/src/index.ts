export { duration, formatStatus } from './format';
export type { Pm2App } from './pm2';
export { listPm2Apps } from './pm2';
export type { AppStatus, BotStatus, BroadcasterStatus, ClockStatus, CollectOptions, SystemStatus } from './status';
export { collectStatus } from './status';
export type { DeadLetterView, EndpointView, MailerView, MessageView, SignerView } from './stores';
