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
