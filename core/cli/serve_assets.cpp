// The operator console's files, embedded in the binary: plain HTML, CSS and JavaScript written
// for daybreak, no build step, no third-party code, nothing loaded from elsewhere. The look is
// the HTML report's (app/report_html.cpp): the same type, colours, KPI boxes and chart lines.
// The script is a file of its own (/static/console.js) so the Content-Security-Policy needs no
// inline script; it only builds elements with textContent, never HTML from data.
#include "cli/op_serve.hpp"

namespace daybreak::serve {

std::string_view console_html() {
  return R"DBK(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>daybreak console</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="{{CSRF}}">
<link rel="icon" href="/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/console.css">
<script src="/static/console.js" defer></script>
</head><body data-role="{{ROLE}}">
<header><h1>daybreak console</h1><span id="clock" class="small"></span>
<span id="ledger" class="small"></span>
<span class="who">{{USER}} <span class="role">{{ROLE}}</span></span>
<form method="post" action="/logout" class="logout"><input type="hidden" name="csrf" value="{{CSRF}}"><button type="submit">Log out</button></form>
</header>
<p id="conn" class="small">connecting…</p>
<div id="paused" class="banner" hidden></div>
<section id="live"><div id="runs"></div>
<h2>Firing alerts</h2><div id="alerts"><p class="small">none</p></div>
<h2>Next delivery day</h2><div id="plan"></div>
</section>
<section id="actions" class="op-only">
<h2>Actions</h2>
<p class="small">Each action asks for confirmation and a reason, and is written to the audit log under your name.</p>
<div class="forms">
<form data-action="pause" data-title="Pause sending"><label>Scope <select name="scope"><option value="all">all sending</option><option>whatsapp</option><option>email</option><option>webhook</option><option value="run">one run</option><option value="sender">one sender</option></select></label><label>run id <input name="run_id" inputmode="numeric"></label><label>sender id <input name="sender_id"></label><button type="submit" id="btn-pause">Pause</button></form>
<form data-action="resume" data-title="Resume sending"><label>Scope <select name="scope"><option value="all">all sending</option><option>whatsapp</option><option>email</option><option>webhook</option><option value="run">one run</option><option value="sender">one sender</option></select></label><label>run id <input name="run_id" inputmode="numeric"></label><label>sender id <input name="sender_id"></label><button type="submit" id="btn-resume">Resume</button></form>
<form data-action="withdraw" data-title="Withdraw content everywhere"><label>Content id <input name="content_id" required></label><button type="submit">Withdraw</button></form>
<form data-action="ack" data-title="Acknowledge an alert"><label>Alert id <input name="alert_id" inputmode="numeric" required></label><button type="submit">Acknowledge</button></form>
<form data-action="replay" data-title="Replay dead letters"><label>Delivery ids <input name="delivery_ids" placeholder="12,13"></label><label>or run <input name="run_id" inputmode="numeric"></label><button type="submit">Replay</button></form>
<form data-action="send-now" data-title="Send one item now (urgent run)"><label>Content id <input name="content_id" required></label><label>Segment <input name="segment" value="all" placeholder="all, tier:gold, language:hi"></label><label>or advisor ids <textarea name="advisor_ids" rows="2" placeholder="A1,A2"></textarea></label><label>Deadline minutes <input name="deadline_minutes" inputmode="numeric" value="15"></label><button type="submit">Check capacity</button></form>
<form data-action="cancel" data-title="Cancel an advisor's delivery"><label>Advisor <input name="advisor_id"></label><label>Date <input name="date" type="date"></label><label>or delivery id <input name="delivery_id" inputmode="numeric"></label><button type="submit">Cancel delivery</button></form>
</div>
<p id="action-result" class="small" role="status"></p>
</section>
<section id="history"><h2>SLA, last 30 days</h2><div id="trend"></div></section>
<dialog id="confirm"><form method="dialog" id="confirm-form">
<h3 id="confirm-title"></h3><p id="confirm-text"></p>
<label>Reason (recorded in the audit log) <input id="confirm-reason" name="reason" required></label>
<div class="dialog-buttons"><button type="button" id="confirm-cancel">Cancel</button><button type="submit" id="confirm-ok">Confirm</button></div>
</form></dialog>
</body></html>
)DBK";
}

