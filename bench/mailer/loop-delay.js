'use strict';
// Preloaded into the mailer-api by bench:mailer (-r): its event-loop delay, written to
// LOOP_DELAY_FILE at exit, separates the server's own latency from the load generator's.
const { writeFileSync } = require('node:fs');
const { monitorEventLoopDelay } = require('node:perf_hooks');

const histogram = monitorEventLoopDelay({ resolution: 1 });
histogram.enable();
process.on('exit', () => {
  if (!process.env.LOOP_DELAY_FILE) return;
  const ms = (ns) => Number((ns / 1e6).toFixed(1));
  writeFileSync(
    process.env.LOOP_DELAY_FILE,
    JSON.stringify({ p50: ms(histogram.percentile(50)), p99: ms(histogram.percentile(99)), max: ms(histogram.max) }),
  );
});
