// hai serve against hostile and unusual clients, and stopping cleanly: request framing (RFC 9112),
// the Authorization scheme in any case, values at the edge of a float, half-closed sockets, idle
// and slow connections that must not lock anyone out, and SIGTERM with requests queued, running
// locally and waiting on a hanging or retrying cloud.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, metrics } from './serve.mjs';
import { startUpstream } from './fake_upstream.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const servers = [];
after(async () => { for (const s of servers) await s.stop(); });
async function serve(args, model) { const s = await startServer(args, model); servers.push(s); return s; }

// One raw exchange: writes `chunks` (with `delay` ms between them), optionally half-closes, and
// returns what came back before the server closed: { text, ms, closed }.
function exchange(url, chunks, { halfClose = false, delay = 0, timeout = 15000 } = {}) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const sock = net.connect(Number(port), hostname);
    const t0 = Date.now();
    let data = Buffer.alloc(0), done = false;
    const finish = (closed) => { if (done) return; done = true; clearTimeout(timer); sock.destroy(); resolve({ text: data.toString('utf8'), ms: Date.now() - t0, closed }); };
    const timer = setTimeout(() => finish(false), timeout);
    sock.on('connect', async () => {
      for (const c of [].concat(chunks)) { if (sock.destroyed) return; sock.write(c); if (delay) await sleep(delay); }
      if (halfClose && !sock.destroyed) sock.end(); // FIN: nothing more to send, still reading
    });
    sock.on('data', (d) => { data = Buffer.concat([data, d]); });
    sock.on('error', () => finish(true));
    sock.on('close', () => finish(true));
  });
}

