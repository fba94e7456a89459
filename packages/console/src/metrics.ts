import { Gauge, Registry } from 'prom-client';

import { StoredHistogramMetric } from './histogram';
import type { SystemStatus } from './status';

/** The series /metrics exposes, each set from the status collected for the scrape. */
export const METRIC_NAMES = [
  'steembot_app_up',
  'steembot_app_restarts_total',
  'steembot_app_memory_bytes',
  'steembot_app_uptime_seconds',
  'steembot_broadcaster_up',
  'steembot_broadcaster_current_block',
  'steembot_broadcaster_head_block',
  'steembot_broadcaster_irreversible_block',
  'steembot_broadcaster_lag_blocks',
  'steembot_broadcaster_lag_seconds',
  'steembot_broadcaster_node_state',
  'steembot_stream_head_position',
  'steembot_stream_floor_position',
  'steembot_stream_size_bytes',
  'steembot_stream_subscriber_lag_events',
  'steembot_bot_lag_blocks',
  'steembot_bot_dead_letters',
  'steembot_bot_dead_letters_total',
  'steembot_bot_checkpoint_block',
  'steembot_mailer_messages',
  'steembot_mailer_send_latency_seconds',
  'steembot_signer_actions',
  'steembot_webhooks_endpoint_enabled',
  'steembot_webhooks_deliveries_total',
  'steembot_webhooks_delivery_duration_seconds',
  'steembot_webhooks_endpoint_failed_attempts',
  'steembot_clock_next_fire_timestamp_seconds',
  'steembot_clock_ticks_total',
  'steembot_clock_fires_total',
  'steembot_clock_misses_total',
] as const;

type HistogramName = 'steembot_mailer_send_latency_seconds' | 'steembot_webhooks_delivery_duration_seconds';
type GaugeName = Exclude<(typeof METRIC_NAMES)[number], HistogramName>;

const NODE_STATES = ['healthy', 'open', 'stale', 'suspect'] as const;

/**
 * A registry whose gauges are refreshed from one status object. Counters that an app keeps
 * (PM2 restarts, webhook deliveries) are exposed as `_total` gauges set to the app's own count,
 * which is how the Prometheus docs advise mirroring a counter kept elsewhere.
 */
export class StatusMetrics {
  readonly registry = new Registry();
  private readonly g: Record<GaugeName, Gauge>;
  private readonly h: Record<HistogramName, StoredHistogramMetric>;

