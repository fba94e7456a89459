'use strict';
// Benchmark subscriber: every op type from the broadcaster, from the start block on; reports the
// time the last block's block.applied arrived and how many ops came, in order.
const { catalogue, chainOpNames, createLogger, loadConfig } = require('@steem-bot/config');
const { createIpcBus } = require('@steem-bot/bus');

const LAST = Number(process.env.LAST_BLOCK);
const config = loadConfig();
const bus = createIpcBus('bench-sub', catalogue, config, createLogger({ app: 'bench-sub', level: 'warn', format: 'json' }));
let ops = 0;
let lastPos = 0;
let disorder = 0;
const onOp = (_p, ctx) => {
  if (ctx.pos <= lastPos) disorder++;
  lastPos = ctx.pos;
  ops++;
};
const handlers = Object.fromEntries(chainOpNames.map((n) => [n, onOp]));
handlers['block.applied'] = (p) => {
  if (p.block_num === LAST) process.send({ done: true, ops, disorder, at: Date.now() });
};
bus.subscribe('broadcaster', handlers, { from: Number(process.env.FROM) }).ready.then(() => process.send('ready'));
