// hai's chat page: talks to this server's own OpenAI-compatible API, streams answers, and shows
// where each answer came from (the device or the cloud, and why), what the privacy gate found,
// the time to the first token and the tokens per second. No framework and no build step: every
// text that comes from a model or a user goes into the page as text, never as HTML.
'use strict';

const $ = (id) => document.getElementById(id);
const log = $('log'), input = $('input'), sendBtn = $('send'), stopBtn = $('stop');
const history = []; // {role, content} of the conversation so far
let modelId = null, busy = null; // busy: the AbortController of the answer in progress

// The API key (when the server asks for one) lives in this tab's session only.
const apiKey = () => sessionStorage.getItem('hai-api-key') || '';
const headers = (json) => {
  const h = {};
  if (json) h['Content-Type'] = 'application/json';
  if (apiKey()) h.Authorization = 'Bearer ' + apiKey();
  return h;
};
function askForKey() {
  $('keybar').hidden = false;
  $('key').focus();
}
$('savekey').addEventListener('click', () => {
  sessionStorage.setItem('hai-api-key', $('key').value.trim());
  $('keybar').hidden = true;
  loadStatus();
});

const mib = (b) => (b / 1048576).toFixed(b < 104857600 ? 1 : 0) + ' MiB';

async function loadStatus() {
  let r;
  try {
    r = await fetch('/hai/status', { headers: headers(false) });
  } catch (e) {
    $('model').textContent = 'server unreachable';
    return;
  }
  if (r.status === 401) return askForKey();
  if (!r.ok) return;
  const s = await r.json();
  modelId = s.model;
  $('model').textContent = s.model + ' · ' + s.slots + ' slot' + (s.slots === 1 ? '' : 's') + ' × ' + s.n_ctx + ' context';
  const m = s.memory;
  $('memory').textContent = 'memory: weights ' + mib(m.weights_bytes) + ', KV and scratch ' + mib(m.context_bytes) +
    (m.rss_bytes ? ', process ' + mib(m.rss_bytes) : '');
  $('router').textContent = !s.router.enabled ? 'everything on this device (no routing policy)'
    : s.router.cloud ? 'hybrid: device or cloud (' + s.router.cloud_model + ')' + (s.router.offline ? ', offline' : '')
    : 'routing, no cloud configured';
}

// Route names as the server sends them, and its reason codes, for a person.
const ROUTES = { 'local': ['on this device', 'local'], 'cloud': ['cloud', 'cloud'], 'local->cloud': ['device, then cloud', 'cascade'] };
const REASONS = {
  PRIVACY_KEEP_LOCAL: 'personal data kept on the device', PRIVACY_REDACTED: 'personal data redacted before it left',
  PRIVACY_SCAN_INCOMPLETE: 'privacy scan incomplete: kept as personal', OFFLINE: 'offline', CIRCUIT_OPEN: 'cloud failing, cooling down',
  CONTEXT_TOO_LONG: 'too long for the device', CLOUD_MODEL_REQUESTED: 'a cloud model was asked for', BUDGET_SPENT: 'cloud budget spent',
  DEADLINE: 'deadline', LOW_CONFIDENCE: 'the device was unsure', CLOUD_ERROR: 'the cloud failed: answered here', TOOLS_NOT_LOCAL: 'tools',
  DEFAULT: 'policy default',
};

function showRoute(view, route, reasons) {
  const [label, cls] = ROUTES[route] || [route, ''];
  view.badge.textContent = label;
  view.badge.className = 'badge ' + cls;
  view.badge.dataset.route = route;
  view.reasons.textContent = reasons.map((r) => REASONS[r] || r).join(' · ');
  view.reasons.dataset.reasons = reasons.join(',');
}

function showPrivacy(view, hr) {
  const found = Object.entries((hr.signals && hr.signals.personal_data) || {});
  if (!found.length) return;
  const what = found.map(([k, n]) => k.replace('_', ' ') + ' ×' + n).join(', ');
  const how = hr.reasons.includes('PRIVACY_REDACTED') ? 'redacted before it left: '
    : hr.route === 'local' ? 'kept on this device: ' : 'found: ';
  view.privacy.textContent = how + what;
}

