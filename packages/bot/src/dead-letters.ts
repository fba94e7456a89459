import type { Bus } from '@steem-bot/bus';
import { AppError, type CatalogueShape, type Logger, type TaskDef, withTid } from '@steem-bot/config';
import { z } from 'zod';

import { describe } from './describe';
import type { BotStore } from './store';

/** Runs an op's handler with its retries; resolves to the last failure, or undefined on success. */
export type RunHandler = (
  name: string,
  payload: Record<string, unknown>,
  position: number,
  tid: string,
  recheck: boolean,
) => Promise<{ error: unknown; attempts: number } | undefined>;

/**
 * Dead letters an operator asked to replay (`npm run bot -- replay NAME ID` marks them): polled,
 * run again through the handler with its retries, and marked replayed or failed again.
 */
export class DeadLetterReplayer {
  private readonly timer: NodeJS.Timeout;
  private replaying = false;

  constructor(
    private readonly store: BotStore,
    private readonly run: RunHandler,
    private readonly logger: Logger,
    /** Whether an error is the bot stopping (not a failure of the replay). */
    private readonly isStop: (err: unknown) => boolean,
    pollMs: number,
  ) {
    this.timer = setInterval(() => void this.replay(), pollMs);
    void this.replay();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Replay what is marked now (an operator's Replay), instead of at the next poll. */
  replayNow(): void {
    void this.replay();
  }

  private async replay(): Promise<void> {
    if (this.replaying) return;
    this.replaying = true;
    try {
      for (const letter of await this.store.deadLetters('replay')) {
        this.logger.info({ deadLetter: letter.id }, `replaying dead letter #${letter.id} (${letter.name} at ${letter.position})`);
        const failure = await this.run(letter.name, letter.payload, letter.position, letter.tid, true);
        if (failure) await this.store.replayFailed(letter.id, describe(failure.error), failure.attempts);
        else await this.store.replaySucceeded(letter.id);
        this.logger.info(`dead letter #${letter.id} ${failure ? 'failed again' : 'replayed'}`);
      }
    } catch (err) {
      if (!this.isStop(err)) this.logger.error({ err }, 'dead-letter replay failed');
    } finally {
      this.replaying = false;
    }
  }
}

const deadLetterId = z.object({ id: z.number().int().positive() });
const deadLetterReply = z.object({ id: z.number().int(), state: z.enum(['replay', 'replayed', 'dead', 'discarded']) });

/** The two tasks every bot handles, whatever its name (the console's Replay and Discard). */
export type DeadLetterTasks<N extends string> = {
  readonly [K in `${N}.deadletter.replay` | `${N}.deadletter.discard`]: TaskDef<typeof deadLetterId, typeof deadLetterReply>;
};

/**
 * The catalogue entries of bot `name`'s dead-letter tasks: `<name>.deadletter.replay` runs a dead
 * letter again, `<name>.deadletter.discard` drops it after logging its op at warn level; both
 * `{ id }`, replying `{ id, state }`. Declared by the SDK for every bot, not by `config`.
 */
export function deadLetterTasks<N extends string>(name: N): DeadLetterTasks<N> {
  const def = { payload: deadLetterId, reply: deadLetterReply };
  return { [`${name}.deadletter.replay`]: def, [`${name}.deadletter.discard`]: def } as DeadLetterTasks<N>;
}

type DeadLetterBus = Bus<CatalogueShape & { readonly tasks: DeadLetterTasks<'bot'> }>;

/** Handle `<bot>.deadletter.replay` and `.discard` (the bus's catalogue has them: see `deadLetterTasks`). */
export function registerDeadLetterTasks(
  name: string,
  bus: Bus<CatalogueShape>,
  store: BotStore,
  logger: Logger,
  replayNow: () => void,
): void {
  // The names are the bot's; their types are those of any bot's.
  const typed = bus as unknown as DeadLetterBus;
  const replay = `${name}.deadletter.replay` as 'bot.deadletter.replay';
  const discard = `${name}.deadletter.discard` as 'bot.deadletter.discard';
  typed.handle(replay, async ({ id }) => {
    const letter = await store.deadLetter(id);
    if (!letter) throw new AppError('ERR_BOT_NOT_FOUND', `bot ${name} has no dead letter #${id}`);
    if (!(await store.requestReplay(id))) return { id, state: letter.state };
    logger.info({ deadLetter: id }, `dead letter #${id} (${letter.name} at ${letter.position}) queued for replay`);
    replayNow();
    return { id, state: 'replay' as const };
  });
  typed.handle(discard, async ({ id }) => {
    const letter = await store.discardDeadLetter(id);
    if (!letter) throw new AppError('ERR_BOT_NOT_FOUND', `bot ${name} has no dead letter #${id} waiting (dead)`);
    withTid(letter.tid, () =>
      logger.warn(
        { deadLetter: id, pos: letter.position, op: letter.name, payload: letter.payload },
        `dead letter #${id} discarded by the operator`,
      ),
    );
    return { id, state: 'discarded' as const };
  });
}