const post = (path, body, extra = '') =>
  `POST ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;
const status = (text) => Number((text.match(/^HTTP\/1\.1 (\d+)/) || [])[1]);
const chatBody = (extra = {}) => JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], max_tokens: 4, temperature: 0, ...extra });

test('framing: Transfer-Encoding with Content-Length is 400, an unknown coding 501 at once; both close the connection', async () => {
  const srv = await serve(['--ctx', '256']);
  const b = chatBody();
  let r = await exchange(srv.url, `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: ${b.length}\r\n\r\n` +
    `${b.length.toString(16)}\r\n${b}\r\n0\r\n\r\n`);
  assert.equal(status(r.text), 400, r.text);
  assert.match(r.text, /Transfer-Encoding and Content-Length/);
  assert.match(r.text, /Connection: close/i);
  assert.ok(r.closed, 'the connection is closed after the refusal');
  for (const te of ['gzip', 'gzip, chunked', 'chunked, chunked', 'identity']) {
    r = await exchange(srv.url, `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ${te}\r\n\r\n${b}`, { timeout: 5000 });
    assert.equal(status(r.text), 501, `${te}: ${r.text}`);
    assert.ok(r.ms < 4000, `${te}: answered in ${r.ms} ms`); // waiting for a body it cannot frame took 60 s
  }
  r = await exchange(srv.url, `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: ${b.length}\r\nContent-Length: ${b.length + 5}\r\n\r\n${b}`);
  assert.equal(status(r.text), 400, r.text);
  // chunked alone, in any case, is fine
  r = await exchange(srv.url, `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: Chunked\r\n\r\n` +
    `${b.length.toString(16)}\r\n${b}\r\n0\r\n\r\n`);
  assert.equal(status(r.text), 200, r.text);
});

test('Authorization: the Bearer scheme in any case, one or more spaces', async () => {
  const srv = await serve(['--ctx', '256', '--api-key', 'k-123']);
  for (const [auth, want] of [['Bearer k-123', 200], ['bearer k-123', 200], ['BEARER   k-123', 200], ['bEaReR\tk-123', 200],
    ['Bearer k-1234', 401], ['Bearerk-123', 401], ['Basic k-123', 401], ['Bearer ', 401]]) {
    const r = await fetch(srv.url + '/v1/models', { headers: { Authorization: auth } });
    assert.equal(r.status, want, auth);
  }
});

test('every value a client can send is refused or works: top_p 1e-300', async () => {
  const srv = await serve(['--ctx', '256']);
  for (const extra of [{ top_p: 1e-300 }, { top_p: 5e-324, temperature: 1 }, { temperature: 1e-300 }, { min_p: 1e-300 },
    { presence_penalty: -1e-300, frequency_penalty: 1e-320 }, { seed: -9.2e18 }]) {
    const r = await fetch(srv.url + '/v1/chat/completions', { method: 'POST', body: chatBody(extra) });
    assert.equal(r.status, 200, `${JSON.stringify(extra)}: ${await r.text()}`);
  }
});

test('a client that half-closes after its request gets its answer, streamed or not', async () => {
  const srv = await serve(['--ctx', '256']);
  let r = await exchange(srv.url, post('/v1/chat/completions', chatBody()), { halfClose: true });
  assert.equal(status(r.text), 200, r.text);
  assert.match(r.text, /"finish_reason":"(stop|length)"/);
  r = await exchange(srv.url, post('/v1/chat/completions', chatBody({ stream: true, max_tokens: 32 })), { halfClose: true });
  assert.equal(status(r.text), 200, r.text);
  assert.match(r.text, /data: \[DONE\]/);
  r = await exchange(srv.url, post('/v1/completions', JSON.stringify({ prompt: 'hi', max_tokens: 3 })), { halfClose: true });
  assert.equal(status(r.text), 200, r.text);
});

test('a stream whose client closed its socket (not half-closed) is cancelled', async () => {
  const srv = await serve(['--ctx', '4096', '--parallel', '1']);
  const before = await metrics(srv.url);
  const { hostname, port } = new URL(srv.url);
  const sock = net.connect(Number(port), hostname);
  await new Promise((r) => sock.on('connect', r));
  sock.write(post('/v1/chat/completions', chatBody({ stream: true, max_tokens: 4000 })));
  await new Promise((r) => sock.once('data', r));
  sock.destroy(); // close(): a FIN, as a half-close sends; the next bytes the server sends meet a reset
  let m;
  for (let i = 0; i < 100; i++) { m = await metrics(srv.url); if (m.hai_slots_busy === 0) break; await sleep(50); }
  assert.equal(m.hai_slots_busy, 0, 'the slot is free again');
  assert.ok(m.hai_client_disconnects_total > (before.hai_client_disconnects_total || 0));
  assert.ok(m.hai_completion_tokens_total - (before.hai_completion_tokens_total || 0) < 4000, 'stopped early');
});

test('idle and slow connections: closed after their timeouts, and never lock out a new client', async () => {
  const srv = await serve(['--ctx', '256', '--max-connections', '16', '--idle-timeout', '1.5', '--body-timeout', '2']);
  const { hostname, port } = new URL(srv.url);
  // 64 idle connections from this one address (on loopback: everyone's), more than the server holds
  const idle = [];
  for (let i = 0; i < 64; i++) {
    const s = net.connect(Number(port), hostname);
    s.on('error', () => {});
    s.closedAt = null;
    s.on('close', () => { s.closedAt = Date.now(); });
    idle.push(s);
    await new Promise((r) => { s.once('connect', r); s.once('close', r); });
  }
  const t0 = Date.now();
  const r = await fetch(srv.url + '/v1/chat/completions', { method: 'POST', body: chatBody() });
  assert.equal(r.status, 200, 'a new client is served while idlers hold sockets');
  assert.ok(Date.now() - t0 < 5000, `served in ${Date.now() - t0} ms`); // locked out, it would wait for an idler's timeout
  // the idlers themselves are closed within the idle timeout
  await sleep(2500);
  assert.equal(idle.filter((s) => s.closedAt === null).length, 0, 'every idle connection was closed');
  // headers a byte at a time: the idle timeout counts from the first byte, not the last
  const hdr = 'GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ' + 'a'.repeat(200) + '\r\n\r\n';
  const slow = await exchange(srv.url, [...hdr].map((ch) => ch), { delay: 100, timeout: 10000 });
  assert.ok(slow.closed && slow.ms < 6000 && !status(slow.text), `slow headers: closed after ${slow.ms} ms, got '${slow.text.slice(0, 40)}'`);
  // a body a byte at a time, past the body timeout
  const body = chatBody();
  const head = `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`;
  const slowBody = await exchange(srv.url, [head, ...[...body].map((ch) => ch)], { delay: 150, timeout: 15000 });
  assert.ok(slowBody.closed && slowBody.ms < 8000, `slow body: closed after ${slowBody.ms} ms`);
  assert.equal((await fetch(srv.url + '/health')).status, 200);
  for (const s of idle) s.destroy();
});

// Reads an SSE response to its end: { status, events, done } (events: parsed data objects).
async function readStream(resPromise) {
  try {
    const r = await resPromise;
    const text = await r.text();
    const events = [];
    let done = false;
    for (const ev of text.split('\n\n')) {
      if (!ev.startsWith('data: ')) continue;
      if (ev === 'data: [DONE]') { done = true; continue; }
      events.push(JSON.parse(ev.slice(6)));
    }
    return { status: r.status, events, done, text };
  } catch (e) {
    return { error: String(e) };
  }
}

test('SIGTERM: queued requests get 503 or a final error event, the running one is answered, exit 0', async () => {
  const srv = await startServer(['--ctx', '4096', '--parallel', '1', '--queue', '4', '--shutdown-grace', '40']);
  // the running request must outlast the queueing below but end well within the grace period on
  // any build (the sanitizer build decodes ~10x slower): about 2 s of this machine's decoding
  const t0 = Date.now();
  const probe = await (await fetch(srv.url + '/v1/chat/completions', { method: 'POST',
    body: JSON.stringify({ messages: [{ role: 'user', content: 'go' }], max_tokens: 64, temperature: 0 }) })).json();
  const n = Math.max(64, Math.min(3000, Math.round(probe.usage.completion_tokens / ((Date.now() - t0) / 1000) * 2)));
  const long = (extra) => fetch(srv.url + '/v1/chat/completions', { method: 'POST',
    body: JSON.stringify({ messages: [{ role: 'user', content: 'go' }], max_tokens: n, temperature: 0, ...extra }) });
  const running = readStream(long({ stream: true }));
  for (let i = 0; i < 100 && (await metrics(srv.url)).hai_slots_busy !== 1; i++) await sleep(10);
  const queuedStream = readStream(long({ stream: true }));
  const queuedPlain = long({}).then(async (r) => ({ status: r.status, body: await r.json() }), (e) => ({ error: String(e) }));
  for (let i = 0; i < 100 && (await metrics(srv.url)).hai_queue_depth !== 2; i++) await sleep(10);
  assert.equal((await metrics(srv.url)).hai_queue_depth, 2);
  const code = srv.stop();
  const [a, b, c] = await Promise.all([running, queuedStream, queuedPlain]);
  assert.equal(await code, 0, 'exit 0: ' + srv.log());
  assert.ok(a.done && a.events.at(-1).choices[0].finish_reason, `the running stream ends normally: ${a.error || a.text?.slice(-200)}`);
  assert.equal(b.status, 200);
  assert.ok(!b.done && b.events.at(-1).error && /shutting down/.test(b.events.at(-1).error.message), `queued stream: ${b.text?.slice(-200)}`);
  assert.equal(c.status, 503, JSON.stringify(c));
  assert.match(c.body.error.message, /shutting down/);
});

test('SIGTERM with routed requests on a hanging cloud and one waiting to retry: cancelled after the grace, nothing retried, exit 0', async () => {
  const up = await startUpstream();
  try {
    const dir = mkdtempSync(join(tmpdir(), 'hai-shutdown-'));
    const file = join(dir, 'policy.json');
    writeFileSync(file, JSON.stringify({ prefer: 'cloud', cloud: { base_url: up.url + '/v1', model: 'up', first_byte_timeout_ms: 60000,
      idle_timeout_ms: 60000, total_timeout_ms: 120000, max_retries: 3, circuit_failures: 100 } }));
    const srv = await startServer(['--ctx', '256', '--route-config', file, '--shutdown-grace', '1']);
    up.script = ['hang', 'hang', '503-retry'];
    const req = (extra) => fetch(srv.url + '/v1/chat/completions', { method: 'POST',
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], max_tokens: 8, ...extra }) });
    const hangingStream = readStream(req({ stream: true }));
    await sleep(100);
    const hangingPlain = req({}).then(async (r) => ({ status: r.status, body: await r.json() }), (e) => ({ error: String(e) }));
    await sleep(100);
    const retrying = req({}).then(async (r) => ({ status: r.status, body: await r.json() }), (e) => ({ error: String(e) }));
    for (let i = 0; i < 100 && up.requests.length < 3; i++) await sleep(20);
    assert.equal(up.requests.length, 3, 'all three reached the upstream');
    const t0 = Date.now();
    const code = await srv.stop();
    const [a, b, c] = await Promise.all([hangingStream, hangingPlain, retrying]);
    assert.equal(code, 0, 'exit 0: ' + srv.log());
    assert.ok(Date.now() - t0 < 15000, `stopped in ${Date.now() - t0} ms`); // the cloud's own timeouts are 60 s
    assert.ok(a.status === 200 && !a.done && /shutting down|cancelled/.test(a.events.at(-1)?.error?.message), `stream: ${a.error || a.text}`);
    assert.equal(b.status, 503, JSON.stringify(b));
    assert.equal(c.status, 503, JSON.stringify(c));
    assert.equal(up.requests.length, 3, 'the retry wait ended as stopped: no other attempt');
  } finally {
    await up.close();
  }
});
