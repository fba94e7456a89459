declare module 'parse-prometheus-text-format' {
  /** One metric family of the Prometheus text format. */
  interface MetricFamily {
    name: string;
    help: string;
    type: string;
    metrics: Array<{ labels?: Record<string, string>; value?: string; buckets?: Record<string, string> }>;
  }
  function parsePrometheusTextFormat(text: string): MetricFamily[];
  export = parsePrometheusTextFormat;
}