function addMessage(role, text) {
  $('empty')?.remove();
  const div = document.createElement('div');
  div.className = 'msg ' + role;
  const t = document.createElement('div');
  t.className = 'text';
  t.textContent = text;
  div.append(t);
  log.append(div);
  log.scrollTop = log.scrollHeight;
  return { div, text: t };
}

function assistantView() {
  const v = addMessage('assistant', '');
  const info = document.createElement('div');
  info.className = 'info';
  for (const k of ['badge', 'reasons', 'privacy', 'stats', 'state']) {
    v[k] = document.createElement('span');
    v[k].className = k;
    info.append(v[k]);
  }
  v.div.append(info);
  return v;
}

// Server-sent events from a fetch body: yields each event's data.
async function* events(body) {
  const reader = body.getReader(), dec = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const data = ev.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
      if (data) yield data;
    }
  }
}

async function ask(question) {
  history.push({ role: 'user', content: question });
  addMessage('user', question);
  const view = assistantView();
  const ctl = new AbortController();
  busy = ctl;
  sendBtn.disabled = true;
  stopBtn.disabled = false;
  const t0 = performance.now();
  let tFirst = 0, answer = '', usage = null, finished = false;
  try {
    const r = await fetch('/v1/chat/completions', {
      method: 'POST', headers: headers(true), signal: ctl.signal,
      body: JSON.stringify({ model: modelId || 'hai', messages: history, stream: true, stream_options: { include_usage: true } }),
    });
    if (!r.ok) {
      let msg = r.status + ' ' + r.statusText;
      try { msg = (await r.json()).error.message; } catch (e) { /* not JSON */ }
      if (r.status === 401) askForKey();
      throw new Error(msg);
    }
    const decided = r.headers.get('x-hai-route'); // "cloud; reasons=PRIVACY_REDACTED,DEFAULT": the decision
    if (decided) {
      const [route, rest] = decided.split(';');
      showRoute(view, route.trim(), (rest || '').replace(/^\s*reasons=/, '').split(',').filter(Boolean));
    } else showRoute(view, 'local', []);
    for await (const data of events(r.body)) {
      if (data === '[DONE]') { finished = true; break; }
      const chunk = JSON.parse(data);
      const piece = chunk.choices && chunk.choices[0] && chunk.choices[0].delta && chunk.choices[0].delta.content;
      if (piece) {
        if (!tFirst) tFirst = performance.now();
        answer += piece;
        view.text.textContent = answer;
        log.scrollTop = log.scrollHeight;
      }
      if (chunk.hai_route) { // where the answer came from in the end, and why
        showRoute(view, chunk.hai_route.route, chunk.hai_route.reasons);
        showPrivacy(view, chunk.hai_route);
      }
      if (chunk.usage) usage = chunk.usage;
    }
  } catch (e) {
    if (e.name === 'AbortError') {
      view.state.textContent = 'stopped';
      view.state.classList.add('stopped');
    } else {
      view.state.textContent = 'error: ' + e.message;
      view.state.classList.add('error');
    }
  }
  const t1 = performance.now();
  if (tFirst) {
    const n = usage ? usage.completion_tokens : null;
    const rate = n && t1 > tFirst ? ' · ' + ((n - 1) / ((t1 - tFirst) / 1000)).toFixed(1) + ' tok/s' : '';
    view.stats.textContent = 'first token ' + Math.round(tFirst - t0) + ' ms' + rate + (n ? ' · ' + n + ' tokens' : '');
  }
  if (finished) view.div.dataset.done = 'true';
  if (answer) history.push({ role: 'assistant', content: answer });
  else history.pop(); // nothing came back: the question is not part of the conversation
  busy = null;
  sendBtn.disabled = false;
  stopBtn.disabled = true;
  view.div.dataset.state = finished ? 'done' : view.state.textContent ? view.state.textContent.split(':')[0] : 'ended';
  input.focus();
}

$('form').addEventListener('submit', (e) => {
  e.preventDefault();
  const q = input.value.trim();
  if (!q || busy) return;
  input.value = '';
  ask(q);
});
input.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey) {
    e.preventDefault();
    $('form').requestSubmit();
  }
});
stopBtn.addEventListener('click', () => busy && busy.abort());
$('new').addEventListener('click', () => { // personal data in an earlier turn keeps every later turn on the device
  if (busy) busy.abort();
  history.length = 0;
  log.replaceChildren();
  input.focus();
});

loadStatus();
