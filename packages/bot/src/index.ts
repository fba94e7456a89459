export type {
  Bot,
  BotCatalogue,
  BotDefinition,
  BotSetupContext,
  BotTaskContext,
  BotTaskHandlers,
  BotTasks,
  OpContext,
  OpHandlers,
  OpName,
  RunningBot,
} from './bot';
export { createBot } from './bot';
export type { AccountNeed, ActionOutcome, Chain, CommentInput, CustomJsonInput, KeyRole, TransferInput, VoteInput } from './chain';
export type { DeadLetterTasks } from './dead-letters';
export { deadLetterTasks } from './dead-letters';
export { Dispatcher } from './dispatcher';
export type { Mail } from './mail';
export type { DeadLetter } from './store';
export { BotStore } from './store';
export type { TestBot, TestBotOptions } from './testing';
export { startTestBot } from './testing';
