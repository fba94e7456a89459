import { AppError } from '@steem-bot/config';

/** How a try that outlived its deadline ended, once it did: undefined when it succeeded. */
export type LateOutcome = { error: unknown } | undefined;

/**
 * Run one try of a handler with a deadline. Past `timeoutMs` the try rejects with
 * ERR_BOT_HANDLER_TIMEOUT and its signal is aborted. A promise cannot be cancelled: a handler
 * that ignores the signal keeps running, unawaited, and `onLate` hears how it ended (so a late
 * rejection is never unhandled).
 */
export async function withDeadline<T>(
  run: (signal: AbortSignal) => T | Promise<T>,
  timeoutMs: number,
  onLate: (outcome: LateOutcome) => void,
): Promise<T> {
  const controller = new AbortController();
  const work = Promise.resolve().then(() => run(controller.signal));
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      const err = new AppError('ERR_BOT_HANDLER_TIMEOUT', `the handler did not settle within ${timeoutMs} ms`, { data: { timeoutMs } });
      controller.abort(err);
      reject(err);
    }, timeoutMs);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
    if (controller.signal.aborted)
      work.then(
        () => onLate(undefined),
        (error: unknown) => onLate({ error }),
      );
  }
}
