import type { Metric } from 'prom-client';

/**
 * A histogram computed from stored rows (the console keeps no counters of its own): cumulative
 * counts per upper bound `le` (seconds), their sum and count, over the rows the store keeps.
 */
export interface StoredHistogram {
  le: number[];
  /** counts[i]: rows whose value is at most le[i]. */
  counts: number[];
  sum: number;
  count: number;
}

/** Bounds of the mailer's send latency (queued or due -> sent), seconds. */
export const MAIL_LATENCY_LE = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];
/** Bounds of one webhook delivery's duration (request -> answer), seconds. */
export const WEBHOOK_DURATION_LE = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * The SELECT list that computes a histogram of `ms` (an SQL expression in milliseconds) in one
 * pass: `n`, `total_ms`, then `b0`, `b1`, ... (rows at most each bound). The same SQL for SQLite and
 * PostgreSQL (which has no SUM of a boolean).
 */
export function histogramColumns(ms: string, le: readonly number[]): string {
  return [
    `COUNT(*) AS n`,
    `COALESCE(SUM(${ms}), 0) AS total_ms`,
    ...le.map((b, i) => `COALESCE(SUM(CASE WHEN ${ms} <= ${b * 1000} THEN 1 ELSE 0 END), 0) AS b${i}`),
  ].join(', ');
}

/** The histogram of a row produced with `histogramColumns`. */
export function histogramOf(row: Record<string, number | null> | undefined, le: readonly number[]): StoredHistogram {
  return {
    le: [...le],
    counts: le.map((_, i) => Number(row?.[`b${i}`] ?? 0)),
    sum: Number(row?.total_ms ?? 0) / 1000,
    count: Number(row?.n ?? 0),
  };
}

type Labels = Record<string, string>;

/**
 * A prom-client metric of type histogram whose buckets are set from stored histograms (prom-client's
 * own Histogram only observes values one by one).
 */
export class StoredHistogramMetric {
  private series: Array<{ labels: Labels; h: StoredHistogram }> = [];

  constructor(
    readonly name: string,
    readonly help: string,
  ) {}

  set(labels: Labels, h: StoredHistogram): void {
    this.series.push({ labels, h });
  }

  reset(): void {
    this.series = [];
  }

  get(): Promise<{ name: string; help: string; type: 'histogram'; aggregator: 'sum'; values: unknown[] }> {
    const values = this.series.flatMap(({ labels, h }) => [
      ...h.le.map((le, i) => ({ metricName: `${this.name}_bucket`, labels: { ...labels, le }, value: h.counts[i] ?? 0 })),
      { metricName: `${this.name}_bucket`, labels: { ...labels, le: '+Inf' }, value: h.count },
      { metricName: `${this.name}_sum`, labels, value: h.sum },
      { metricName: `${this.name}_count`, labels, value: h.count },
    ]);
    return Promise.resolve({ name: this.name, help: this.help, type: 'histogram', aggregator: 'sum', values });
  }

  /** As prom-client's registry takes it. */
  asMetric(): Metric {
    return this as unknown as Metric;
  }
}
