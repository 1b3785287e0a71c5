// hai serve against bad and hostile requests, at the HTTP level: every error in the OpenAI shape
// with the right status, limits enforced, clients that stall or leave, and the server still
// answering afterwards.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startServer, metrics } from './serve.mjs';

let srv;
before(async () => { srv = await startServer(['--max-body', '300000', '--ctx', '256', '--parallel', '2', '--queue', '1']); });
after(async () => { assert.equal(await srv.stop(), 0); });

// One raw HTTP exchange over a socket: returns { status, headers, body } or { closed: true }.
function raw(url, request, { timeout = 15000, chunks = null, delay = 0 } = {}) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const sock = net.connect(Number(port), hostname);
    let data = Buffer.alloc(0);
    const timer = setTimeout(() => { sock.destroy(); resolve({ timeout: true }); }, timeout);
    sock.on('connect', async () => {
      if (chunks) {
        for (const c of chunks) { if (sock.destroyed) break; sock.write(c); if (delay) await new Promise((r) => setTimeout(r, delay)); }
      } else sock.write(request);
    });
    sock.on('data', (d) => { data = Buffer.concat([data, d]); });
    sock.on('error', () => {});
    sock.on('close', () => {
      clearTimeout(timer);
      const text = data.toString('latin1');
      const m = text.match(/^HTTP\/1\.[01] (\d+)/);
      if (!m) return resolve({ closed: true, text });
      const [head, ...rest] = text.split('\r\n\r\n');
      resolve({ status: Number(m[1]), head, body: Buffer.from(rest.join('\r\n\r\n'), 'latin1').toString('utf8') });
    });
  });
}

function post(path, body, extra = '') {
  const b = Buffer.isBuffer(body) ? body : Buffer.from(body);
  return Buffer.concat([Buffer.from(`POST ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${b.length}\r\n${extra}\r\n`), b]);
}

// Dechunks a "Transfer-Encoding: chunked" body if needed, then parses the error JSON.
function errorOf(r) {
  let body = r.body;
  if (/transfer-encoding: chunked/i.test(r.head)) {
    let out = '', rest = body;
    for (;;) { const i = rest.indexOf('\r\n'); const n = parseInt(rest.slice(0, i), 16); if (!n) break; out += rest.slice(i + 2, i + 2 + n); rest = rest.slice(i + 4 + n); }
    body = out;
  }
  const j = JSON.parse(body);
  assert.ok(j.error && typeof j.error.message === 'string' && 'type' in j.error && 'param' in j.error && 'code' in j.error,
    'OpenAI error shape: ' + body);
  return j.error;
}

const chat = (extra) => JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2, ...extra });

test('malformed JSON and non-objects are 400', async () => {
  for (const b of ['{', '{"messages": [', 'null', '[1,2]', '"text"', '', '{"messages":[{"role":"user","content":"x"}]} trailing']) {
    const r = await raw(srv.url, post('/v1/chat/completions', b));
    assert.equal(r.status, 400, `body ${JSON.stringify(b)}`);
    errorOf(r);
  }
});

test('wrong types name the field', async () => {
  const cases = [
    [{ temperature: 'hot' }, 'temperature'], [{ temperature: 3 }, 'temperature'], [{ max_tokens: -5 }, 'max_tokens'],
    [{ max_tokens: 1.5 }, 'max_tokens'], [{ top_p: 0 }, 'top_p'], [{ stream: 'yes' }, 'stream'], [{ n: 9 }, 'n'], [{ n: 0 }, 'n'],
    [{ stop: 5 }, 'stop'], [{ stop: ['a', 'b', 'c', 'd', 'e'] }, 'stop'], [{ seed: 'x' }, 'seed'],
    [{ presence_penalty: 9 }, 'presence_penalty'], [{ messages: [{ role: 'robot', content: 'x' }] }, 'messages[0].role'],
    [{ messages: [{ role: 'user', content: 123 }] }, 'messages[0].content'], [{ messages: 'hi' }, 'messages'],
    [{ model: 7 }, 'model'], [{ logprobs: 'yes' }, 'logprobs'], [{ top_logprobs: 3 }, 'top_logprobs'], [{ tools: [{ type: 'function' }] }, 'tools[0].function'], [{ tools: [{ type: 'function', function: { name: 'a b' } }] }, 'tools[0].function.name'],
    [{ stream_options: 3 }, 'stream_options'],
  ];
  for (const [extra, param] of cases) {
    const r = await raw(srv.url, post('/v1/chat/completions', chat(extra)));
    assert.equal(r.status, 400, JSON.stringify(extra));
    assert.equal(errorOf(r).param, param, JSON.stringify(extra));
  }
  const r = await raw(srv.url, post('/v1/completions', JSON.stringify({ prompt: 42 })));
  assert.equal(r.status, 400);
  assert.equal(errorOf(r).param, 'prompt');
});

