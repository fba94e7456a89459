import { randomUUID } from 'node:crypto';

import { backoffDelay, type Bus, type TransportSubscription } from '@steem-bot/bus';
import { type Catalogue, type Config, type Logger, withTid } from '@steem-bot/config';
import type { LookupFunction } from '@steem-bot/outbound';

import { checkStillWanted } from './check';
import { type Delivery, DeliveryError } from './delivery';
import type { FinishUpdate, MailerStore } from './mailer-store';
import { relay, stopRelays } from './relay';
import type { AttemptRow, Message } from './store';

export interface WorkerOptions {
  store: MailerStore;
  delivery: Delivery;
  /** The worker's bus (app `mailer-worker`): publishes email.sent/failed/skipped, hears email.queued. */
  bus: Bus<Catalogue>;
  config: Config<'mailer'>;
  logger: Logger;
  /** Injectable clock (tests). */
  now?: () => number;
  /** Resolves check_url host names (tests; default `dns.lookup`). */
  lookup?: LookupFunction;
}

// Sends in flight at once (the SMTP pool has five connections; the rest wait in its queue).
const MAX_IN_FLIGHT = 20;
// At most this many of them wait on a check_url, so slow check endpoints never hold up plain messages.
const MAX_CHECKS_IN_FLIGHT = 10;
// Sleep at most this long between looks at the store, as a safety net for a missed wake-up.
const MAX_SLEEP_MS = 5 * 60_000;
const CHECKPOINT_MS = 1_000;
// After a failed look at the store, the next one.
const STORE_RETRY_MS = 1_000;
// A finished send's record is retried this many times (a new pooled connection each time).
const FINISH_TRIES = 8;
const BREAKER_AFTER = 3;
const BREAKER_BASE_MS = 5_000;
const BREAKER_MAX_MS = 5 * 60_000;

/**
 * Delivers due messages: claims them atomically with a lease, asks check_url when set, sends,
 * and records every attempt. Sleeps until the next due message and wakes at once on email.queued.
 */
export class Worker {
  private readonly owner = `${process.pid}-${randomUUID().slice(0, 8)}`;
  private readonly now: () => number;
  private readonly log: Logger;
  private running = false;
  private wakeUp: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  private subscription: TransportSubscription | undefined;
  private unwatch: (() => Promise<void>) | undefined;
  private unreachableInRow = 0;
  private breakerUntil = 0;
  private breakerOpenings = 0;
  private lastPurge = 0;
  private lastCheckpoint = 0;
  private lastRenewal = 0;
  private readonly inFlight = new Set<Promise<void>>();
  /** The messages (seq) of the sends in flight: only their leases are renewed, only they are not claimed again. */
  private readonly sending = new Set<number>();
  private checksInFlight = 0;
  /** Aborted by `stop`: pending check_url calls end at once and their messages are given back. */
  private readonly stopping = new AbortController();

  constructor(private readonly options: WorkerOptions) {
    this.now = options.now ?? Date.now;
    this.log = options.logger.child({ component: 'worker' });
  }

  async start(): Promise<void> {
    this.running = true;
    await this.options.bus.serve();
    // What a crash left between a state change and its event goes out first.
    relay(this.options.store, 'mailer-worker', this.options.bus, this.log);
    this.subscription = this.options.bus.subscribe('mailer', { 'email.queued': () => this.wake() });
    // PostgreSQL: a NOTIFY of an enqueue on any host (the timer poll stays the safety net).
    this.unwatch = await this.options.store.watch(() => this.wake());
    this.loop = this.run();
  }

  /** Look at the store now (a new message, or the injectable clock moved). */
  wake(): void {
    this.wakeUp?.();
  }

  /** Stop claiming, finish the sends in flight, give back the leases. */
  async stop(): Promise<void> {
    this.running = false;
    this.stopping.abort();
    this.subscription?.close();
    await this.unwatch?.();
    this.wake();
    await this.loop;
    await stopRelays(this.options.store);
    try {
      const released = await this.options.store.release(this.owner);
      if (released > 0) this.log.info(`released ${released} leases`);
    } catch (err) {
      this.log.warn({ err }, 'could not give the leases back; they expire after MAILER_LEASE_MS');
    }
  }