  constructor() {
    const gauge = (name: string, help: string, labelNames: string[] = []): Gauge =>
      new Gauge({ name, help, labelNames, registers: [this.registry] });
    this.g = {
      steembot_app_up: gauge('steembot_app_up', '1 when PM2 reports the app online.', ['app']),
      steembot_app_restarts_total: gauge('steembot_app_restarts_total', 'Restarts PM2 counted for the app.', ['app']),
      steembot_app_memory_bytes: gauge('steembot_app_memory_bytes', 'Resident memory of the app as PM2 measures it.', ['app']),
      steembot_app_uptime_seconds: gauge('steembot_app_uptime_seconds', 'Seconds since the app came online.', ['app']),
      steembot_broadcaster_up: gauge('steembot_broadcaster_up', '1 when the broadcaster answered its status call.'),
      steembot_broadcaster_current_block: gauge('steembot_broadcaster_current_block', 'Last block the broadcaster published.'),
      steembot_broadcaster_head_block: gauge('steembot_broadcaster_head_block', 'Head block the nodes agree on.'),
      steembot_broadcaster_irreversible_block: gauge('steembot_broadcaster_irreversible_block', 'Last irreversible block.'),
      steembot_broadcaster_lag_blocks: gauge('steembot_broadcaster_lag_blocks', 'Blocks between the head and the last published block.'),
      steembot_broadcaster_lag_seconds: gauge('steembot_broadcaster_lag_seconds', 'Seconds the last published block is behind the clock.'),
      steembot_broadcaster_node_state: gauge('steembot_broadcaster_node_state', '1 for the state each Steem node is in.', ['url', 'state']),
      steembot_stream_head_position: gauge('steembot_stream_head_position', "Position of the newest event of the app's stream.", ['app']),
      steembot_stream_floor_position: gauge('steembot_stream_floor_position', 'Retention floor of the stream.', ['app']),
      steembot_stream_size_bytes: gauge('steembot_stream_size_bytes', 'Bytes the stream holds.', ['app']),
      steembot_stream_subscriber_lag_events: gauge(
        'steembot_stream_subscriber_lag_events',
        'Positions between the stream head and a subscriber (as the publisher last recorded it).',
        ['app', 'subscriber'],
      ),
      steembot_bot_lag_blocks: gauge('steembot_bot_lag_blocks', "Blocks between the broadcaster's head and the bot's checkpoint.", ['bot']),
      steembot_bot_dead_letters: gauge('steembot_bot_dead_letters', 'Dead letters waiting for an operator.', ['bot']),
      steembot_bot_dead_letters_total: gauge(
        'steembot_bot_dead_letters_total',
        "Ops dead-lettered (their handler failed every try) since the bot's store was created.",
        ['bot'],
      ),
      steembot_bot_checkpoint_block: gauge(
        'steembot_bot_checkpoint_block',
        'Block of the last op the bot fully handled (its rate is the blocks handled per second).',
        ['bot'],
      ),
      steembot_mailer_messages: gauge('steembot_mailer_messages', 'Messages in the mailer store, by status.', ['status']),
      steembot_signer_actions: gauge('steembot_signer_actions', 'Chain actions in the signer store, by account and state.', [
        'account',
        'state',
      ]),
      steembot_webhooks_endpoint_enabled: gauge('steembot_webhooks_endpoint_enabled', '1 when the endpoint is enabled.', [
        'client',
        'endpoint',
      ]),
      steembot_webhooks_deliveries_total: gauge(
        'steembot_webhooks_deliveries_total',
        'Deliveries kept in the webhooks store, by outcome.',
        ['client', 'endpoint', 'outcome'],
      ),
      steembot_webhooks_endpoint_failed_attempts: gauge(
        'steembot_webhooks_endpoint_failed_attempts',
        'Failed tries of the event an endpoint is on (0 while it flows).',
        ['client', 'endpoint'],
      ),
      steembot_clock_next_fire_timestamp_seconds: gauge('steembot_clock_next_fire_timestamp_seconds', 'When a schedule fires next.', [
        'schedule',
        'task',
      ]),
      steembot_clock_ticks_total: gauge(
        'steembot_clock_ticks_total',
        'Ticks the clock store keeps (CLOCK_KEEP_DAYS), by schedule and state.',
        ['schedule', 'state'],
      ),
      steembot_clock_fires_total: gauge('steembot_clock_fires_total', 'Ticks a clock fired, as the clock store keeps them.', ['schedule']),
      steembot_clock_misses_total: gauge(
        'steembot_clock_misses_total',
        'Ticks not fired: reason "overlap" (the previous run not acknowledged yet), "down" (no clock claimed it within a minute).',
        ['schedule', 'reason'],
      ),
    };
    const histogram = (name: HistogramName, help: string): StoredHistogramMetric => {
      const metric = new StoredHistogramMetric(name, help);
      this.registry.registerMetric(metric.asMetric());
      return metric;
    };
    this.h = {
      steembot_mailer_send_latency_seconds: histogram(
        'steembot_mailer_send_latency_seconds',
        'Seconds from queued (or due, when sent later on purpose) to sent, over the sent messages the mailer store keeps.',
      ),
      steembot_webhooks_delivery_duration_seconds: histogram(
        'steembot_webhooks_delivery_duration_seconds',
        'Seconds one delivery try took (request to answer), over the tries the webhooks store keeps.',
      ),
    };
  }

