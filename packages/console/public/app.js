// The console page: renders the status the server pushes by server-sent events (no polling);
// actions post to /api/actions with the operator's token in a header. Every value is inserted
// as text (never as HTML).
/* global document, window, location, sessionStorage, EventSource, Node, CSS */
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const VIEWS = ['overview', 'streams', 'bots', 'mailer', 'signer', 'webhooks', 'clock', 'trace'];
  let status = null;
  let history = [];
  const TOKEN_KEY = 'steembot-console-token';

  /** h('td', {class: 'num'}, 'text', child, ...) */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat(Infinity)) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : String(c));
    return el;
  }
  const fmt = (n) => (n === null || n === undefined ? '–' : typeof n === 'number' ? n.toLocaleString('en') : String(n));
  const mb = (bytes) => `${(bytes / 1048576).toFixed(1)} MB`;
  function dur(ms) {
    if (ms === null || ms === undefined) return '–';
    if (ms < 60e3) return `${Math.round(ms / 1e3)}s`;
    if (ms < 3600e3) return `${Math.round(ms / 60e3)}m`;
    if (ms < 172800e3) return `${(ms / 3600e3).toFixed(1)}h`;
    return `${Math.round(ms / 86400e3)}d`;
  }
  const stateCls = (s) =>
    ['online', 'healthy', 'sent', 'confirmed', 'enabled', 'acked', 'replayed'].includes(s)
      ? 'ok'
      : ['errored', 'stopped', 'open', 'dead', 'failed', 'disabled'].includes(s)
        ? 'bad'
        : 'warn';
  const state = (s) => h('span', { class: `state ${stateCls(s)}` }, s);
  function table(caption, heads, rows, empty) {
    if (rows.length === 0) return h('p', { class: 'muted' }, empty);
    return h(
      'div',
      // A table wider than the screen scrolls on its own; as a named region it is reachable by keyboard.
      { class: 'scroll', role: 'region', 'aria-label': caption, tabindex: 0 },
      h(
        'table',
        {},
        h('caption', {}, caption),
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            heads.map((t) => h('th', { scope: 'col' }, t)),
          ),
        ),
        h('tbody', {}, rows),
      ),
    );
  }
  const card = (label, value, extra) =>
    h(
      'div',
      { class: 'card' },
      h('div', { class: 'l' }, label),
      h('div', { class: 'n' }, value),
      extra ? h('div', { class: 'l' }, extra) : null,
    );

  function chart(label, points) {
    const w = 640,
      hgt = 90;
    if (points.length < 2) return h('p', { class: 'muted' }, `${label}: collecting…`);
    const xs = points.map((p) => p[0]),
      ys = points.map((p) => p[1]);
    const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
    const [y0, y1] = [Math.min(0, ...ys), Math.max(1, ...ys)];
    const pts = points
      .map(
        ([x, y]) =>
          `${(((x - x0) / (x1 - x0 || 1)) * (w - 8) + 4).toFixed(1)},${(hgt - 4 - ((y - y0) / (y1 - y0 || 1)) * (hgt - 8)).toFixed(1)}`,
      )
      .join(' ');
    const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
    svg.setAttribute('class', 'chart');
    svg.setAttribute('viewBox', `0 0 ${w} ${hgt}`);
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', `${label}: latest ${fmt(ys.at(-1))}, highest ${fmt(Math.max(...ys))}`);
    const line = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
    line.setAttribute('points', pts);
    svg.append(line);
    return h('figure', {}, h('figcaption', {}, `${label} (latest ${fmt(ys.at(-1))}, highest ${fmt(Math.max(...ys))})`), svg);
  }

  function notice(text, ok) {
    const n = $('notice');
    n.textContent = text;
    n.className = ok ? 'ok' : '';
    n.hidden = false;
  }

  async function act(body, button) {
    const token = $('token').value.trim();
    if (!token) return notice('Enter the action token (CONSOLE_TOKEN) first.');
    sessionStorage.setItem(TOKEN_KEY, token);
    button.disabled = true;
    try {
      const res = await fetch('/api/actions', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-console-token': token },
        body: JSON.stringify(body),
      });
      const reply = await res.json();
      if (res.ok) notice(`${body.action} ${target(body)}: done (${JSON.stringify(reply.reply)})`, true);
      else notice(`${body.action} refused: ${reply.error.message} (${reply.error.code})`);
    } catch (err) {
      notice(`${body.action} failed: ${err.message}`);
    } finally {
      button.disabled = false;
    }
  }
  const target = (body) => (body.bot ? `${body.bot} #${body.id}` : body.client ? `${body.client}/${body.endpoint}` : body.id);
  const actionButton = (label, body, secondary) =>
    h(
      'button',
      {
        type: 'button',
        class: secondary ? 'secondary' : null,
        'data-key': `${body.action}:${target(body)}`,
        onclick: (e) => act(body, e.currentTarget),
      },
      label,
    );

  // Sections ---------------------------------------------------------------------------------
  function apps(s) {
    return [
      h('h2', { id: 'apps-h' }, 'Apps'),
      table(
        'PM2 state of every app',
        ['App', 'State', 'Restarts', 'Memory', 'Uptime', 'PID', 'Runs on'],
        s.apps.map((a) =>
          h(
            'tr',
            { 'data-app': a.name },
            h('th', { scope: 'row' }, a.name),
            h('td', {}, state(a.status)),
            h('td', { class: 'num' }, a.restarts),
            h('td', { class: 'num' }, mb(a.memory_bytes)),
            h('td', {}, dur(a.uptime_ms)),
            h('td', { class: 'num' }, fmt(a.pid)),
            h('td', {}, `${a.host} · ${a.transport} · ${a.store}`),
          ),
        ),
        'PM2 runs no apps (npm start, or npm run demo).',
      ),
    ];
  }
  function broadcaster(s) {
    const b = s.broadcaster;
    const out = [h('h2', {}, 'Broadcaster')];
    if (b.error) return [...out, h('p', {}, state('not answering'), ' ', b.error)];
    out.push(
      h(
        'div',
        { class: 'cards' },
        card('Current block', fmt(b.current_block), `mode ${b.mode}`),
        card('Head', fmt(b.head_block)),
        card('LIB', fmt(b.irreversible_block)),
        card('Lag', `${fmt(b.lag_blocks)} blocks`, b.lag_seconds === null ? null : `${dur(b.lag_seconds * 1000)} behind the clock`),
      ),
    );
    if (b.problem) out.push(h('p', {}, state('not streaming'), ' ', b.problem));
    out.push(
      table(
        'Steem nodes',
        ['Node', 'State', 'Head', 'Failures', 'Last error'],
        b.nodes.map((n) =>
          h(
            'tr',
            {},
            h('td', {}, h('code', {}, n.url)),
            h('td', {}, state(n.state)),
            h('td', { class: 'num' }, fmt(n.head)),
            h('td', { class: 'num' }, n.failures),
            h('td', { class: 'err' }, n.lastError || '–'),
          ),
        ),
        'No node.',
      ),
    );
    const blocks = [];
    for (let i = 1; i < history.length; i++) {
      const [a, c] = [history[i - 1], history[i]];
      if (a.block !== null && c.block !== null && c.t > a.t) blocks.push([c.t, ((c.block - a.block) * 60000) / (c.t - a.t)]);
    }
    out.push(chart('Blocks published per minute, last hour', blocks));
    return out;
  }
  function streams(s) {
    const out = [h('h2', {}, 'Streams')];
    if (s.streams.error) return [...out, h('p', {}, s.streams.error)];
    out.push(
      table(
        'Each publishing app’s stream',
        ['App', 'Head', 'Floor', 'Size'],
        s.streams.map((st) =>
          h(
            'tr',
            {},
            h('th', { scope: 'row' }, st.app),
            h('td', { class: 'num' }, fmt(st.head)),
            h('td', { class: 'num' }, fmt(st.floor)),
            h('td', { class: 'num' }, mb(st.bytes)),
          ),
        ),
        'No stream yet.',
      ),
    );
    const rows = s.streams.flatMap((st) =>
      st.subscribers.map((c) =>
        h(
          'tr',
          {},
          h('td', {}, st.app),
          h(
            'td',
            {},
            c.names === null
              ? 'plain client (every event)'
              : c.names.slice(0, 6).join(', ') + (c.names.length > 6 ? ` +${c.names.length - 6}` : ''),
          ),
          h('td', { class: 'num' }, fmt(c.pos)),
          h('td', { class: 'num' }, fmt(c.lag)),
        ),
      ),
    );
    out.push(
      table('Subscribers (as the publisher last recorded them)', ['Stream', 'Subscribes to', 'Position', 'Lag'], rows, 'No subscriber.'),
    );
    return out;
  }
  function bots(s, detail) {
    const out = [h('h2', {}, 'Bots')];
    out.push(
      table(
        'Each bot’s checkpoint and lag',
        ['Bot', 'Block', 'Lag (blocks)', 'Dead letters', 'Dead-lettered ever'],
        s.bots.map((b) =>
          h(
            'tr',
            {},
            h('th', { scope: 'row' }, b.name),
            h('td', { class: 'num' }, fmt(b.block)),
            h('td', { class: 'num' }, fmt(b.lag_blocks)),
            h('td', { class: 'num' }, b.dead_letters),
            h('td', { class: 'num' }, fmt(b.dead_letters_total)),
          ),
        ),
        'No bot yet.',
      ),
    );
    if (!detail) return out;
    const lags = {};
    for (const smp of history)
      for (const [name, lag] of Object.entries(smp.bots)) if (lag !== null) (lags[name] = lags[name] || []).push([smp.t, lag]);
    for (const [name, pts] of Object.entries(lags)) out.push(chart(`${name}: lag in blocks, last hour`, pts));
    const handled = {};
    for (let i = 1; i < history.length; i++) {
      const [a, c] = [history[i - 1], history[i]];
      for (const [name, block] of Object.entries(c.botBlocks || {})) {
        const before = a.botBlocks ? a.botBlocks[name] : null;
        if (block !== null && before !== null && before !== undefined && c.t > a.t)
          (handled[name] = handled[name] || []).push([c.t, ((block - before) * 60000) / (c.t - a.t)]);
      }
    }
    for (const [name, pts] of Object.entries(handled)) out.push(chart(`${name}: blocks handled per minute, last hour`, pts));
    for (const b of s.bots) {
      out.push(h('h3', {}, `Dead letters of ${b.name}`));
      out.push(
        table(
          `Ops whose handler failed every try (${b.dead_letters})`,
          ['#', 'Op', 'Position', 'Error', 'TID', 'Tries', 'State', 'Actions'],
          b.dead.map((d) =>
            h(
              'tr',
              { 'data-dead': `${b.name}:${d.id}` },
              h('td', { class: 'num' }, d.id),
              h('td', {}, d.name),
              h('td', { class: 'num' }, d.position),
              h('td', { class: 'err' }, d.error),
              h('td', {}, h('code', {}, d.tid)),
              h('td', { class: 'num' }, d.attempts),
              h('td', {}, state(d.state)),
              h(
                'td',
                {},
                d.state === 'dead'
                  ? h(
                      'div',
                      { class: 'actions' },
                      actionButton('Replay', { action: 'replay', bot: b.name, id: d.id }),
                      actionButton('Discard', { action: 'discard', bot: b.name, id: d.id }, true),
                    )
                  : 'queued',
              ),
            ),
          ),
          'None.',
        ),
      );
    }
    return out;
  }
  function mailer(s, detail) {
    const m = s.mailer;
    const out = [h('h2', {}, 'Mailer')];
    if (!m) return [...out, h('p', { class: 'muted' }, 'No mailer store yet.')];
    out.push(
      h(
        'div',
        { class: 'cards' },
        ...Object.entries(m.counts).map(([k, n]) => card(k, fmt(n))),
        card(
          'Next due',
          m.next_due ? new Date(m.next_due).toLocaleTimeString('en-GB') : '–',
          m.oldest_due ? `oldest due ${m.oldest_due}` : null,
        ),
        card(
          'Mean send latency',
          m.send_latency.count ? dur(Math.round((m.send_latency.sum / m.send_latency.count) * 1000)) : '–',
          `over ${fmt(m.send_latency.count)} sent`,
        ),
      ),
    );
    if (!detail) return out;
    const row = (msg, buttons) =>
      h(
        'tr',
        { 'data-message': `${msg.status}:${msg.id}` },
        h('td', {}, h('code', {}, msg.id)),
        h('td', {}, msg.client),
        h('td', {}, state(msg.status)),
        h('td', { class: 'num' }, msg.attempts),
        h('td', { class: 'err' }, msg.last_error || '–'),
        h('td', {}, h('code', {}, msg.tid)),
        h('td', {}, buttons),
      );
    out.push(
      table(
        'Dead messages',
        ['Message', 'Client', 'Status', 'Attempts', 'Last error', 'TID', 'Actions'],
        m.dead.map((msg) => row(msg, actionButton('Retry', { action: 'retry', id: msg.id }))),
        'No dead message.',
      ),
    );
    out.push(
      table(
        'Waiting to be sent',
        ['Message', 'Client', 'Status', 'Attempts', 'Last error', 'TID', 'Actions'],
        m.pending.map((msg) => row(msg, actionButton('Cancel', { action: 'cancel', id: msg.id }, true))),
        'Nothing waiting.',
      ),
    );
    return out;
  }
  function signer(s) {
    const out = [h('h2', {}, 'Signer')];
    if (!s.signer) return [...out, h('p', { class: 'muted' }, 'No signer store yet.')];
    out.push(
      table(
        'Actions by state per account',
        ['Account', 'States'],
        Object.entries(s.signer.actions).map(([a, st]) =>
          h(
            'tr',
            {},
            h('th', { scope: 'row' }, a),
            h(
              'td',
              {},
              Object.entries(st)
                .map(([k, n]) => `${k} ${n}`)
                .join(', '),
            ),
          ),
        ),
        'No action yet.',
      ),
    );
    out.push(
      table(
        'Recent actions',
        ['Kind', 'Account', 'State', 'Transaction', 'Block', 'Reason'],
        s.signer.recent.map((r) =>
          h(
            'tr',
            {},
            h('td', {}, r.kind),
            h('td', {}, r.account),
            h('td', {}, state(r.state)),
            h('td', {}, r.trx_id ? h('code', {}, r.trx_id) : '–'),
            h('td', { class: 'num' }, fmt(r.block_num)),
            h('td', { class: 'err' }, r.reason || '–'),
          ),
        ),
        'None.',
      ),
    );
    out.push(
      table(
        'Failed actions (Retry where the signer allows it)',
        ['Kind', 'Account', 'Key', 'Reason', 'TID', 'Failed at', 'Actions'],
        s.signer.failed.map((f) =>
          h(
            'tr',
            { 'data-failed': f.id },
            h('td', {}, f.kind),
            h('td', {}, f.account),
            h('td', {}, h('code', {}, f.key)),
            h('td', { class: 'err' }, f.reason || '–'),
            h('td', {}, h('code', {}, f.tid)),
            h('td', {}, f.failed_at),
            h('td', {}, f.retryable ? actionButton('Retry', { action: 'retry-action', id: f.id }) : 'not retryable'),
          ),
        ),
        'No failed action.',
      ),
    );
    return out;
  }
  function webhooks(s) {
    const out = [h('h2', {}, 'Webhooks')];
    if (!s.webhooks) return [...out, h('p', { class: 'muted' }, 'No webhooks store yet.')];
    out.push(
      table(
        'Endpoints',
        ['Client', 'Endpoint', 'URL', 'State', 'Deliveries', 'Last try', 'Actions'],
        s.webhooks.map((e) => {
          const last = e.last[0];
          return h(
            'tr',
            { 'data-endpoint': `${e.client}/${e.id}` },
            h('td', {}, e.client),
            h('td', {}, e.id),
            h('td', {}, h('code', {}, e.url)),
            h(
              'td',
              {},
              state(e.disabled ? 'disabled' : e.attempts > 0 ? 'retrying' : 'enabled'),
              e.disabled_reason
                ? ` (${e.disabled_reason})`
                : e.attempts > 0
                  ? ` (${e.attempts} failed tries since ${e.failing_since})`
                  : '',
            ),
            h(
              'td',
              {},
              Object.entries(e.deliveries)
                .map(([k, n]) => `${k} ${n}`)
                .join(', ') || '–',
            ),
            h(
              'td',
              { class: last && last.error ? 'err' : null },
              last ? `${last.at} ${last.type} ${last.position}: ${last.status ?? 'no answer'}${last.error ? ` (${last.error})` : ''}` : '–',
            ),
            h('td', {}, e.disabled ? actionButton('Enable', { action: 'enable', client: e.client, endpoint: e.id }) : '–'),
          );
        }),
        'No endpoint registered.',
      ),
    );
    return out;
  }
  function clock(s) {
    const out = [h('h2', {}, 'Clock')];
    if (s.clock.error) return [...out, h('p', {}, s.clock.error)];
    out.push(
      table(
        'Schedules',
        ['Schedule', 'Task', 'Next fire', 'Fired', 'Skipped (overlap)', 'Missed'],
        s.clock.map((c) =>
          h(
            'tr',
            { 'data-schedule': c.id },
            h('th', { scope: 'row' }, c.id),
            h('td', {}, h('code', {}, c.task)),
            h('td', {}, c.next || '–'),
            h('td', { class: 'num' }, fmt(c.figures && c.figures.fires)),
            h('td', { class: 'num' }, fmt(c.figures && c.figures.skipped)),
            h('td', { class: 'num' }, fmt(c.figures && c.figures.missed)),
          ),
        ),
        'No schedule.',
      ),
    );
    if (s.ticks)
      out.push(
        table(
          'The last ticks: which clock fired them, and whether the task was acknowledged',
          ['Tick', 'Schedule', 'Clock', 'State', 'Tries', 'Error'],
          s.ticks.recent.map((t) =>
            h(
              'tr',
              {},
              h('td', {}, t.tick),
              h('td', {}, t.schedule),
              h('td', {}, t.owner),
              h('td', {}, state(t.state)),
              h('td', { class: 'num' }, t.attempts),
              h('td', { class: 'err' }, t.error || '–'),
            ),
          ),
          'No tick yet.',
        ),
      );
    return out;
  }

  function currentView() {
    const v = location.hash.slice(1);
    return VIEWS.includes(v) ? v : 'overview';
  }

  function render() {
    const view = currentView();
    for (const a of document.querySelectorAll('nav a')) {
      if (a.getAttribute('href') === `#${view}`) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    $('trace-view').hidden = view !== 'trace';
    const container = $('view');
    if (view === 'trace' || !status) {
      container.replaceChildren();
      return;
    }
    // Keep the keyboard focus on the same button across the re-render.
    const focused = document.activeElement && document.activeElement.getAttribute('data-key');
    const s = status;
    const parts =
      view === 'overview'
        ? [apps(s), broadcaster(s), bots(s, false), mailer(s, false)]
        : view === 'streams'
          ? streams(s)
          : view === 'bots'
            ? bots(s, true)
            : view === 'mailer'
              ? mailer(s, true)
              : view === 'signer'
                ? signer(s)
                : view === 'webhooks'
                  ? webhooks(s)
                  : clock(s);
    container.replaceChildren(h('section', { 'aria-label': view }, parts));
    if (focused) container.querySelector(`[data-key="${CSS.escape(focused)}"]`)?.focus();
  }

  async function trace(e) {
    e.preventDefault();
    const tid = $('tid').value.trim();
    const out = $('trace-out');
    out.replaceChildren(h('p', { class: 'muted' }, 'searching…'));
    const res = await fetch(`/api/trace?tid=${encodeURIComponent(tid)}`);
    const body = await res.json();
    if (!res.ok) return out.replaceChildren(h('p', {}, body.error.message));
    out.replaceChildren(
      table(
        `${body.records.length} records of ${tid}, in time order`,
        ['Time', 'App', 'Kind', 'What'],
        body.records.map((r) =>
          h(
            'tr',
            { 'data-kind': r.kind },
            h('td', {}, r.at),
            h('td', {}, r.app),
            h('td', {}, r.kind),
            h('td', { class: 'err' }, r.summary),
          ),
        ),
        'No stored record carries this TID.',
      ),
    );
  }

  function connect() {
    const events = new EventSource('/events');
    events.addEventListener('status', (e) => {
      const data = JSON.parse(e.data);
      status = data.status;
      if (data.history) history = data.history;
      else if (data.sample) {
        history.push(data.sample);
        if (history.length > 1800) history.shift();
      }
      $('live').textContent = `live · updated ${new Date(status.at).toLocaleTimeString('en-GB')}`;
      render();
    });
    events.addEventListener('error', () => ($('live').textContent = 'disconnected; reconnecting…'));
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('token').value = sessionStorage.getItem(TOKEN_KEY) || '';
    $('token-form').addEventListener('submit', (e) => e.preventDefault());
    $('trace-form').addEventListener('submit', trace);
    window.addEventListener('hashchange', () => {
      // An action's answer belongs to the view it was taken in.
      $('notice').hidden = true;
      render();
      $('main').focus();
    });
    render();
    connect();
  });
})();