std::string_view login_html() {
  return R"DBK(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>daybreak console: log in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/console.css">
</head><body>
<h1>daybreak console</h1>
{{ERROR}}
<form method="post" action="/login" class="login">
<label>Operator <input name="name" autocomplete="username" required></label>
<label>Token <input name="token" type="password" autocomplete="current-password" required></label>
<button type="submit">Log in</button>
</form>
<p class="small">Tokens are listed, hashed, in the console's tokens file (see daybreak-serve(1)).</p>
</body></html>
)DBK";
}

std::string_view console_css() {
  return R"DBK(body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:980px;color:#1d2330;background:#fff;padding:0 12px}
h1{font-size:20px;margin:0 4px 4px 0;display:inline-block}h2{font-size:16px;margin:28px 0 8px;border-bottom:1px solid #dde1e8;padding-bottom:4px}
h3{font-size:15px;margin:4px 0 8px}
header{display:flex;gap:12px;align-items:baseline;flex-wrap:wrap}.who{margin-left:auto}.role{color:#5b6b85}
.logout{display:inline}.small{color:#5b6b85;font-size:12px}.error{color:#c62828;font-weight:600}
.verdict{display:inline-block;padding:2px 10px;border-radius:10px;font-weight:600;color:#fff;background:#5b6b85}
.verdict.met,.verdict.ok,.verdict.closed{background:#1f8a4c}.verdict.missed{background:#c62828}.verdict.at_risk,.verdict.low{background:#e08a00}
.kpis{display:flex;gap:12px;flex-wrap:wrap;margin:14px 0}.kpi{border:1px solid #dde1e8;border-radius:6px;padding:8px 12px;min-width:100px}
.kpi b{display:block;font-size:20px}table{border-collapse:collapse;width:100%;margin:6px 0}td,th{text-align:left;padding:3px 8px;border-bottom:1px solid #eef0f4}
td.n,th.n{text-align:right}.run{border-top:2px solid #dde1e8;margin-top:16px;padding-top:8px}
.chart{width:100%;height:auto}.axis{stroke:#8a93a6;stroke-width:1}.tick{font-size:10px;fill:#5b6b85}
.live{fill:none;stroke:#1f6feb;stroke-width:2}.target{stroke:#1f8a4c;stroke-width:1;stroke-dasharray:2 3}.alertline{stroke:#c62828;stroke-width:1.5;stroke-dasharray:4 3}
.bar{fill:#1f6feb}.bar.missed{fill:#c62828}.bar.met{fill:#1f8a4c}.legend{font-size:12px;color:#5b6b85}
.k{display:inline-block;width:12px;height:4px;margin:0 4px 2px 10px;vertical-align:middle;background:#8a93a6}
.k.live{background:#1f6feb}.k.target{background:#1f8a4c}.k.alertline{background:#c62828}
.st-open{color:#c62828;font-weight:600}.st-half_open{color:#e08a00;font-weight:600}.st-closed{color:#1f8a4c}
.banner{background:#fff4e0;border:1px solid #e08a00;border-radius:6px;padding:8px 12px;margin:10px 0;font-weight:600}
.forms{display:flex;flex-wrap:wrap;gap:10px}.forms form{border:1px solid #dde1e8;border-radius:6px;padding:8px 12px;display:flex;gap:8px;align-items:end;flex-wrap:wrap}
label{display:flex;flex-direction:column;font-size:12px;color:#5b6b85;gap:2px}input,select,button{font:inherit}
button{border:1px solid #1f6feb;background:#1f6feb;color:#fff;border-radius:4px;padding:3px 10px;cursor:pointer}
button[type=button]{background:#fff;color:#1f6feb}.logout button{background:#fff;color:#1f6feb}
.login{display:flex;flex-direction:column;gap:10px;max-width:280px;margin:20px 0}
dialog{border:1px solid #dde1e8;border-radius:8px;max-width:420px}#confirm-text{white-space:pre-wrap}.dialog-buttons{display:flex;gap:8px;justify-content:flex-end;margin-top:12px}
body[data-role=viewer] .op-only{display:none}
.forms form.unavailable{opacity:.6}.forms form p.why{flex-basis:100%;margin:0}button:disabled{cursor:not-allowed;opacity:.5}
a{color:#1f6feb}
)DBK";
}

std::string_view favicon_svg() {
  return R"DBK(<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><circle cx="8" cy="10" r="5" fill="#e08a00"/><rect x="0" y="10" width="16" height="6" fill="#1f6feb"/></svg>
)DBK";
}

std::string_view console_js() {
  return R"DBK('use strict';
// daybreak console: polls /api/live twice a second and /api/history once a minute, and posts
// the operator's actions (each confirmed, with a reason) with the page's CSRF token.
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const SVG = 'http://www.w3.org/2000/svg';
  const history = {};  // run_id -> [[ms, live success %]]
  let tz = 'UTC';

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = String(text);
    return e;
  }
  function fmtTime(ms) {
    if (ms === null || ms === undefined) return '-';
    try {
      return new Intl.DateTimeFormat('en-GB', {timeZone: tz, hour: '2-digit', minute: '2-digit', second: '2-digit',
                                               day: '2-digit', month: 'short'}).format(new Date(ms));
    } catch (e) { return new Date(ms).toISOString(); }
  }
  function pct(v) { return (typeof v === 'number') ? (Math.floor(v * 100 + 1e-9) / 100).toFixed(2) + '%' : '-'; }
  function kpi(parent, key, label, value) {
    const d = el('div', {class: 'kpi'}, label);
    d.appendChild(el('b', {'data-k': key}, value));
    parent.appendChild(d);
  }
  function table(headers, rows) {
    const t = el('table');
    const tr = el('tr');
    headers.forEach((h, i) => tr.appendChild(el('th', i > 0 ? {class: 'n'} : {}, h)));
    t.appendChild(tr);
    rows.forEach(r => {
      const row = el('tr');
      r.forEach((c, i) => row.appendChild(el('td', i > 0 ? {class: 'n'} : {}, c)));
      t.appendChild(row);
    });
    return t;
  }
  function group(rows, key) {
    const out = {};
    for (const r of rows) {
      const g = out[r[key]] || (out[r[key]] = {total: 0, accepted: 0, on_time: 0, delivered: 0, dead: 0, pending: 0});
      for (const f of ['total', 'accepted', 'on_time', 'delivered', 'dead', 'pending']) g[f] += r[f];
    }
    return Object.entries(out).map(([k, g]) => [k, g.total, g.accepted, g.on_time, g.delivered, g.dead, g.pending]);
  }

  // Live success % over this page's samples, with the SLA target and the alert line.
  function slaChart(points, target, alertPct) {
    const W = 640, H = 160, x0 = 40, x1 = W - 10, y0 = 10, y1 = H - 20;
    const lo = Math.min(90, ...points.map(p => p[1]));
    const y = v => y1 - (Math.max(lo, Math.min(100, v)) - lo) / (100 - lo) * (y1 - y0);
    const s = svg('svg', {viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': 'live success against the SLA and alert lines'});
    s.appendChild(svg('line', {class: 'axis', x1: x0, y1: y1, x2: x1, y2: y1}));
    s.appendChild(svg('line', {class: 'axis', x1: x0, y1: y0, x2: x0, y2: y1}));
    for (const v of [lo, (lo + 100) / 2, 100]) s.appendChild(svg('text', {class: 'tick', x: 2, y: y(v) + 3}, v.toFixed(0) + '%'));
    s.appendChild(svg('line', {class: 'target', x1: x0, y1: y(target), x2: x1, y2: y(target)}));
    s.appendChild(svg('line', {class: 'alertline', x1: x0, y1: y(alertPct), x2: x1, y2: y(alertPct)}));
    if (points.length > 0) {
      const t0 = points[0][0], t1 = Math.max(points[points.length - 1][0], t0 + 1);
      const xs = t => x0 + (t - t0) / (t1 - t0) * (x1 - x0);
      s.appendChild(svg('polyline', {class: 'live', points: points.map(p => xs(p[0]).toFixed(1) + ',' + y(p[1]).toFixed(1)).join(' ')}));
      s.appendChild(svg('text', {class: 'tick', x: x0, y: H - 4}, fmtTime(t0)));
      s.appendChild(svg('text', {class: 'tick', x: x1 - 90, y: H - 4}, fmtTime(t1)));
    }
    const f = el('figure');
    f.appendChild(s);
    const lg = el('div', {class: 'legend'});
    for (const [c, t] of [['live', 'live success'], ['target', 'SLA ' + target + '%'], ['alertline', 'alert ' + alertPct + '%']]) {
      lg.appendChild(el('span', {class: 'k ' + c}));
      lg.appendChild(document.createTextNode(t));
    }
    f.appendChild(lg);
    return f;
  }

  function renderRun(r, j) {
    const d = el('div', {class: 'run', 'data-run': r.run_id});
    const risky = !r.closed && (r.deadline_at_risk || (r.live_sample >= 20 && r.live_success_pct < j.alert_pct));
    const verdict = r.closed ? 'closed' : r.deadline_at_risk ? 'at_risk' : risky ? 'low' : 'ok';
    const h = el('h2', {}, `${r.run_kind === 'urgent' ? 'Urgent run' : 'Run'} ${r.run_id}, ${r.date} `);
    h.appendChild(el('span', {class: 'verdict ' + verdict, 'data-k': 'verdict'},
                     {closed: 'closed', at_risk: 'deadline at risk', low: 'low success', ok: r.state}[verdict]));
    d.appendChild(h);
    const beat = typeof r.heartbeat_age_ms === 'number' ? `, heartbeat ${Math.round(r.heartbeat_age_ms / 1000)} s ago` : '';
    d.appendChild(el('p', {class: 'small', 'data-k': 'owner'}, `slot ${fmtTime(r.slot_at_ms)}, deadline ${fmtTime(r.deadline_at_ms)}; ` +
                       `owner ${r.owner || 'none'}${r.lease_live ? ' (lease live' + beat + ')' : beat ? ' (no live lease' + beat + ')' : ''}; ` +
                       `figures from ${r.source}`));
    const k = el('div', {class: 'kpis'});
    const total = r.total - r.cancelled;
    kpi(k, 'accepted', 'accepted', r.accepted);
    kpi(k, 'total', 'planned', total);
    kpi(k, 'on_time', 'on time', r.on_time);
    kpi(k, 'delivered', 'delivered', r.delivered === null ? '-' : r.delivered);
    kpi(k, 'dead', 'dead', r.dead);
    kpi(k, 'live_success', 'live success', pct(r.live_success_pct));
    kpi(k, 'sla_so_far', 'SLA so far', pct(r.sla_so_far_pct));
    kpi(k, 'lag_p99', 'lag p99', Math.round(r.lag_p99_ms) + ' ms');
    kpi(k, 'in_flight', 'in flight', r.in_flight);
    kpi(k, 'backlog', 'backlog', r.backlog);
    kpi(k, 'remaining', 'remaining', r.remaining);
    if (!r.closed) kpi(k, 'finish', 'projected finish', r.projected_finish_ms ? fmtTime(r.projected_finish_ms) : 'none');
    d.appendChild(k);
    const pts = history[r.run_id] || (history[r.run_id] = []);
    const last = pts[pts.length - 1];
    if (!last || last[0] !== j.now_ms) pts.push([j.now_ms, r.live_success_pct]);
    if (pts.length > 3600) pts.shift();
    d.appendChild(slaChart(pts, j.sla_target_pct, j.alert_pct));
    if (r.breakers && r.breakers.length) {
      d.appendChild(el('h3', {}, 'Senders'));
      const t = table(['sender', 'channel', 'breaker', 'failure ratio', 'sent', 'failed'],
                      r.breakers.map(b => [b.sender, b.channel, b.state, (100 * b.failure_ratio).toFixed(1) + '%', b.sent, b.failed]));
      t.querySelectorAll('tr').forEach((tr, i) => { if (i > 0) tr.children[2].className = 'st-' + r.breakers[i - 1].state; });
      d.appendChild(t);
    }
    const hdr = ['', 'planned', 'accepted', 'on time', 'delivered', 'dead', 'pending'];
    for (const [key, title] of [['tier', 'By tier'], ['channel', 'By channel'], ['sender', 'By sender']]) {
      d.appendChild(el('h3', {}, title));
      d.appendChild(table([key].concat(hdr.slice(1)), group(r.breakdown || [], key)));
    }
    return d;
  }

  function renderLive(j) {
    tz = j.tz || 'UTC';
    document.getElementById('clock').textContent = fmtTime(j.now_ms);
    const runs = document.getElementById('runs');
    runs.replaceChildren(...(j.runs.length ? j.runs.map(r => renderRun(r, j)) : [el('p', {class: 'small'}, 'No run yet.')]));
    const p = document.getElementById('paused');
    const keys = Object.keys(j.paused || {});
    p.hidden = keys.length === 0;
    p.textContent = keys.length ? 'PAUSED: ' + keys.map(k => `${k} (by ${j.paused[k].by} at ${fmtTime(j.paused[k].since_ms)})`).join(', ') : '';
    const a = document.getElementById('alerts');
    a.replaceChildren(j.alerts === null ? el('p', {class: 'small'}, j.alerts_note || 'unknown')
      : j.alerts.length
      ? table(['alert', 'rule', 'subject', 'level', 'fired', 'acknowledged', 'message'],
              j.alerts.map(x => ['#' + x.alert_id, x.rule, x.subject, x.level, fmtTime(x.fired_at_ms), x.acknowledged_by || 'no', x.message]))
      : el('p', {class: 'small'}, 'none'));
    if (j.alerts !== null && j.alerts_note) a.appendChild(el('p', {class: 'small'}, j.alerts_note));
    a.appendChild(el('p', {class: 'small'}, `dead letters waiting: ${j.dead_letters}`));
    renderAvailability(j);
    const pl = document.getElementById('plan');
    const plan = j.plan || {runs: []};
    pl.replaceChildren(plan.runs.length
      ? table(['run', 'slot', 'window', 'deliveries', 'capacity', 'state'],
              plan.runs.map(x => [x.run_id, fmtTime(x.slot_at_ms), fmtTime(x.window_start_ms) + ' to ' + fmtTime(x.window_end_ms),
                                  x.planned_count, x.feasible ? 'fits' : 'DOES NOT FIT', x.state]))
      : el('p', {class: 'small'}, `${plan.date}: not planned yet`));
  }

  // What the console cannot do on this ledger (PostgreSQL): the form's button disabled, the
  // reason beside it; and how an available action differs there.
  function renderAvailability(j) {
    document.getElementById('ledger').textContent = j.ledger === 'postgresql' ? 'ledger: PostgreSQL' : '';
    document.querySelectorAll('form[data-action]').forEach(f => {
      const why = (j.unavailable || {})[f.dataset.action];
      const note = (j.notes || {})[f.dataset.action];
      f.querySelector('button[type=submit]').disabled = !!why;
      f.classList.toggle('unavailable', !!why);
      let p = f.querySelector('p.why');
      const text = why ? 'Not available here: ' + why : note || '';
      if (!text) { if (p) p.remove(); return; }
      if (!p) { p = el('p', {class: 'small why'}); f.appendChild(p); }
      if (p.textContent !== text) p.textContent = text;
    });
  }

  function renderTrend(t) {
    const box = document.getElementById('trend');
    const days = (t.dates || []).filter(d => d.runs > 0);
    if (!days.length) { box.replaceChildren(el('p', {class: 'small'}, 'No closed run in the last 30 days.')); return; }
    const rows = days.map(d => {
      const a = el('a', {href: '/report?date=' + encodeURIComponent(d.date)}, d.date);
      return [a, d.runs, typeof d.sla_pct === 'number' ? pct(d.sla_pct) : '-', d.met === undefined ? 'no report' : d.met ? 'met' : 'missed'];
    });
    const t2 = el('table');
    const hr = el('tr');
    ['day', 'runs', 'SLA', 'verdict'].forEach((h, i) => hr.appendChild(el('th', i ? {class: 'n'} : {}, h)));
    t2.appendChild(hr);
    for (const r of rows) {
      const tr = el('tr');
      const td = el('td'); td.appendChild(r[0]); tr.appendChild(td);
      for (const c of r.slice(1)) tr.appendChild(el('td', {class: 'n'}, c));
      t2.appendChild(tr);
    }
    box.replaceChildren(t2);
  }

  async function poll() {
    try {
      const r = await fetch('/api/live', {credentials: 'same-origin', cache: 'no-store'});
      if (r.status === 403) { window.location = '/login'; return; }
      const j = await r.json();
      renderLive(j);
      const conn = document.getElementById('conn');
      conn.textContent = j.stale ? `the ledger cannot be read (${j.stale.error}); figures as of ${fmtTime(j.now_ms)}`
                                 : 'live, updated ' + new Date().toLocaleTimeString();
      conn.className = j.stale ? 'error' : 'small';
    } catch (e) {
      document.getElementById('conn').textContent = 'no answer from the console: ' + e.message;
    }
  }
  async function pollHistory() {
    try {
      const r = await fetch('/api/history', {credentials: 'same-origin', cache: 'no-store'});
      if (r.ok) renderTrend(await r.json());
    } catch (e) { /* the live poll reports the connection */ }
  }

  // Actions: the form's fields, confirmed in the dialog with a reason, posted with the CSRF token.
  const dlg = document.getElementById('confirm');
  let pending = null;
  async function send(action, fields, reason) {
    const body = new URLSearchParams(fields);
    body.set('csrf', csrf);
    body.set('reason', reason);
    const out = document.getElementById('action-result');
    const r = await fetch('/api/action/' + action, {method: 'POST', credentials: 'same-origin', body: body});
    const j = await r.json();
    out.textContent = r.ok ? `${action}: done ${JSON.stringify(j)}` : `${action}: refused (${r.status}): ${j.error}`;
    out.dataset.status = String(r.status);
    poll();
  }
  document.querySelectorAll('form[data-action]').forEach(f => {
    f.addEventListener('submit', ev => {
      ev.preventDefault();
      const fields = Object.fromEntries(new FormData(f).entries());
      pending = {action: f.dataset.action, fields: fields};
      document.getElementById('confirm-title').textContent = f.dataset.title + '?';
      const what = Object.entries(fields).filter(([, v]) => v !== '').map(([k, v]) => `${k} ${v}`).join(', ');
      document.getElementById('confirm-text').textContent = what ? 'With ' + what + '.' : '';
      document.getElementById('confirm-reason').value = '';
      dlg.showModal();
    });
  });
  document.getElementById('confirm-cancel').addEventListener('click', () => { pending = null; dlg.close(); });
  // send-now: the first confirmation asks the server for the capacity verdict (nothing written);
  // the dialog then shows it, and only its second confirmation posts send-now with confirm=yes.
  async function checkSendNow(p, reason) {
    const body = new URLSearchParams(p.fields);
    body.set('csrf', csrf);
    body.set('reason', reason);
    const out = document.getElementById('action-result');
    const r = await fetch('/api/action/send-now-check', {method: 'POST', credentials: 'same-origin', body: body});
    const j = await r.json();
    if (!r.ok) {
      out.textContent = `send-now: refused (${r.status}): ${j.error}`;
      out.dataset.status = String(r.status);
      return;
    }
    p.checked = true;
    p.fields.confirm = 'yes';
    pending = p;
    document.getElementById('confirm-title').textContent = `Send ${j.planned} urgent deliveries now?`;
    document.getElementById('confirm-text').textContent = j.verdict_text;
    document.getElementById('confirm-reason').value = reason;
    dlg.showModal();
  }
  document.getElementById('confirm-form').addEventListener('submit', ev => {
    ev.preventDefault();
    const reason = document.getElementById('confirm-reason').value.trim();
    if (!reason || !pending) return;
    const p = pending;
    pending = null;
    dlg.close();
    const fail = e => { document.getElementById('action-result').textContent = 'failed: ' + e.message; };
    if (p.action === 'send-now' && !p.checked) { checkSendNow(p, reason).catch(fail); return; }
    send(p.action, p.fields, reason).catch(fail);
  });

  poll();
  pollHistory();
  setInterval(poll, 500);
  setInterval(pollHistory, 60000);
})();
)DBK";
}

}  // namespace daybreak::serve
