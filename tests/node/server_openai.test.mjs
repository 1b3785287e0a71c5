// hai serve with the official OpenAI SDK for JavaScript: chat and completions, streaming and not,
// the parameters apps send, usage numbers, and the SDK's view of errors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer } from './serve.mjs';

let srv, client;
before(async () => {
  srv = await startServer(['--api-key', 'sekret']);
  client = new OpenAI({ baseURL: srv.url + '/v1', apiKey: 'sekret', maxRetries: 0 });
});
after(async () => { assert.equal(await srv.stop(), 0); });

const messages = [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: 'Hello there' }];

test('models list', async () => {
  const list = await client.models.list();
  assert.equal(list.data.length, 1);
  assert.equal(list.data[0].id, 'qwen2-s-Q8_0');
});

test('chat completion, not streamed', async () => {
  const r = await client.chat.completions.create({ model: 'qwen2-s-Q8_0', messages, max_tokens: 12, temperature: 0 });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(typeof r.choices[0].message.content, 'string');
  assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
  assert.ok(r.usage.prompt_tokens > 5);
  assert.ok(r.usage.completion_tokens >= 1 && r.usage.completion_tokens <= 12);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
});

test('greedy answers are reproducible, and seeds reproduce samples', async () => {
  const a = await client.chat.completions.create({ model: 'm', messages, max_tokens: 16, temperature: 0 });
  const b = await client.chat.completions.create({ model: 'm', messages, max_tokens: 16, temperature: 0 });
  assert.equal(a.choices[0].message.content, b.choices[0].message.content);
  const c = await client.chat.completions.create({ model: 'm', messages, max_tokens: 16, temperature: 1.2, seed: 42 });
  const d = await client.chat.completions.create({ model: 'm', messages, max_tokens: 16, temperature: 1.2, seed: 42 });
  assert.equal(c.choices[0].message.content, d.choices[0].message.content);
});

test('chat completion, streamed: role delta, content deltas, finish, usage', async () => {
  const stream = await client.chat.completions.create({
    model: 'm', messages, max_tokens: 10, temperature: 0, stream: true, stream_options: { include_usage: true } });
  let text = '', roles = 0, finish = null, usage = null, chunks = 0;
  for await (const ch of stream) {
    chunks++;
    if (ch.usage) usage = ch.usage;
    for (const c of ch.choices) {
      if (c.delta.role) roles++;
      if (c.delta.content) text += c.delta.content;
      if (c.finish_reason) finish = c.finish_reason;
    }
    assert.equal(ch.object, 'chat.completion.chunk');
  }
  assert.equal(roles, 1);
  assert.ok(['stop', 'length'].includes(finish));
  assert.ok(usage && usage.completion_tokens >= 1);
  assert.ok(chunks >= 3);
  const whole = await client.chat.completions.create({ model: 'm', messages, max_tokens: 10, temperature: 0 });
  assert.equal(text, whole.choices[0].message.content); // streamed text == the same request unstreamed
});

test('stop strings, penalties and top_p are accepted', async () => {
  const r = await client.chat.completions.create({ model: 'm', messages, max_tokens: 20, temperature: 0.7, top_p: 0.9,
    presence_penalty: 0.5, frequency_penalty: 0.5, stop: ['\n\n', 'xyz'], seed: 1, max_completion_tokens: 20 });
  assert.ok(!r.choices[0].message.content.includes('xyz'));
});

test('completions endpoint, streamed and not', async () => {
  const r = await client.completions.create({ model: 'm', prompt: 'Once upon a time', max_tokens: 8, temperature: 0 });
  assert.equal(r.object, 'text_completion');
  assert.equal(typeof r.choices[0].text, 'string');
  let text = '';
  for await (const ch of await client.completions.create({ model: 'm', prompt: 'Once upon a time', max_tokens: 8, temperature: 0, stream: true }))
    text += ch.choices[0]?.text ?? '';
  assert.equal(text, r.choices[0].text);
});

test('errors reach the SDK with their status and field', async () => {
  await assert.rejects(client.chat.completions.create({ model: 'm', messages, temperature: 5 }),
    (e) => e.status === 400 && e.error?.param === 'temperature');
  await assert.rejects(client.chat.completions.create({ model: 'm', messages: [] }),
    (e) => e.status === 400 && e.error?.param === 'messages');
  const bad = new OpenAI({ baseURL: srv.url + '/v1', apiKey: 'wrong', maxRetries: 0 });
  await assert.rejects(bad.models.list(), (e) => e.status === 401);
});

