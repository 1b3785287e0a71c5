// The hybrid router end to end: hai serve --route-config against a fake OpenAI-compatible
// upstream on loopback that records every byte it receives and injects faults. Checks bounded
// retries and total time, that truncation is never a success, that no credentials go to another
// origin, that memory stays bounded, that failures fall back to the device with the right reason,
// and that personal data never reaches the upstream under keep-local and redact.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, metrics } from './serve.mjs';
import { startUpstream } from './fake_upstream.mjs';

const KEY = 'test-secret-key-0123456789';
process.env.HAI_TEST_CLOUD_KEY = KEY;
const dir = mkdtempSync(join(tmpdir(), 'hai-router-'));
let up, other;
before(async () => { up = await startUpstream(); other = await startUpstream(); });
after(async () => { await up.close(); await other.close(); });

// A server with a policy; `cloud` fields are merged over short test timeouts.
let nconf = 0;
async function serverWith(policy, args = []) {
  const { cloud = {}, ...rest } = policy;
  const conf = {
    cloud: { base_url: up.url + '/v1', model: 'up-model', api_key_env: 'HAI_TEST_CLOUD_KEY', connect_timeout_ms: 1000,
      first_byte_timeout_ms: 1500, idle_timeout_ms: 1500, total_timeout_ms: 5000, max_retries: 2,
      max_response_bytes: 262144, circuit_failures: 100, circuit_cooldown_s: 30, ...cloud },
    ...rest,
  };
  const file = join(dir, `policy-${nconf++}.json`);
  writeFileSync(file, JSON.stringify(conf));
  return startServer(['--route-config', file, '--ctx', '256', ...args]);
}

function reset(script = [], fallback = 'ok') { up.requests.length = 0; up.script = script; up.fallback = fallback; other.requests.length = 0; }

async function chat(srv, content, extra = {}, headers = {}) {
  const t0 = Date.now();
  const r = await fetch(srv.url + '/v1/chat/completions', {
    method: 'POST', headers: { 'Content-Type': 'application/json', ...headers },
    body: JSON.stringify({ model: 'hai', messages: [{ role: 'user', content }], max_tokens: 8, temperature: 0, ...extra }),
  });
  const text = await r.text();
  const ms = Date.now() - t0;
  assert.equal(r.status, 200, text);
  if (extra.stream) {
    let out = '', route = null, sawDone = false;
    for (const ev of text.split('\n\n')) {
      if (!ev.startsWith('data: ')) continue;
      const d = ev.slice(6);
      if (d === '[DONE]') { sawDone = true; continue; }
      const j = JSON.parse(d);
      for (const c of j.choices ?? []) out += c.delta?.content ?? '';
      if (j.hai_route) route = j.hai_route;
    }
    assert.ok(sawDone, 'stream ends with [DONE]');
    assert.ok(route, 'the last chunk carries hai_route');
    return { text: out, route, header: r.headers.get('x-hai-route'), ms };
  }
  const j = JSON.parse(text);
  assert.ok(j.hai_route, 'the response carries hai_route: ' + text);
  const header = r.headers.get('x-hai-route');
  assert.equal(header, `${j.hai_route.route}; reasons=${j.hai_route.reasons.join(',')}`, 'header and JSON agree');
  return { text: j.choices[0].message.content, route: j.hai_route, header, ms, finish: j.choices[0].finish_reason, usage: j.usage };
}

const CLOUD_TEXT = 'Hello from the cloud.';
const isLocalFallback = (r) => r.route.route === 'local' && r.route.reasons.includes('CLOUD_ERROR');

