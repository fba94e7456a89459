'use strict';
/* global AbortController */
// npm run bench:console — the console's idle footprint inside the whole system: every app of
// pm2.json (plus a devnode and an SMTP sink) under a private PM2_HOME, then (1) 30 s with no page
// open, (2) 30 s with one page's event stream open. RSS and CPU of each app from /proc; baseline in
// the same run: a bare Node process doing nothing. Targets: console idle RSS <= 100 MB and CPU
// <= 2% of one core with a page open.
const { execFileSync, spawn } = require('node:child_process');
const { mkdtempSync, readFileSync, rmSync, writeFileSync } = require('node:fs');
const { createServer } = require('node:net');
const { tmpdir } = require('node:os');
const { join } = require('node:path');

const { ROOT, ecosystem } = require('../../scripts/system');

const SECONDS = Number(process.env.BENCH_SECONDS ?? 30);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const TICK = 100; // USER_HZ on Linux

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
const rssMb = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024;
const cpuTicks = (pid) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(f[11]) + Number(f[12]);
};

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'sbb-console-'));
  const env = { ...process.env, PM2_HOME: join(dir, 'pm2') };
  const pm2 = (...args) =>
    execFileSync(process.execPath, [join(ROOT, 'node_modules/pm2/bin/pm2'), ...args], { env, encoding: 'utf8', cwd: ROOT });
  const [devnodePort, smtpPort, mailerPort, webhooksPort, consolePort] = await Promise.all([1, 2, 3, 4, 5].map(freePort));
  const schedules = join(dir, 'clock.schedules.json');
  writeFileSync(schedules, JSON.stringify({ schedules: [{ id: 'bench', cron: '0 * * * * *', task: 'digest.report.send', payload: {} }] }));
  const system = ecosystem({
    dir,
    devnodePort,
    smtpPort,
    mailerPort,
    webhooksPort,
    schedules,
    withDevnode: true,
    devnodeArgs: ['--initial-blocks', '200', '--interval-ms', '3000', '--synthetic', '100000', '--ops-per-block', '5-30'],
    env: { CONSOLE_PORT: String(consolePort), PM2_HOME: join(dir, 'pm2'), LOG_LEVEL: 'warn' },
  });
  writeFileSync(join(dir, 'ecosystem.json'), JSON.stringify(system));
  const bare = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1 << 30)'], { stdio: 'ignore' });
  try {
    pm2('start', join(dir, 'ecosystem.json'));
    const url = `http://127.0.0.1:${consolePort}`;
    for (let i = 0; ; i++) {
      if (
        await fetch(`${url}/api/status`).then(
          (r) => r.ok,
          () => false,
        )
      )
        break;
      if (i > 150) throw new Error('the console did not answer');
      await sleep(200);
    }
    await sleep(5_000); // start-up settles
    const apps = () => JSON.parse(pm2('jlist').replace(/^[^[]*/, '')).map((a) => ({ name: a.name, pid: a.pid }));
    const measure = async () => {
      const list = apps();
      const before = new Map(list.map((a) => [a.name, cpuTicks(a.pid)]));
      const bareBefore = cpuTicks(bare.pid);
      await sleep(SECONDS * 1000);
      const rows = list.map((a) => ({
        name: a.name,
        rss: rssMb(a.pid),
        cpu: ((cpuTicks(a.pid) - before.get(a.name)) / TICK / SECONDS) * 100,
      }));
      rows.push({ name: '(bare node)', rss: rssMb(bare.pid), cpu: ((cpuTicks(bare.pid) - bareBefore) / TICK / SECONDS) * 100 });
      return rows;
    };
    const idle = await measure();
    const controller = new AbortController();
    const stream = await fetch(`${url}/events`, { signal: controller.signal });
    let frames = 0;
    const reader = stream.body.getReader();
    void (async () => {
      for (;;) {
        const { done, value } = await reader.read().catch(() => ({ done: true }));
        if (done) return;
        frames += (
          Buffer.from(value)
            .toString()
            .match(/event: status/g) ?? []
        ).length;
      }
    })();
    const open = await measure();
    controller.abort();
    const bareRss = idle.find((r) => r.name === '(bare node)').rss;
    const line = (r, o) =>
      `| ${r.name.padEnd(14)} | ${r.rss.toFixed(0).padStart(5)} | ${(r.rss / bareRss).toFixed(2).padStart(5)}x | ${r.cpu.toFixed(2).padStart(5)} | ${o.rss.toFixed(0).padStart(5)} | ${o.cpu.toFixed(2).padStart(5)} |`;
    console.log(`\n${new Date().toISOString()}  ${SECONDS} s per phase; ${frames} status frames pushed to the open page\n`);
    console.log('| app            | idle RSS MB | vs bare node | idle CPU % | RSS MB, page open | CPU %, page open |');
    console.log('| -------------- | ----- | ------ | ----- | ----- | ----- |');
    for (const r of idle)
      console.log(
        line(
          r,
          open.find((o) => o.name === r.name),
        ),
      );
    const sum = (rows) => rows.filter((r) => r.name !== '(bare node)').reduce((a, r) => a + r.rss, 0);
    console.log(`| **all apps**   | ${sum(idle).toFixed(0)} |        |       | ${sum(open).toFixed(0)} |       |`);
    const c = idle.find((r) => r.name === 'console');
    const co = open.find((r) => r.name === 'console');
    console.log(`\nconsole idle RSS ${c.rss.toFixed(0)} MB (target <= 100): ${c.rss <= 100 ? 'met' : 'missed'}`);
    console.log(`console CPU with a page open ${co.cpu.toFixed(2)}% (target <= 2%): ${co.cpu <= 2 ? 'met' : 'missed'}`);
  } finally {
    bare.kill();
    try {
      pm2('kill');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