test('one model by id; an unknown id is 404 with code model_not_found', async () => {
  const m = await client.models.retrieve('qwen2-s-Q8_0');
  assert.equal(m.id, 'qwen2-s-Q8_0');
  assert.equal(m.object, 'model');
  await assert.rejects(client.models.retrieve('gpt-nothing'), (e) => e.status === 404 && e.code === 'model_not_found');
});

test('a prompt over the context: 400 context_length_exceeded, as OpenAI says it', async () => {
  const long = [{ role: 'user', content: 'word '.repeat(5000) }];
  await assert.rejects(client.chat.completions.create({ model: 'm', messages: long, max_tokens: 4 }),
    (e) => e.status === 400 && e.code === 'context_length_exceeded' && /maximum context length/.test(e.message));
});

test('CORS: the preflight allows the headers the SDK really sends from a browser', async () => {
  const http = await import('node:http');
  // what openai-node sends: captured from a request to a local listener
  const seen = await new Promise((resolve) => {
    const l = http.createServer((req, res) => {
      resolve(Object.keys(req.headers));
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ object: 'list', data: [] }));
      l.close();
    }).listen(0, '127.0.0.1', async () => {
      const c = new OpenAI({ baseURL: `http://127.0.0.1:${l.address().port}/v1`, apiKey: 'k', maxRetries: 0, organization: 'org', project: 'p' });
      await c.models.list().catch(() => {});
    });
  });
  // a browser may not send these itself (forbidden or simple headers); it asks for the rest
  const simple = new Set(['host', 'connection', 'content-length', 'accept', 'accept-encoding', 'user-agent', 'content-type']);
  const asked = seen.filter((h) => !simple.has(h));
  assert.ok(asked.some((h) => h.startsWith('x-stainless-')), 'the SDK sent its x-stainless headers: ' + seen.join(','));
  const srv2 = await startServer(['--cors-origin', 'http://app.example']);
  try {
    const r = await fetch(srv2.url + '/v1/chat/completions', { method: 'OPTIONS', headers: {
      Origin: 'http://app.example', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': [...asked, 'content-type'].join(',') } });
    assert.equal(r.status, 204);
    assert.equal(r.headers.get('access-control-allow-origin'), 'http://app.example');
    const allowed = r.headers.get('access-control-allow-headers').toLowerCase().split(',').map((x) => x.trim());
    for (const h of [...asked, 'content-type']) assert.ok(allowed.includes(h), `${h} allowed (got ${allowed})`);
    // a header value that is not a list of names is not echoed back
    const bad = await fetch(srv2.url + '/v1/models', { method: 'OPTIONS', headers: { Origin: 'http://app.example',
      'Access-Control-Request-Method': 'GET', 'Access-Control-Request-Headers': 'x-a, x-b: evil' } });
    assert.equal(bad.headers.get('access-control-allow-headers'), 'Authorization, Content-Type');
  } finally { await srv2.stop(); }
});

test('logit_bias is applied (+100 forces a token, greedy or sampled); a token outside the vocabulary is 400', async () => {
  const one = async (bias, n, extra = {}) => (await client.completions.create({ model: 'm', prompt: 'Once upon a time', max_tokens: n,
    temperature: 0, logit_bias: bias, ...extra })).choices[0].text;
  const a1 = await one({ 278: 100 }, 1), b1 = await one({ 300: 100 }, 1);
  assert.notEqual(a1, b1, 'two forced tokens give two texts');
  assert.equal(await one({ 278: 100 }, 3), a1.repeat(3));
  assert.equal(await one({ 278: 100 }, 3, { temperature: 1.5, seed: 3 }), a1.repeat(3));
  const plain = await one({}, 1), banned = await one({ [await firstId()]: -100 }, 1);
  assert.notEqual(plain, banned, '-100 bans the greedy choice');
  await assert.rejects(client.completions.create({ model: 'm', prompt: 'x', max_tokens: 1, logit_bias: { 999999: 5 } }),
    (e) => e.status === 400 && e.error?.param === 'logit_bias');
  await assert.rejects(client.completions.create({ model: 'm', prompt: 'x', max_tokens: 1, logit_bias: { 5: 101 } }),
    (e) => e.status === 400 && e.error?.param === 'logit_bias');
});

// the id of the greedy first token of the prompt above: the token whose +100 bias reproduces it
async function firstId() {
  const want = (await client.completions.create({ model: 'm', prompt: 'Once upon a time', max_tokens: 1, temperature: 0 })).choices[0].text;
  for (let id = 0; id < 2048; id++) {
    const t = (await client.completions.create({ model: 'm', prompt: 'x', max_tokens: 1, temperature: 0, logit_bias: { [id]: 100 } })).choices[0].text;
    if (t === want && t !== '') return id;
  }
  throw new Error('no token gives ' + JSON.stringify(want));
}

test('logprobs: chat (top_logprobs) and completions (logprobs: k), streamed and not, in OpenAI shape', async () => {
  const r = await client.chat.completions.create({ model: 'm', messages, max_tokens: 8, temperature: 0, logprobs: true, top_logprobs: 3 });
  const content = r.choices[0].logprobs.content;
  assert.equal(content.length, r.usage.completion_tokens);
  for (const t of content) {
    assert.ok(t.logprob <= 0 && Array.isArray(t.bytes) && typeof t.token === 'string');
    assert.equal(t.top_logprobs.length, 3);
    assert.ok(t.top_logprobs[0].logprob >= t.top_logprobs[1].logprob && t.top_logprobs[1].logprob >= t.top_logprobs[2].logprob);
    assert.ok(Math.abs(t.logprob - t.top_logprobs[0].logprob) < 1e-6, 'greedy: the chosen token is the most likely');
    assert.ok(t.top_logprobs.reduce((s, x) => s + Math.exp(x.logprob), 0) <= 1 + 1e-6);
  }
  assert.equal(Buffer.concat(content.map((t) => Buffer.from(t.bytes))).toString('utf8'), r.choices[0].message.content);
  // streamed: the same tokens, spread over the chunks
  const st = await client.chat.completions.create({ model: 'm', messages, max_tokens: 8, temperature: 0, logprobs: true, top_logprobs: 3, stream: true });
  const got = [];
  for await (const ch of st) for (const t of ch.choices[0]?.logprobs?.content ?? []) got.push(t.logprob);
  assert.equal(got.length, content.length); // the same tokens (a cached prompt takes another numeric path: close, not equal)
  got.forEach((v, i) => assert.ok(Math.abs(v - content[i].logprob) < 1e-3, `${v} vs ${content[i].logprob}`));
  // without logprobs: null
  const plain = await client.chat.completions.create({ model: 'm', messages, max_tokens: 2, temperature: 0 });
  assert.equal(plain.choices[0].logprobs, null);
  await assert.rejects(client.chat.completions.create({ model: 'm', messages, top_logprobs: 3 }), (e) => e.status === 400 && e.error?.param === 'top_logprobs');
  await assert.rejects(client.chat.completions.create({ model: 'm', messages, logprobs: true, top_logprobs: 21 }), (e) => e.status === 400);
  // completions: tokens, token_logprobs, top_logprobs (a map per token), text_offset
  const c = await client.completions.create({ model: 'm', prompt: 'Once upon a time', max_tokens: 6, temperature: 0, logprobs: 2 });
  const l = c.choices[0].logprobs;
  assert.equal(l.tokens.length, c.usage.completion_tokens);
  assert.equal(l.token_logprobs.length, l.tokens.length);
  assert.equal(l.top_logprobs.length, l.tokens.length);
  assert.ok(l.top_logprobs.every((m) => Object.keys(m).length >= 1 && Object.keys(m).length <= 2));
  assert.equal(l.text_offset[0], 0);
  for (let i = 1; i < l.tokens.length; i++) assert.ok(l.text_offset[i] >= l.text_offset[i - 1]);
});

test('n choices (one prompt read once, batched) and a prompt array on completions, streamed and not', async () => {
  const r = await client.chat.completions.create({ model: 'm', messages, max_tokens: 12, temperature: 2, n: 4, seed: 11 });
  assert.equal(r.choices.length, 4);
  assert.deepEqual(r.choices.map((c) => c.index), [0, 1, 2, 3]);
  assert.ok(new Set(r.choices.map((c) => c.message.content)).size > 1, 'the choices differ');
  assert.ok(r.usage.completion_tokens > 12 && r.usage.completion_tokens <= 48, 'the answers summed: ' + r.usage.completion_tokens);
  const again = await client.chat.completions.create({ model: 'm', messages, max_tokens: 12, temperature: 2, n: 4, seed: 11 });
  assert.deepEqual(again.choices.map((c) => c.message.content), r.choices.map((c) => c.message.content), 'seeded: reproducible per choice');
  // greedy: every choice the same answer as one greedy request
  const one = await client.chat.completions.create({ model: 'm', messages, max_tokens: 6, temperature: 0 });
  const g = await client.chat.completions.create({ model: 'm', messages, max_tokens: 6, temperature: 0, n: 3 });
  for (const c of g.choices) assert.equal(c.message.content, one.choices[0].message.content);
  assert.ok(g.usage.prompt_tokens === one.usage.prompt_tokens, 'the prompt counted once');
  // and read once: a new prompt with n = 3 costs the engine its tokens plus one per later choice
  const { metrics } = await import('./serve.mjs');
  const before = (await metrics(srv.url, { Authorization: 'Bearer sekret' })).hai_prompt_tokens_total;
  const fresh = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'A new prompt about rivers and lakes.' }],
    max_tokens: 2, temperature: 0, n: 3 });
  const read = (await metrics(srv.url, { Authorization: 'Bearer sekret' })).hai_prompt_tokens_total - before;
  const cached = fresh.usage.prompt_tokens_details.cached_tokens; // a prefix earlier requests left in a slot
  assert.equal(read, fresh.usage.prompt_tokens - cached + 2, `prompt tokens read: ${read} for a prompt of ${fresh.usage.prompt_tokens} (${cached} cached)`);
  // streamed: chunks of every index, each ending with its finish_reason
  const st = await client.chat.completions.create({ model: 'm', messages, max_tokens: 6, temperature: 0, n: 3, stream: true });
  const text = ['', '', ''], finished = [false, false, false];
  for await (const ch of st) for (const c of ch.choices) { text[c.index] += c.delta?.content ?? ''; if (c.finish_reason) finished[c.index] = true; }
  assert.deepEqual(finished, [true, true, true]);
  for (const t of text) assert.equal(t, one.choices[0].message.content);
  // completions: a choice per prompt (and per n), index = prompt * n + k
  const c = await client.completions.create({ model: 'm', prompt: ['Once upon a time', 'The sea'], max_tokens: 4, temperature: 0, n: 2 });
  assert.equal(c.choices.length, 4);
  const single = async (p) => (await client.completions.create({ model: 'm', prompt: p, max_tokens: 4, temperature: 0 })).choices[0].text;
  const a0 = await single('Once upon a time'), a1 = await single('The sea');
  assert.deepEqual(c.choices.sort((x, y) => x.index - y.index).map((x) => x.text), [a0, a0, a1, a1]);
});

