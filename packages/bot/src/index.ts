export type {
  Bot,
  BotDefinition,
  BotSetupContext,
  BotTaskContext,
  BotTaskHandlers,
  Mail,
  OpContext,
  OpHandlers,
  OpName,
  RunningBot,
} from './bot';
export { createBot } from './bot';
export type { ChainOptions, CommentInput, CustomJsonInput, KeyRole, TransferInput, VoteInput } from './chain';
export { Chain } from './chain';
export { Dispatcher } from './dispatcher';
export type { DeadLetter } from './store';
export { BotStore } from './store';
export type { TestBot } from './testing';
export { startTestBot } from './testing';
