import type { BotStore as BotStoreInterface } from './store';
import { SqliteBotFile } from './store-sqlite';

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
export { migrateBotStore } from './migrate';
export { botStoreFile, openBotStore } from './open-store';
export type { BotState, DeadLetter, Json, NewDeadLetter } from './store';
export { PostgresBotStore } from './store-postgres';
export { SqliteBotFile, SqliteBotStore } from './store-sqlite';
export type { TestBot, TestBotOptions } from './testing';
export { startTestBot } from './testing';

/**
 * As a type, a bot's async store (SQLite or PostgreSQL; see `openBotStore`). As a value, the
 * synchronous `SqliteBotFile`, kept so that scripts and tests seed or read a bot's SQLite file
 * as before (`new BotStore(file).saveCheckpoint(pos)`).
 */
export const BotStore = SqliteBotFile;
export type BotStore = BotStoreInterface;