test('a healthy upstream answers, with the key sent to its own origin only', async () => {
  const srv = await serverWith({ prefer: 'cloud' });
  try {
    reset();
    const r = await chat(srv, 'What is the capital of France?');
    assert.equal(r.text, CLOUD_TEXT);
    assert.equal(r.route.route, 'cloud');
    assert.deepEqual(r.route.reasons, ['DEFAULT']);
    assert.equal(up.requests.length, 1);
    assert.equal(up.requests[0].url, '/v1/chat/completions');
    assert.equal(up.requests[0].headers.authorization, 'Bearer ' + KEY);
    const body = JSON.parse(up.requests[0].body);
    assert.equal(body.model, 'up-model');
    assert.equal(body.stream, true);
    assert.equal(body.max_tokens, 8);
    reset();
    const s = await chat(srv, 'And of Spain?', { stream: true });
    assert.equal(s.text, CLOUD_TEXT);
    assert.equal(s.route.route, 'cloud');
    reset(['ok-json']);
    const p = await chat(srv, 'A plain JSON upstream');
    assert.equal(p.route.route, 'cloud');
    assert.ok(p.text.length > 0);
    const m = await metrics(srv.url);
    assert.ok(m['hai_routes_total{route="cloud",reason="DEFAULT"}'] >= 3, 'metrics count routes by reason');
    assert.ok(m['hai_cloud_tokens_total'] >= 18, 'cloud tokens are counted');
  } finally { assert.equal(await srv.stop(), 0); }
});

test('429 with Retry-After and 5xx are retried a bounded number of times, then the device answers', async () => {
  const srv = await serverWith({ prefer: 'cloud' });
  try {
    reset(['429', 'ok']);
    const a = await chat(srv, 'retry after one second');
    assert.equal(a.route.route, 'cloud');
    assert.equal(a.text, CLOUD_TEXT);
    assert.equal(up.requests.length, 2);
    assert.ok(a.ms >= 900, `Retry-After: 1 honoured (${a.ms} ms)`);
    for (const code of ['500', '503']) {
      reset([], code);
      const b = await chat(srv, 'upstream is down ' + code);
      assert.ok(isLocalFallback(b), JSON.stringify(b.route));
      assert.equal(up.requests.length, 3, 'one try and two retries');
      assert.match(b.route.signals.cloud_error, new RegExp('HTTP ' + code));
      assert.ok(b.ms < 8000, `bounded time (${b.ms} ms)`);
    }
  } finally { assert.equal(await srv.stop(), 0); }
});

test('a long Retry-After is honoured by answering locally meanwhile', async () => {
  const srv = await serverWith({ prefer: 'cloud' });
  try {
    reset([], 'retry-long');
    const a = await chat(srv, 'come back in a minute');
    assert.ok(isLocalFallback(a), JSON.stringify(a.route));
    assert.equal(up.requests.length, 1, 'no retry before the upstream asked');
    const b = await chat(srv, 'and now?');
    assert.equal(b.route.route, 'local');
    assert.ok(b.route.reasons.includes('CIRCUIT_OPEN'), JSON.stringify(b.route));
    assert.equal(up.requests.length, 1);
  } finally { assert.equal(await srv.stop(), 0); }
});

test('timeouts: silence, a slow first byte and a 1 byte/s drip end within the total timeout', async () => {
  const srv = await serverWith({ prefer: 'cloud' });
  try {
    for (const mode of ['hang', 'slow-first-byte', 'drip']) {
      reset([], mode);
      const r = await chat(srv, 'timeout ' + mode);
      assert.ok(isLocalFallback(r), mode + ': ' + JSON.stringify(r.route));
      assert.ok(r.ms < 5000 + 3000, `${mode}: bounded by the total timeout (${r.ms} ms)`);
      assert.ok(up.requests.length >= 1 && up.requests.length <= 3, `${mode}: ${up.requests.length} attempts`);
    }
  } finally { assert.equal(await srv.stop(), 0); }
});