test('tool calls in the history: malformed ones are a 400 naming the field; a model without a template gets them as text', async () => {
  await assert.rejects(client.chat.completions.create({ model: 'm', max_tokens: 2,
    messages: [{ role: 'assistant', content: null, tool_calls: [{ id: 'x', type: 'function', function: { name: 'f' } }] }] }),
  (e) => e.status === 400 && /messages\[0\]\.tool_calls/.test(e.message));
  await assert.rejects(client.chat.completions.create({ model: 'm', max_tokens: 2,
    messages: [{ role: 'user', content: 'hi', tool_calls: [] }] }), (e) => e.status === 400 && /only for assistant/.test(e.message));
  // this model has no chat template: hai writes the calls and results into the turns as text
  const hist = [{ role: 'user', content: 'hi' }, { role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{"a": 1}' } }] },
    { role: 'tool', tool_call_id: 'c', content: 'the result of f' }];
  const r = await client.chat.completions.create({ model: 'm', max_tokens: 2, messages: hist });
  const bare = await client.chat.completions.create({ model: 'm', max_tokens: 2, messages: hist.slice(0, 1) });
  assert.ok(r.usage.prompt_tokens > bare.usage.prompt_tokens + 10, `${r.usage.prompt_tokens} vs ${bare.usage.prompt_tokens}`);
});

test('tool_choice without tools is refused as OpenAI refuses it', async () => {
  await assert.rejects(client.chat.completions.create({ model: 'm', messages, max_tokens: 2, tool_choice: 'auto' }),
    (e) => e.status === 400 && e.param === 'tool_choice' && /only allowed when 'tools' are specified/.test(e.message));
});