test('deep nesting, invalid UTF-8 and NUL characters are 400, and the server lives on', async () => {
  const deep = '['.repeat(200000); // 200 KB of brackets
  let r = await raw(srv.url, post('/v1/chat/completions', deep));
  assert.equal(r.status, 400);
  const deepObj = '{"a":'.repeat(40000) + '1' + '}'.repeat(40000);
  r = await raw(srv.url, post('/v1/chat/completions', deepObj));
  assert.equal(r.status, 400);
  const bad = Buffer.concat([Buffer.from('{"messages":[{"role":"user","content":"ab'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('"}]}')]);
  r = await raw(srv.url, post('/v1/chat/completions', bad));
  assert.equal(r.status, 400);
  assert.match(errorOf(r).message, /UTF-8/);
  r = await raw(srv.url, post('/v1/chat/completions', '{"messages":[{"role":"user","content":"a\\u0000b"}]}'));
  assert.equal(r.status, 400);
  r = await raw(srv.url, post('/v1/chat/completions', '{"messages":[{"role":"user","content":"a\\\\u0000b"}],"max_tokens":1}'));
  assert.equal(r.status, 200, 'an escaped backslash before u0000 is ordinary text');
  assert.equal((await fetch(srv.url + '/health')).status, 200);
});

test('413 for bodies over the limit, announced or not', async () => {
  const big = JSON.stringify({ messages: [{ role: 'user', content: 'x'.repeat(400000) }] });
  let r = await raw(srv.url, post('/v1/chat/completions', big));
  assert.equal(r.status, 413);
  errorOf(r);
  r = await raw(srv.url, Buffer.from('POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 999999999\r\n\r\n{'));
  assert.equal(r.status, 413);
  // chunked, so no length is announced: the limit still holds
  const chunked = Buffer.from(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n` +
    `${(big.length).toString(16)}\r\n${big}\r\n0\r\n\r\n`);
  r = await raw(srv.url, chunked);
  assert.equal(r.status, 413);
});

test('404, 405, and a prompt longer than the context is 400 with the counts', async () => {
  let r = await raw(srv.url, 'GET /v2/whatever HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  assert.equal(r.status, 404);
  errorOf(r);
  r = await raw(srv.url, 'GET /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  assert.equal(r.status, 405);
  r = await raw(srv.url, post('/v1/chat/completions', chat({ messages: [{ role: 'user', content: 'word '.repeat(400) }] })));
  assert.equal(r.status, 400);
  const e = errorOf(r);
  assert.match(e.message, /maximum context length is 256 tokens\. However, your messages resulted in \d+ tokens/); // OpenAI's wording
  assert.equal(e.code, 'context_length_exceeded'); // what LangChain and others act on
});

test('max_tokens beyond the context ends with length, not an error', async () => {
  const r = await fetch(srv.url + '/v1/chat/completions', { method: 'POST',
    body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], max_tokens: 100000, temperature: 0 }) });
  assert.equal(r.status, 200);
  const j = await r.json();
  assert.equal(j.choices[0].finish_reason, 'length');
  assert.ok(j.usage.prompt_tokens + j.usage.completion_tokens <= 256);
});

test('huge headers are refused without harm', async () => {
  const r = await raw(srv.url, `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(200000)}\r\nConnection: close\r\n\r\n`);
  assert.ok(r.closed || r.status === 431 || r.status === 413 || r.status === 400, `got ${JSON.stringify(r).slice(0, 200)}`);
  assert.equal((await fetch(srv.url + '/health')).status, 200);
});

test('a slow client does not hold up others', async () => {
  const req = post('/v1/chat/completions', chat({}));
  const slow = raw(srv.url, null, { chunks: [...req].map((b) => Buffer.from([b])), delay: 15, timeout: 30000 });
  const t0 = Date.now();
  for (let i = 0; i < 3; i++) assert.equal((await fetch(srv.url + '/v1/chat/completions', { method: 'POST', body: chat({}) })).status, 200);
  assert.ok(Date.now() - t0 < 10000);
  const r = await slow; // and the slow one is still answered in the end
  assert.equal(r.status, 200);
});

test('429 with Retry-After when slots and queue are full; a client that leaves frees its slot', async (t) => {
  // its own server with a long context: the reference model decodes thousands of tokens a second,
  // so the streams that fill the slots must be long enough to still run when the next one comes
  const srv = await startServer(['--ctx', '4096', '--parallel', '2', '--queue', '1']);
  t.after(() => srv.stop());
  const maxTokens = 4000;
  const long = JSON.stringify({ messages: [{ role: 'user', content: 'go' }], max_tokens: maxTokens, stream: true, temperature: 0 });
  // fill the two slots and the one queue place with streams we then abandon
  const ctrl = [new AbortController(), new AbortController(), new AbortController()];
  const started = ctrl.map((c) => fetch(srv.url + '/v1/chat/completions', { method: 'POST', body: long, signal: c.signal }));
  await Promise.all(started.slice(0, 2).map(async (p) => { const r = await p; const rd = r.body.getReader(); await rd.read(); }));
  for (let i = 0; i < 100 && (await metrics(srv.url)).hai_queue_depth !== 1; i++) await new Promise((r) => setTimeout(r, 10));
  const r = await fetch(srv.url + '/v1/chat/completions', { method: 'POST', body: chat({}) });
  assert.equal(r.status, 429);
  assert.ok(r.headers.get('retry-after'));
  const before = await metrics(srv.url);
  for (const c of ctrl) c.abort();
  await Promise.allSettled(started);
  // within a moment every slot is idle again and the queue empty
  let m;
  for (let i = 0; i < 50; i++) {
    m = await metrics(srv.url);
    if (m.hai_slots_busy === 0 && m.hai_queue_depth === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(m.hai_slots_busy, 0);
  assert.equal(m.hai_queue_depth, 0);
  assert.ok(m.hai_client_disconnects_total > (before.hai_client_disconnects_total || 0));
  assert.ok(m.hai_completion_tokens_total - before.hai_completion_tokens_total < 3 * maxTokens, 'abandoned streams stopped early');
  assert.equal((await fetch(srv.url + '/v1/chat/completions', { method: 'POST', body: chat({}) })).status, 200);
});

test('the next turn of a conversation reuses the cached prompt', async () => {
  const turn1 = [{ role: 'user', content: 'Tell me something about the sea and the sky. ' + 'Please be detailed. '.repeat(8) }];
  const a = await (await fetch(srv.url + '/v1/chat/completions', { method: 'POST',
    body: JSON.stringify({ messages: turn1, max_tokens: 8, temperature: 0 }) })).json();
  const turn2 = [...turn1, { role: 'assistant', content: a.choices[0].message.content }, { role: 'user', content: 'And more?' }];
  const b = await (await fetch(srv.url + '/v1/chat/completions', { method: 'POST',
    body: JSON.stringify({ messages: turn2, max_tokens: 8, temperature: 0 }) })).json();
  assert.ok(b.usage.prompt_tokens_details.cached_tokens >= a.usage.prompt_tokens - 1,
    `cached ${b.usage.prompt_tokens_details.cached_tokens} of turn 1's ${a.usage.prompt_tokens}`);
});

test('no CORS headers unless asked', async () => {
  const r = await fetch(srv.url + '/health', { headers: { Origin: 'http://evil.example' } });
  assert.equal(r.headers.get('access-control-allow-origin'), null);
});

test('metrics expose requests, tokens, latency histograms, queue and slots', async () => {
  const m = await metrics(srv.url);
  assert.ok(m['hai_requests_total{endpoint="/v1/chat/completions",status="400"}'] > 10);
  assert.ok(m['hai_requests_total{endpoint="/v1/chat/completions",status="413"}'] >= 1);
  assert.ok(m.hai_completion_tokens_total > 0 && m.hai_prompt_tokens_total > 0);
  assert.ok(m['hai_time_to_first_token_seconds_count'] > 0);
  assert.ok(m['hai_token_latency_seconds_bucket{le="+Inf"}'] > 0);
  assert.equal(m.hai_slots_total, 2);
});

test('a request past --timeout: the same message streamed (a final error event) or not (504)', async () => {
  const s2 = await startServer(['--ctx', '4096', '--timeout', '0.3']);
  try {
    const body = (stream) => JSON.stringify({ messages: [{ role: 'user', content: 'go' }], max_tokens: 4000, temperature: 0, stream });
    const a = await fetch(s2.url + '/v1/chat/completions', { method: 'POST', body: body(false) });
    assert.equal(a.status, 504);
    const ea = (await a.json()).error;
    const b = await (await fetch(s2.url + '/v1/chat/completions', { method: 'POST', body: body(true) })).text();
    const last = b.trim().split('\n\n').pop();
    assert.ok(last.startsWith('data: {"error"'), 'the stream ends with an error event: ' + last);
    const eb = JSON.parse(last.slice(6)).error;
    assert.equal(eb.message, ea.message);
    assert.equal(eb.type, ea.type);
    assert.match(ea.message, /timed out/);
  } finally { await s2.stop(); }
});
