import type { SystemStatus } from './status';

/** A duration as the operator reads it: 42s, 7m, 3.5h, 12d. */
export function duration(ms: number): string {
  if (ms < 60_000) return `${Math.round(ms / 1000)}s`;
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)}m`;
  if (ms < 172_800_000) return `${(ms / 3_600_000).toFixed(1)}h`;
  return `${Math.round(ms / 86_400_000)}d`;
}

/** The status as the one text screen of `npm run status`. */
export function formatStatus(status: SystemStatus): string {
  const out: string[] = ['APPS'];
  if (status.apps.length === 0) out.push('  (PM2 runs no apps: npm start, or npm run demo)');
  for (const a of status.apps)
    out.push(
      `  ${a.name.padEnd(16)} ${a.status.padEnd(9)} restarts ${String(a.restarts).padEnd(4)} ${String(Math.round(a.memory_bytes / 1048576)).padStart(4)} MB  up ${a.uptime_ms === null ? '-' : duration(a.uptime_ms)}`,
    );
  const b = status.broadcaster;
  out.push('', 'BROADCASTER');
  if ('error' in b) out.push(`  not answering: ${b.error}`);
  else {
    out.push(
      `  block ${b.current_block}  head ${b.head_block}  LIB ${b.irreversible_block}  lag ${b.lag_blocks} blocks (${b.lag_seconds === null ? '?' : duration(b.lag_seconds * 1000)} behind the clock)  mode ${b.mode}`,
    );
    if (b.problem) out.push(`  not streaming: ${b.problem}`);
    for (const n of b.nodes) out.push(`    ${n.state.padEnd(8)} ${n.url}${n.lastError ? `  (${n.lastError})` : ''}`);
  }
  out.push('', 'STREAMS');
  if ('error' in status.streams) out.push(`  ${status.streams.error}`);
  else {
    if (status.streams.length === 0) out.push('  (no stream yet)');
    for (const s of status.streams) {
      out.push(`  ${s.app.padEnd(16)} head ${s.head}  floor ${s.floor}  ${(s.bytes / 1048576).toFixed(1)} MB`);
      for (const c of s.subscribers)
        out.push(
          `    ${(c.names === null ? 'plain client (every event)' : c.names.join(',')).slice(0, 40).padEnd(40)} at ${c.pos}  lag ${c.lag}`,
        );
    }
  }
  out.push('', 'BOTS');
  if (status.bots.length === 0) out.push('  (no bot yet)');
  for (const bot of status.bots)
    out.push(`  ${bot.name.padEnd(16)} block ${bot.block ?? '-'}  lag ${bot.lag_blocks ?? '?'} blocks  dead letters ${bot.dead_letters}`);
  out.push('', 'MAILER');
  const m = status.mailer;
  out.push(
    m
      ? `  ${
          Object.entries(m.counts)
            .map(([k, n]) => `${k} ${n}`)
            .join('  ') || 'no messages'
        }  oldest due ${m.oldest_due ?? '-'}  next due ${m.next_due ?? '-'}`
      : '  no store yet',
  );
  out.push('', 'SIGNER');
  const s = status.signer;
  if (!s || Object.keys(s.actions).length === 0) out.push('  no actions yet');
  else
    for (const [account, states] of Object.entries(s.actions))
      out.push(
        `  ${account.padEnd(16)} ${Object.entries(states)
          .map(([k, n]) => `${k} ${n}`)
          .join('  ')}`,
      );
  const retryable = s?.failed.filter((f) => f.retryable).length ?? 0;
  if (s && s.failed.length > 0) out.push(`  failed: ${s.failed.length} shown, ${retryable} retryable (the console's Retry)`);
  out.push('', 'WEBHOOKS');
  if (!status.webhooks || status.webhooks.length === 0) out.push('  no endpoints');
  else
    for (const e of status.webhooks)
      out.push(
        `  ${e.client}/${e.id}  ${e.disabled ? `disabled (${e.disabled_reason ?? '?'})` : e.attempts > 0 ? `retrying (${e.attempts} failed tries)` : 'enabled'}  ${e.url}`,
      );
  out.push('', 'CLOCK');
  if ('error' in status.clock) out.push(`  ${status.clock.error}`);
  else
    for (const c of status.clock)
      out.push(
        `  ${c.id.padEnd(20)} ${c.task.padEnd(24)} next ${c.next}${c.figures ? `  fired ${c.figures.fires}  skipped ${c.figures.skipped}  missed ${c.figures.missed}` : ''}`,
      );
  for (const t of status.ticks?.recent.slice(0, 3) ?? []) out.push(`    ${t.tick}  ${t.schedule}  ${t.state} (${t.owner})`);
  return `${out.join('\n')}\n`;
}
