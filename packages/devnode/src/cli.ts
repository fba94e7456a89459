#!/usr/bin/env node
import { parseArgs } from 'node:util';

import { createLogger } from '@steem-bot/config';

import { DevNode } from './devnode';
import { type FaultSpec, parseFault } from './faults';
import { type SmtpFault, SmtpSink } from './smtp-sink';

const USAGE = `steem-devnode [--port 8090] [--interval-ms 3000] [--synthetic N] [--seed 1]
              [--ops-per-block 50-200] [--lib-distance 15] [--initial-blocks 1] [--fault SPEC]...
steem-devnode smtp [--port 2525] [--dir var/smtp-sink] [--fault tempfail|reject|drop|slow]

Fault SPEC: kind[,rate=0..1][,method=TEXT][,account=NAME][,fromBlock=N][,forMs=N][,ms=N][,depth=N]
  kinds: latency timeout http502 http503 http429 rpc-error jussi-error null-block
         wrong-block malformed reset stale fork
         drop accept-timeout accept-reset expire rc duplicate   (broadcasts)
  e.g.   --fault http502,rate=0.3,method=get_block   --fault stale,fromBlock=1000100,forMs=60000
         --fault accept-reset,rate=0.2   --fault rc,account=alice,forMs=30000`;

const log = createLogger({
  app: 'devnode',
  level: process.env.LOG_LEVEL ?? 'info',
  format: process.env.LOG_FORMAT === 'json' ? 'json' : 'pretty',
});

async function main(argv: string[]): Promise<void> {
  const smtp = argv[0] === 'smtp';
  const { values } = parseArgs({
    args: smtp ? argv.slice(1) : argv,
    options: {
      port: { type: 'string' },
      'interval-ms': { type: 'string' },
      synthetic: { type: 'string' },
      seed: { type: 'string' },
      'ops-per-block': { type: 'string' },
      'lib-distance': { type: 'string' },
      'initial-blocks': { type: 'string' },
      fault: { type: 'string', multiple: true },
      dir: { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const num = (name: string, v: string | undefined, fallback: number): number => {
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--${name} expects a whole number, got "${v}"`);
    return n;
  };
  let stop: () => Promise<void>;
  if (smtp) {
    const fault = (values.fault?.[0] ?? 'none') as SmtpFault;
    if (!['none', 'tempfail', 'reject', 'drop', 'slow'].includes(fault)) throw new Error(`--fault: one of tempfail, reject, drop, slow`);
    const sink = await SmtpSink.start({ port: num('port', values.port, 2525), dir: values.dir ?? 'var/smtp-sink', fault });
    log.info({ port: sink.port, dir: values.dir ?? 'var/smtp-sink', fault }, `SMTP sink listening on 127.0.0.1:${sink.port}`);
    stop = () => sink.stop();
  } else {
    const [min, max] = (values['ops-per-block'] ?? '50-200').split('-').map(Number) as [number, number];
    if (!(min >= 0 && max >= min)) throw new Error(`--ops-per-block expects MIN-MAX, got "${values['ops-per-block']}"`);
    const faults: FaultSpec[] = (values.fault ?? []).map(parseFault);
    const node = await DevNode.start({
      port: num('port', values.port, 8090),
      intervalMs: num('interval-ms', values['interval-ms'], 3000),
      synthetic: num('synthetic', values.synthetic, 0),
      seed: num('seed', values.seed, 1),
      libDistance: num('lib-distance', values['lib-distance'], 15),
      initialBlocks: Math.max(1, num('initial-blocks', values['initial-blocks'], 1)),
      opsPerBlock: [min, max],
      faults,
    });
    log.info(
      { url: node.url, first: node.chain.first, last: node.chain.last, faults },
      `Steem devnode serving blocks ${node.chain.first}-${node.chain.last} at ${node.url}`,
    );
    stop = () => node.stop();
  }
  process.send?.('ready');
  const shutdown = (): void => void stop().then(() => process.exit(0));
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

main(process.argv.slice(2)).catch((err: Error) => {
  process.stderr.write(`steem-devnode: ${err.message}\n\n${USAGE}\n`);
  process.exit(2);
});