  /** Replace every series with what `status` says (series of vanished apps disappear). */
  update(status: SystemStatus): void {
    for (const g of Object.values(this.g)) g.reset();
    for (const h of Object.values(this.h)) h.reset();
    const g = this.g;
    for (const a of status.apps) {
      g.steembot_app_up.set({ app: a.name }, a.status === 'online' ? 1 : 0);
      g.steembot_app_restarts_total.set({ app: a.name }, a.restarts);
      g.steembot_app_memory_bytes.set({ app: a.name }, a.memory_bytes);
      if (a.uptime_ms !== null) g.steembot_app_uptime_seconds.set({ app: a.name }, a.uptime_ms / 1000);
    }
    const b = status.broadcaster;
    g.steembot_broadcaster_up.set('error' in b ? 0 : 1);
    if (!('error' in b)) {
      const set = (gauge: Gauge, v: number | null): void => void (v !== null && gauge.set(v));
      set(g.steembot_broadcaster_current_block, b.current_block);
      set(g.steembot_broadcaster_head_block, b.head_block);
      set(g.steembot_broadcaster_irreversible_block, b.irreversible_block);
      set(g.steembot_broadcaster_lag_blocks, b.lag_blocks);
      set(g.steembot_broadcaster_lag_seconds, b.lag_seconds);
      for (const n of b.nodes)
        for (const s of NODE_STATES) g.steembot_broadcaster_node_state.set({ url: n.url, state: s }, n.state === s ? 1 : 0);
    }
    if (!('error' in status.streams))
      for (const s of status.streams) {
        g.steembot_stream_head_position.set({ app: s.app }, s.head);
        g.steembot_stream_floor_position.set({ app: s.app }, s.floor);
        g.steembot_stream_size_bytes.set({ app: s.app }, s.bytes);
        for (const c of s.subscribers)
          g.steembot_stream_subscriber_lag_events.set({ app: s.app, subscriber: c.names === null ? '*' : c.names.join(',') }, c.lag);
      }
    for (const bot of status.bots) {
      if (bot.lag_blocks !== null) g.steembot_bot_lag_blocks.set({ bot: bot.name }, bot.lag_blocks);
      g.steembot_bot_dead_letters.set({ bot: bot.name }, bot.dead_letters);
      g.steembot_bot_dead_letters_total.set({ bot: bot.name }, bot.dead_letters_total);
      if (bot.block !== null) g.steembot_bot_checkpoint_block.set({ bot: bot.name }, bot.block);
    }
    for (const [s, n] of Object.entries(status.mailer?.counts ?? {})) g.steembot_mailer_messages.set({ status: s }, n);
    if (status.mailer) this.h.steembot_mailer_send_latency_seconds.set({}, status.mailer.send_latency);
    for (const [account, states] of Object.entries(status.signer?.actions ?? {}))
      for (const [state, n] of Object.entries(states)) g.steembot_signer_actions.set({ account, state }, n);
    for (const e of status.webhooks ?? []) {
      g.steembot_webhooks_endpoint_enabled.set({ client: e.client, endpoint: e.id }, e.disabled ? 0 : 1);
      g.steembot_webhooks_endpoint_failed_attempts.set({ client: e.client, endpoint: e.id }, e.attempts);
      this.h.steembot_webhooks_delivery_duration_seconds.set({ client: e.client, endpoint: e.id }, e.duration);
      for (const [outcome, n] of Object.entries(e.deliveries))
        g.steembot_webhooks_deliveries_total.set({ client: e.client, endpoint: e.id, outcome }, n);
    }
    if (!('error' in status.clock))
      for (const c of status.clock) {
        if (c.next !== null) g.steembot_clock_next_fire_timestamp_seconds.set({ schedule: c.id, task: c.task }, Date.parse(c.next) / 1000);
        if (!c.figures) continue;
        g.steembot_clock_fires_total.set({ schedule: c.id }, c.figures.fires);
        g.steembot_clock_misses_total.set({ schedule: c.id, reason: 'overlap' }, c.figures.skipped);
        g.steembot_clock_misses_total.set({ schedule: c.id, reason: 'down' }, c.figures.missed);
      }
    for (const [schedule, states] of Object.entries(status.ticks?.counts ?? {}))
      for (const [state, n] of Object.entries(states)) g.steembot_clock_ticks_total.set({ schedule, state }, n);
  }

  /** The text exposition format. */
  text(): Promise<string> {
    return this.registry.metrics();
  }
}