test('a stream cut before [DONE] or reset mid-way is not a success: the device continues without repeating', async () => {
  const srv = await serverWith({ prefer: 'cloud' });
  try {
    for (const mode of ['cut', 'reset']) {
      for (const stream of [false, true]) {
        reset([], mode);
        const r = await chat(srv, 'cut me ' + mode, { stream, max_tokens: 24 });
        assert.ok(isLocalFallback(r), `${mode}/${stream}: ${JSON.stringify(r.route)}`);
        assert.equal(up.requests.length, 1, 'text already shown: no retry');
        const shown = mode === 'cut' ? CLOUD_TEXT : 'Hello ';
        assert.ok(r.text.startsWith(shown), `${mode}: the cloud's part comes first: ${JSON.stringify(r.text)}`);
        assert.equal(r.text.indexOf(shown, 1), -1, `${mode}: nothing is repeated: ${JSON.stringify(r.text)}`);
      }
    }
  } finally { assert.equal(await srv.stop(), 0); }
});

test('a stream cut inside a UTF-8 character and malformed chunks fall back cleanly', async () => {
  const srv = await serverWith({ prefer: 'cloud' });
  try {
    for (const mode of ['cut-utf8', 'malformed']) {
      reset([], mode);
      const r = await chat(srv, 'broken ' + mode, { stream: true });
      assert.ok(isLocalFallback(r), mode + ': ' + JSON.stringify(r.route));
      assert.ok(!r.text.includes('caf'), mode + ': no part of the broken chunk is shown');
      assert.ok(up.requests.length <= 3);
    }
  } finally { assert.equal(await srv.stop(), 0); }
});

function peakRssMiB(pid) {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmHWM:\s+(\d+) kB/);
  return Number(m[1]) / 1024;
}

test('a gzip bomb is stopped at the response cap and memory stays bounded', async () => {
  const srv = await serverWith({ prefer: 'cloud' });
  try {
    reset();
    await chat(srv, 'warm up');
    const before = peakRssMiB(srv.proc.pid);
    reset([], 'gzip-bomb');
    const r = await chat(srv, 'compress this');
    assert.ok(isLocalFallback(r), JSON.stringify(r.route));
    assert.match(r.route.signals.cloud_error, /limit/);
    assert.equal(up.requests.length, 1, 'an oversized answer is final, not retried');
    const grew = peakRssMiB(srv.proc.pid) - before;
    assert.ok(grew < 16, `peak RSS grew ${grew.toFixed(1)} MiB (64 MiB decompressed would show)`);
  } finally { assert.equal(await srv.stop(), 0); }
});

test('a redirect is not followed: no request and no credentials reach the other origin', async () => {
  const srv = await serverWith({ prefer: 'cloud' });
  try {
    reset([], 'redirect');
    up.redirectTo = other.url;
    const r = await chat(srv, 'go elsewhere');
    assert.ok(isLocalFallback(r), JSON.stringify(r.route));
    assert.match(r.route.signals.cloud_error, /redirect/);
    assert.equal(other.requests.length, 0);
  } finally { assert.equal(await srv.stop(), 0); }
});

test('connection refused: the device answers, then routes OFFLINE without trying', async () => {
  const closed = await startUpstream();
  const url = closed.url;
  await closed.close();
  const srv = await serverWith({ prefer: 'cloud', cloud: { base_url: url + '/v1' } });
  try {
    const a = await chat(srv, 'is anyone there?');
    assert.ok(isLocalFallback(a), JSON.stringify(a.route));
    const b = await chat(srv, 'still there?');
    assert.equal(b.route.route, 'local');
    assert.deepEqual(b.route.reasons, ['OFFLINE']);
    assert.equal(b.route.signals.online, false);
  } finally { assert.equal(await srv.stop(), 0); }
  const off = await serverWith({ prefer: 'cloud', offline: true });
  try {
    reset();
    const c = await chat(off, 'airplane mode');
    assert.deepEqual(c.route.reasons, ['OFFLINE']);
    assert.equal(up.requests.length, 0);
  } finally { assert.equal(await off.stop(), 0); }
});

