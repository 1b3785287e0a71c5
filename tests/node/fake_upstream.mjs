// A fake OpenAI-compatible upstream on loopback for the router's tests. It records every byte it
// receives and answers each request according to the next mode in its script:
//   ok, ok-json, echo (replies with the user's last message), 429 (Retry-After: 1), retry-long
//   (429, Retry-After: 60), 500, 503, 503-retry (Retry-After: 5),
//   hang (headers, then silence), reset (some chunks, then the socket is destroyed), cut (no
//   [DONE]), cut-utf8 (ends inside a multi-byte character), drip (one byte a second), gzip-bomb,
//   malformed, redirect (to `redirectTo`), slow-first-byte, slow (a word every 100 ms for a minute,
//   until the client goes; `u.closed` counts the requests whose client went before the end),
//   tool / tool-json (calls the first tool offered with {"echo": the last message's content}, and a
//   second call unless parallel_tool_calls is false; streamed in pieces, or as one JSON answer).
import http from 'node:http';
import zlib from 'node:zlib';

export function startUpstream() {
  const u = { requests: [], script: [], fallback: 'ok', redirectTo: null, sockets: new Set() };
  const server = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const raw = Buffer.concat(chunks);
    u.requests.push({ method: req.method, url: req.url, headers: req.headers, raw, body: raw.toString('utf8') });
    const mode = u.script.length ? u.script.shift() : u.fallback;
    let body = {};
    try { body = JSON.parse(raw.toString('utf8')); } catch {}
    const last = body.messages ? body.messages[body.messages.length - 1]?.content ?? '' : '';
    const chunk = (delta, finish = null, usage = null) => 'data: ' + JSON.stringify({ id: 'u1', object: 'chat.completion.chunk',
      created: 1, model: body.model || 'up', choices: usage ? [] : [{ index: 0, delta, finish_reason: finish }], ...(usage ? { usage } : {}) }) + '\n\n';
    const sse = () => res.writeHead(200, { 'Content-Type': 'text/event-stream' });
    const text = mode === 'echo' ? 'You said: ' + last : 'Hello from the cloud.';
    const stream = [chunk({ role: 'assistant', content: '' }), ...text.match(/.{1,6}/gsu).map((t) => chunk({ content: t })),
      chunk({}, 'stop'), chunk({}, null, { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 }), 'data: [DONE]\n\n'];
    const calls = [{ id: 'call_up1', type: 'function', function: { name: body.tools?.[0]?.function?.name ?? 'none', arguments: JSON.stringify({ echo: last }) } }];
    if (body.parallel_tool_calls !== false) calls.push({ id: 'call_up2', type: 'function', function: { name: 'second', arguments: '{}' } });
    switch (mode) {
      case 'ok': case 'echo': sse(); for (const s of stream) res.write(s); return res.end();
      case 'tool': {
        sse();
        res.write(chunk({ role: 'assistant', content: null }));
        calls.forEach((c, index) => {
          res.write(chunk({ tool_calls: [{ index, id: c.id, type: 'function', function: { name: c.function.name, arguments: '' } }] }));
          for (const piece of c.function.arguments.match(/.{1,5}/gsu)) res.write(chunk({ tool_calls: [{ index, function: { arguments: piece } }] }));
        });
        res.write(chunk({}, 'tool_calls'));
        res.write(chunk({}, null, { prompt_tokens: 20, completion_tokens: 9, total_tokens: 29 }));
        res.write('data: [DONE]\n\n');
        return res.end();
      }
      case 'tool-json':
        res.writeHead(200, { 'Content-Type': 'application/json' });
        return res.end(JSON.stringify({ id: 'u3', object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: null, tool_calls: calls }, finish_reason: 'tool_calls' }],
          usage: { prompt_tokens: 20, completion_tokens: 9, total_tokens: 29 } }));
      case 'ok-json':
        res.writeHead(200, { 'Content-Type': 'application/json' });
        return res.end(JSON.stringify({ id: 'u2', object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }],
          usage: { prompt_tokens: 5, completion_tokens: 4, total_tokens: 9 } }));
      case '429': res.writeHead(429, { 'Retry-After': '1', 'Content-Type': 'application/json' }); return res.end('{"error":{"message":"slow down"}}');
      case 'retry-long': res.writeHead(429, { 'Retry-After': '60', 'Content-Type': 'application/json' }); return res.end('{"error":{"message":"come back later"}}');
      case '500': case '503': res.writeHead(Number(mode), { 'Content-Type': 'application/json' }); return res.end('{"error":{"message":"upstream trouble"}}');
      case '503-retry': res.writeHead(503, { 'Retry-After': '5', 'Content-Type': 'application/json' }); return res.end('{"error":{"message":"busy, retry"}}');
      case 'hang': sse(); res.flushHeaders(); return; // and nothing more
      case 'slow-first-byte': sse(); res.flushHeaders(); await new Promise((r) => setTimeout(r, 8000)); for (const s of stream) res.write(s); return res.end();
      case 'reset': sse(); res.write(stream[0]); res.write(stream[1]); await new Promise((r) => setTimeout(r, 100)); return req.socket.destroy();
      case 'cut': sse(); for (const s of stream.slice(0, -1)) res.write(s); return res.end();
      case 'cut-utf8': {
        sse();
        const b = Buffer.from(chunk({ content: 'caf\u00e9 \u4e2d\u6587' }));
        res.write(stream[0]);
        res.write(b.subarray(0, b.indexOf(Buffer.from('\u4e2d')) + 1)); // inside the 3-byte character
        await new Promise((r) => setTimeout(r, 50));
        return req.socket.destroy();
      }
      case 'slow': {
        sse();
        res.write(chunk({ role: 'assistant', content: '' }));
        let gone = false;
        res.on('close', () => { if (!res.writableEnded) { gone = true; u.closed = (u.closed || 0) + 1; } });
        for (let i = 0; i < 600 && !gone; i++) { res.write(chunk({ content: 'word' + i + ' ' })); await new Promise((r) => setTimeout(r, 100)); }
        if (gone) return;
        res.write(chunk({}, 'stop'));
        res.write('data: [DONE]\n\n');
        return res.end();
      }
      case 'drip': {
        sse();
        const all = Buffer.from(stream.join(''));
        for (let i = 0; i < all.length && !res.destroyed; i++) { res.write(all.subarray(i, i + 1)); await new Promise((r) => setTimeout(r, 1000)); }
        return res.end();
      }
      case 'gzip-bomb': {
        res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Content-Encoding': 'gzip' });
        return res.end(zlib.gzipSync(Buffer.alloc(64 << 20, 0x61), { level: 9 })); // 64 MiB of 'a'
      }
      case 'malformed': sse(); res.write(stream[0]); res.write('data: {this is not json\n\n'); res.write('data: [DONE]\n\n'); return res.end();
      case 'redirect': res.writeHead(302, { Location: u.redirectTo + '/v1/chat/completions' }); return res.end();
      default: res.writeHead(500); return res.end();
    }
  });
  server.on('connection', (s) => { u.sockets.add(s); s.on('close', () => u.sockets.delete(s)); });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    u.url = `http://127.0.0.1:${server.address().port}`;
    u.close = () => new Promise((r) => { for (const s of u.sockets) s.destroy(); server.close(() => r()); });
    resolve(u);
  }));
}