  private async run(): Promise<void> {
    while (this.running) {
      let wait: number;
      try {
        wait = await this.pass();
      } catch (err) {
        // The store is out of reach (PostgreSQL restarting, a connection terminated): the sends
        // in flight go on; look again shortly.
        this.log.warn({ err }, `the store failed; trying again in ${STORE_RETRY_MS} ms`);
        wait = STORE_RETRY_MS;
      }
      if (wait > 0 && this.running) await this.sleep(wait);
    }
    await Promise.all(this.inFlight);
  }

  /** One look at the store: claim what is due; returns how long to sleep (0: look again at once). */
  private async pass(): Promise<number> {
    const { store, config } = this.options;
    const now = this.now();
    if (now - this.lastPurge > 3_600_000) {
      this.lastPurge = now;
      const purged = await store.purge(now, config.MAILER_KEEP_DAYS * 86_400_000, config.MAILER_KEY_KEEP_DAYS * 86_400_000);
      if (purged.messages > 0) this.log.info(`purged ${purged.messages} finished messages older than ${config.MAILER_KEEP_DAYS} days`);
      if (purged.keys > 0) this.log.info(`forgot ${purged.keys} idempotency keys older than ${config.MAILER_KEY_KEEP_DAYS} days`);
    }
    // The API leaves WAL checkpoints to the worker (see MailStore); every API write wakes the
    // worker (email.queued), so the WAL cannot grow unseen.
    if (now - this.lastCheckpoint >= CHECKPOINT_MS) {
      this.lastCheckpoint = now;
      await store.checkpoint();
    }
    // A send may outlast its lease (a slow SMTP server, a check): keep the leases of the sends
    // in flight fresh, so that no other worker takes them over while this one is alive.
    const renewEvery = config.MAILER_LEASE_MS / 3;
    if (this.inFlight.size > 0 && now - this.lastRenewal >= renewEvery) {
      this.lastRenewal = now;
      await store.renewLeases(this.owner, [...this.sending], now + config.MAILER_LEASE_MS);
    }
    let wait = MAX_SLEEP_MS;
    if (now < this.breakerUntil) {
      wait = this.breakerUntil - now;
    } else {
      // A pipeline: keep up to MAX_IN_FLIGHT sends going, claiming more as each one ends.
      // Half-open breaker: one probe message until a send succeeds.
      const limit = this.breakerOpenings > 0 ? 1 : MAX_IN_FLIGHT;
      const room = limit - this.inFlight.size;
      // Claim in batches (half the pipeline at a time): one transaction for many messages.
      if (room > 0 && (room >= limit / 2 || this.inFlight.size === 0)) {
        const checkRoom = MAX_CHECKS_IN_FLIGHT - this.checksInFlight;
        const claimed = await store.claimDue(this.owner, now, config.MAILER_LEASE_MS, room, checkRoom, [...this.sending]);
        for (const message of claimed) {
          const checked = message.request.check_url !== undefined;
          if (checked) this.checksInFlight++;
          this.sending.add(message.seq);
          const send: Promise<void> = withTid(message.tid, () => this.deliver(message))
            .catch((err: unknown) =>
              this.log.error({ err }, `${message.id}: delivery aborted; its lease expires and another worker tries again`),
            )
            .finally(() => {
              if (checked) this.checksInFlight--;
              this.sending.delete(message.seq);
              this.inFlight.delete(send);
              this.wake();
            });
          this.inFlight.add(send);
        }
        if (claimed.length === room) return 0; // there may be more due
        // With every check slot taken, checked messages wait for a slot (a finished send wakes the loop).
        const next = await store.nextDue([...this.sending], this.checksInFlight < MAX_CHECKS_IN_FLIGHT);
        if (next !== undefined) wait = Math.min(MAX_SLEEP_MS, Math.max(0, next - now));
      }
    }
    if (this.inFlight.size > 0) wait = Math.min(wait, renewEvery);
    return wait;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wakeUp = done;
    });
  }

  private async deliver(message: Message): Promise<void> {
    const { store, config, bus } = this.options;
    const started = this.now();
    const client = message.client === 'bus' ? undefined : await store.client(message.client);
    const base = { id: message.id, client: message.client };
    const finish = async (
      outcome: AttemptRow['outcome'],
      update: Omit<FinishUpdate, 'now' | 'durationMs'>,
      event?: { name: 'email.sent' | 'email.failed' | 'email.skipped'; payload: Record<string, unknown> },
    ): Promise<boolean> => {
      // The event is written with the state change (outbox) and relayed to the stream after.
      // A lost connection must not turn a sent message into a resend: try the record again (if
      // the first try committed after all, the lease is gone and the next one changes nothing).
      let done: boolean;
      for (let attempt = 1; ; attempt++) {
        try {
          done = await store.finish(
            message.seq,
            this.owner,
            outcome,
            { ...update, now: this.now(), durationMs: this.now() - started },
            event && { ...event, tid: message.tid },
          );
          break;
        } catch (err) {
          if (attempt >= FINISH_TRIES) throw err;
          this.log.warn({ err }, `${message.id}: could not record the outcome (${outcome}); trying again`);
          await new Promise((r) => setTimeout(r, 100 * attempt));
        }
      }
      if (done && event) relay(store, 'mailer-worker', bus, this.log);
      return done;
    };

    try {
      if (message.request.check_url) {
        const answer = await checkStillWanted({
          url: message.request.check_url,
          id: message.id,
          metadata: message.request.metadata,
          secret: client?.secret ?? '',
          timeoutMs: config.MAILER_CHECK_TIMEOUT_MS,
          maxBytes: config.MAILER_CHECK_MAX_BYTES,
          allow: config.MAILER_CHECK_ALLOW,
          now: this.now(),
          signal: this.stopping.signal,
          ...(this.options.lookup ? { lookup: this.options.lookup } : {}),
        });
        // Stopping: nothing was decided; `stop` gives the lease back and the next worker asks again.
        if ('stopped' in answer && answer.stopped) return;
        if ('reason' in answer) {
          throw new DeliveryError(`check_url: ${answer.reason}`, answer.refused === true, false, `check_url: ${answer.detail}`);
        }
        if (!answer.send) {
          if (await finish('skipped', { status: 'skipped', countsAsAttempt: false }, { name: 'email.skipped', payload: base })) {
            this.log.info(`${message.id} skipped: check_url says it is no longer needed`);
          }
          return;
        }
      }
      await this.options.delivery.send(message, message.request.from ?? config.MAILER_FROM);
      this.unreachableInRow = 0;
      this.breakerOpenings = 0;
    } catch (err) {
      const failure = err instanceof DeliveryError ? err : new DeliveryError('delivery failed', false, false, String(err));
      if (failure.unreachable && ++this.unreachableInRow >= BREAKER_AFTER) this.openBreaker();
      const attempts = message.attempts + 1;
      if (failure.permanent || attempts >= config.MAILER_MAX_ATTEMPTS) {
        const failed = { name: 'email.failed' as const, payload: { ...base, error: failure.message, attempts } };
        if (
          await finish(
            failure.permanent ? 'permanent' : 'temporary',
            { status: 'dead', error: failure.message, countsAsAttempt: true },
            failed,
          )
        ) {
          this.log.error(
            `${message.id} is dead after ${attempts} attempts: ${failure.detail} (npm run mailer -- retry ${message.id} to send it again)`,
          );
        }
        return;
      }
      const delay = backoffDelay(attempts - 1, config.MAILER_RETRY_BASE_MS, config.MAILER_RETRY_MAX_MS);
      await finish('temporary', { status: 'retrying', error: failure.message, nextAttemptAt: this.now() + delay, countsAsAttempt: true });
      this.log.warn(`${message.id} attempt ${attempts} failed: ${failure.detail}; retrying in ${Math.round(delay / 1000)} s`);
      return;
    }
    // Sent (outside the try: a failure to record it must not count as a failed delivery).
    const sent = { name: 'email.sent' as const, payload: { ...base, message_id: message.message_id, attempts: message.attempts + 1 } };
    if (await finish('sent', { status: 'sent', countsAsAttempt: true }, sent)) {
      this.log.info(`${message.id} sent (${message.message_id}) to ${message.request.to.join(', ')}`);
    }
  }

  private openBreaker(): void {
    const delay = Math.min(BREAKER_MAX_MS, BREAKER_BASE_MS * 2 ** this.breakerOpenings);
    this.breakerOpenings++;
    this.breakerUntil = this.now() + delay;
    this.unreachableInRow = 0;
    this.log.warn(
      `${this.options.delivery.description} unreachable ${BREAKER_AFTER} times in a row: pausing deliveries for ${delay / 1000} s, then probing with one message`,
    );
  }
}