test('the circuit opens after repeated failures and closes after the cooldown', async () => {
  const srv = await serverWith({ prefer: 'cloud', cloud: { circuit_failures: 2, circuit_cooldown_s: 2, max_retries: 0 } });
  try {
    reset([], '500');
    await chat(srv, 'one');
    await chat(srv, 'two');
    assert.equal(up.requests.length, 2);
    const c = await chat(srv, 'three');
    assert.deepEqual(c.route.reasons, ['CIRCUIT_OPEN']);
    assert.equal(up.requests.length, 2, 'an open circuit sends nothing');
    await new Promise((r) => setTimeout(r, 2200));
    reset([], 'ok');
    const d = await chat(srv, 'four');
    assert.equal(d.route.route, 'cloud');
  } finally { assert.equal(await srv.stop(), 0); }
});

// ---- privacy -----------------------------------------------------------------------------------

// A seeded corpus of prompts carrying personal data of every class.
function rng(seed) { let s = seed >>> 0; return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32); }
function cnId(r) {
  const w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  const d = '110105' + (1950 + Math.floor(r() * 60)) + String(1 + Math.floor(r() * 12)).padStart(2, '0') +
    String(1 + Math.floor(r() * 28)).padStart(2, '0') + String(Math.floor(r() * 1000)).padStart(3, '0');
  const sum = [...d].reduce((a, c, i) => a + Number(c) * w[i], 0);
  return d + '10X98765432'[sum % 11];
}
function luhnCard(r) {
  const d = '4' + Array.from({ length: 14 }, () => Math.floor(r() * 10)).join('');
  let sum = 0;
  for (let i = 0; i < 15; i++) { let v = Number(d[14 - i]); if (i % 2 === 0) { v *= 2; if (v > 9) v -= 9; } sum += v; }
  return d + ((10 - (sum % 10)) % 10);
}
function corpus(n, seed = 7) {
  const r = rng(seed), pick = (a) => a[Math.floor(r() * a.length)];
  const digits = (k) => Array.from({ length: k }, () => Math.floor(r() * 10)).join('');
  const makers = [
    () => `user${digits(4)}@example.${pick(['com', 'org', 'cn'])}`,
    () => `+86 13${digits(1)} ${digits(4)} ${digits(4)}`,
    () => `1${pick(['3', '5', '8'])}${digits(9)}`,
    () => `+1 415 ${digits(3)} ${digits(4)}`,
    () => cnId(r),
    () => luhnCard(r),
    () => `10.${1 + Math.floor(r() * 250)}.${Math.floor(r() * 250)}.${1 + Math.floor(r() * 250)}`,
    () => `2001:db8::${digits(2)}:${digits(2)}`,
    () => `sk-${Array.from({ length: 32 }, () => pick([...'abcdefghijkLMNOPQ0123456789'])).join('')}`,
  ];
  const frames = ['Please write to {} about my order.', 'My number is {}, call me after 6.', 'Is {} valid?',
    '请联系我：{}，谢谢', 'Remember this for later: {}. Now summarise the plan.'];
  return Array.from({ length: n }, (_, i) => {
    const secret = makers[i % makers.length]();
    return { secret, prompt: pick(frames).replace('{}', secret) };
  });
}

// Every form the secret could leave in: as written, and (for numbers) its digits alone.
function leaks(raw, secret) {
  if (raw.includes(secret)) return true;
  const digits = secret.replace(/[^0-9]/g, '');
  return digits.length >= 7 && raw.replace(/[^0-9]/g, ' ').split(/\s+/).some((t) => t.includes(digits));
}

test('privacy: keep-local sends zero bytes of personal data upstream', async () => {
  const srv = await serverWith({ prefer: 'cloud' });
  try {
    reset([], 'echo');
    const items = corpus(36);
    for (const { secret, prompt } of items) {
      const r = await chat(srv, prompt, { max_tokens: 2 });
      assert.equal(r.route.route, 'local', `${prompt}: ${JSON.stringify(r.route)}`);
      assert.ok(r.route.reasons.includes('PRIVACY_KEEP_LOCAL'), prompt);
      assert.ok(Object.keys(r.route.signals.personal_data).length > 0);
    }
    const clean = await chat(srv, 'No personal data here, just a question about tea.');
    assert.equal(clean.route.route, 'cloud');
    const raw = up.requests.map((q) => q.raw.toString('utf8')).join('\n');
    assert.equal(up.requests.length, 1, 'only the clean prompt went out');
    for (const { secret } of items) assert.ok(!leaks(raw, secret), 'leaked: ' + secret);
  } finally { assert.equal(await srv.stop(), 0); }
});

test('privacy: redact replaces personal data with placeholders and restores them in the reply', async () => {
  const classes = ['email', 'phone', 'cn_id', 'bank_card', 'ip', 'secret'];
  const srv = await serverWith({ prefer: 'cloud', privacy: Object.fromEntries(classes.map((c) => [c, 'redact'])) });
  try {
    reset([], 'echo');
    const items = corpus(36, 11);
    for (const [i, { secret, prompt }] of items.entries()) {
      const stream = i % 2 === 1; // placeholders split across chunks must come back whole
      const r = await chat(srv, prompt, { stream });
      assert.equal(r.route.route, 'cloud', `${prompt}: ${JSON.stringify(r.route)}`);
      assert.ok(r.route.reasons.includes('PRIVACY_REDACTED'), prompt);
      assert.equal(r.text, 'You said: ' + prompt, 'the reply is restored');
    }
    // personal data in a stop string cannot be replaced (the cloud would stop on the placeholder):
    // such a request stays on the device
    const r = await chat(srv, 'Write a short note.', { stop: ['li.wei@example.com'], max_tokens: 2 });
    assert.equal(r.route.route, 'local', JSON.stringify(r.route));
    assert.ok(r.route.reasons.includes('PRIVACY_KEEP_LOCAL'));
    const raw = up.requests.map((q) => q.raw.toString('utf8')).join('\n');
    assert.equal(up.requests.length, items.length);
    assert.match(raw, /\[(EMAIL|PHONE|CN_ID|BANK_CARD|IP|SECRET)_1\]/);
    for (const { secret } of items) assert.ok(!leaks(raw, secret), 'leaked: ' + secret);
    assert.ok(!raw.includes('li.wei@example.com'), 'a stop string leaked');
  } finally { assert.equal(await srv.stop(), 0); }
});

test('privacy: custom keywords and patterns are kept local', async () => {
  const srv = await serverWith({ prefer: 'cloud', privacy: { custom: 'keep_local', keywords: ['Project Falcon'], patterns: ['EMP-[0-9]{6}'] } });
  try {
    reset([], 'echo');
    for (const p of ['Status of project falcon?', 'Employee EMP-123456 asked for leave']) {
      const r = await chat(srv, p, { max_tokens: 2 });
      assert.deepEqual(r.route.reasons, ['PRIVACY_KEEP_LOCAL'], p);
    }
    assert.equal(up.requests.length, 0);
  } finally { assert.equal(await srv.stop(), 0); }
});

// ---- capability, budget, deadline, cascade -------------------------------------------------------

test('capability: a named cloud model or a prompt beyond the local context goes to the cloud', async () => {
  const srv = await serverWith({ cloud: { models: ['big-model'] } });
  try {
    reset();
    const a = await chat(srv, 'hello', { model: 'big-model' });
    assert.equal(a.route.route, 'cloud');
    assert.deepEqual(a.route.reasons, ['CLOUD_MODEL_REQUESTED']);
    assert.equal(JSON.parse(up.requests[0].body).model, 'big-model');
    const b = await chat(srv, 'word '.repeat(400));
    assert.equal(b.route.route, 'cloud');
    assert.deepEqual(b.route.reasons, ['CONTEXT_TOO_LONG']);
    const c = await chat(srv, 'hello');
    assert.equal(c.route.route, 'local');
    assert.deepEqual(c.route.reasons, ['DEFAULT']);
  } finally { assert.equal(await srv.stop(), 0); }
  const off = await serverWith({ offline: true });
  try {
    const d = await chat(off, 'word '.repeat(400), { max_tokens: 4 });
    assert.equal(d.route.route, 'local', 'offline, a too-long prompt is still answered (its recent part)');
    assert.ok(d.route.reasons.includes('CONTEXT_TOO_LONG') && d.route.reasons.includes('OFFLINE'));
  } finally { assert.equal(await off.stop(), 0); }
});

test('budget: the daily cloud budget is never overrun', async () => {
  const srv = await serverWith({ prefer: 'cloud', budget: { daily_tokens: 100 } });
  try {
    reset();
    let cloudTokens = 0, spent = false;
    for (let i = 0; i < 8; i++) {
      const r = await chat(srv, 'question ' + i);
      if (r.route.route === 'cloud') cloudTokens += r.usage.total_tokens;
      else { assert.deepEqual(r.route.reasons, ['BUDGET_SPENT']); spent = true; }
    }
    assert.ok(spent, 'the budget ran out');
    assert.ok(cloudTokens > 0 && cloudTokens <= 100, `cloud tokens ${cloudTokens} within 100`);
    assert.equal(up.requests.length * 18, cloudTokens);
  } finally { assert.equal(await srv.stop(), 0); }
});

test('deadline: a per-request deadline the device cannot meet goes to the cloud', async () => {
  const srv = await serverWith({ cloud: { rtt_ms: 5 , tokens_per_s: 100000 } });
  try {
    reset();
    const a = await chat(srv, 'quick!', { max_tokens: 64 }, { 'X-Hai-Deadline-Ms': '20' });
    assert.equal(a.route.route, 'cloud');
    assert.deepEqual(a.route.reasons, ['DEADLINE']);
    assert.ok(a.route.signals.predicted_local_ms > 20 && a.route.signals.predicted_cloud_ms < 20);
    const b = await chat(srv, 'no hurry', { max_tokens: 64 });
    assert.equal(b.route.route, 'local');
  } finally { assert.equal(await srv.stop(), 0); }
});

test('cascade: an unsure local model escalates before anything is shown; a sure one does not', async () => {
  const unsure = await serverWith({ cascade: { enabled: true, tokens: 4, entropy_threshold: 0 } });
  try {
    reset();
    for (const stream of [false, true]) {
      const r = await chat(unsure, 'hard question', { stream, max_tokens: 16 });
      assert.equal(r.route.route, 'cloud');
      assert.deepEqual(r.route.reasons, ['LOW_CONFIDENCE']);
      assert.equal(r.text, CLOUD_TEXT, 'the local draft is never shown');
      assert.ok(r.route.signals.mean_entropy > 0);
    }
  } finally { assert.equal(await unsure.stop(), 0); }
  const sure = await serverWith({ cascade: { enabled: true, tokens: 4, entropy_threshold: 50 } });
  try {
    reset();
    const r = await chat(sure, 'easy question', { max_tokens: 16 });
    assert.equal(r.route.route, 'local');
    assert.equal(r.route.decision, 'local->cloud');
    assert.equal(up.requests.length, 0);
    assert.ok(r.usage.completion_tokens > 4, 'the draft is continued past K tokens');
  } finally { assert.equal(await sure.stop(), 0); }
});

test('a bad policy file is refused at start with a message naming the problem', async () => {
  const file = join(dir, 'bad.json');
  writeFileSync(file, JSON.stringify({ privacy: { emial: 'allow' } }));
  await assert.rejects(startServer(['--route-config', file]), /emial/);
});
