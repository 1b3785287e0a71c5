// The Responses API (POST /v1/responses) through hai serve, with the clients that call it: the
// official OpenAI SDK (responses.create, streamed events, function tools, previous_response_id,
// item references, text.format json_schema) and the Vercel AI SDK's default OpenAI provider
// (generateText, streamText, a tool loop, generateObject). The model has random weights and the
// Qwen vocabulary: only grammars make its calls and objects valid, so each is checked by Ajv/zod.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { generateText, streamText, generateObject, tool, stepCountIs } from 'ai';
import { createOpenAI } from '@ai-sdk/openai';
import { z } from 'zod';
import Ajv from 'ajv/dist/2020.js';
import { startServer, hai, shared } from './serve.mjs';

const ajv = new Ajv({ strict: false });
const dir = mkdtempSync(join(tmpdir(), 'hai-responses-'));
let srv, client, provider;

before(async () => {
  const model = join(dir, 'qwen-random.gguf');
  const r = spawnSync(hai, ['synth', '-o', model, '--arch', 'qwen2', '--type', 'Q8_0', '--n-embd', '64', '--n-layer', '1',
    '--n-head', '2', '--n-head-kv', '1', '--n-ff', '128', '--tied', '--std', '0.5', '--vocab', join(shared, 'vocab', 'ggml-vocab-qwen2.gguf')]);
  assert.equal(r.status, 0, String(r.stderr));
  srv = await startServer(['--ctx', '4096'], model);
  client = new OpenAI({ baseURL: srv.url + '/v1', apiKey: 'x', maxRetries: 0 });
  provider = createOpenAI({ baseURL: srv.url + '/v1', apiKey: 'x' });
});
after(async () => {
  assert.equal(await srv.stop(), 0);
  rmSync(dir, { recursive: true, force: true });
});

const timer = {
  type: 'function', name: 'set_timer', description: 'Start a countdown timer',
  parameters: { type: 'object', properties: { minutes: { type: 'integer', minimum: 1, maximum: 120 }, label: { type: 'string', maxLength: 12 } }, required: ['minutes'], additionalProperties: false },
  strict: true,
};
const validTimer = ajv.compile(timer.parameters);

test('responses.create: text, usage, and the output_text helper', async () => {
  const r = await client.responses.create({ model: 'm', input: 'Say hello.', instructions: 'Be brief.', max_output_tokens: 12, temperature: 0 });
  assert.match(r.id, /^resp_/);
  assert.equal(r.object, 'response');
  assert.equal(r.status, 'incomplete');
  assert.equal(r.incomplete_details.reason, 'max_output_tokens');
  assert.equal(r.instructions, 'Be brief.');
  assert.equal(r.output.length, 1);
  assert.equal(r.output[0].type, 'message');
  assert.match(r.output[0].id, /^msg_/);
  assert.equal(r.output_text, r.output[0].content[0].text);
  assert.equal(r.usage.output_tokens, 12);
  assert.equal(r.usage.total_tokens, r.usage.input_tokens + 12);
});

test('a streamed response: typed events in order that add up to the final response', async () => {
  const stream = await client.responses.create({ model: 'm', input: 'Tell a story.', max_output_tokens: 16, temperature: 0, stream: true });
  const types = [];
  let text = '', seq = -1, final = null;
  for await (const ev of stream) {
    assert.equal(ev.sequence_number, seq + 1, 'sequence numbers count up');
    seq = ev.sequence_number;
    types.push(ev.type);
    if (ev.type === 'response.output_text.delta') text += ev.delta;
    if (ev.type === 'response.completed' || ev.type === 'response.incomplete') final = ev.response;
  }
  assert.deepEqual(types.slice(0, 4), ['response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added']);
  assert.deepEqual(types.slice(-4), ['response.output_text.done', 'response.content_part.done', 'response.output_item.done', 'response.incomplete']);
  assert.equal(final.output[0].content[0].text, text);
  const whole = await client.responses.create({ model: 'm', input: 'Tell a story.', max_output_tokens: 16, temperature: 0 });
  assert.equal(whole.output_text, text, 'streamed and whole give the same answer');
});

test('function tools: a forced call, valid; its output fed back by previous_response_id and by items', async () => {
  for (let i = 0; i < 4; i++) {
    const r = await client.responses.create({ model: 'm', input: 'Set a timer for five minutes.', tools: [timer], tool_choice: 'required', max_output_tokens: 200 });
    const calls = r.output.filter((o) => o.type === 'function_call');
    assert.ok(calls.length >= 1, JSON.stringify(r.output));
    for (const c of calls) {
      assert.equal(c.name, 'set_timer');
      assert.match(c.call_id, /^call_/);
      assert.ok(validTimer(JSON.parse(c.arguments)), c.arguments);
    }
    if (i) continue;
    // the result, continuing the stored response
    const next = await client.responses.create({ model: 'm', previous_response_id: r.id, tools: [timer], tool_choice: 'none', max_output_tokens: 4,
      input: calls.map((c) => ({ type: 'function_call_output', call_id: c.call_id, output: '{"ok": true, "rings_at": "10:45"}' })) });
    assert.equal(next.previous_response_id, r.id);
    // the earlier turn (the call as the template writes it, then its output) is in the prompt
    assert.ok(next.usage.input_tokens > r.usage.input_tokens + 20, `${next.usage.input_tokens} vs ${r.usage.input_tokens}: the earlier turn is in the prompt`);
    // the same conversation sent as items, the call by reference
    const byItems = await client.responses.create({ model: 'm', tools: [timer], tool_choice: 'none', max_output_tokens: 4, store: false,
      input: [{ role: 'user', content: 'Set a timer for five minutes.' }, ...calls.map((c) => ({ type: 'item_reference', id: c.id })),
        ...calls.map((c) => ({ type: 'function_call_output', call_id: c.call_id, output: '{"ok": true, "rings_at": "10:45"}' }))] });
    assert.equal(byItems.usage.input_tokens, next.usage.input_tokens);
  }
  // streamed: the call's item and its argument deltas
  const stream = await client.responses.create({ model: 'm', input: 'Timer, please.', tools: [timer], tool_choice: { type: 'function', name: 'set_timer' }, max_output_tokens: 200, stream: true });
  const args = {}, done = {};
  for await (const ev of stream) {
    if (ev.type === 'response.function_call_arguments.delta') args[ev.item_id] = (args[ev.item_id] ?? '') + ev.delta;
    if (ev.type === 'response.function_call_arguments.done') done[ev.item_id] = ev.arguments;
  }
  assert.ok(Object.keys(done).length >= 1);
  assert.deepEqual(args, done);
  for (const a of Object.values(done)) assert.ok(validTimer(JSON.parse(a)), a);
});

test('text.format json_schema: the output follows the schema', async () => {
  const schema = { type: 'object', properties: { city: { type: 'string', maxLength: 20 }, rainy: { type: 'boolean' } }, required: ['city', 'rainy'], additionalProperties: false };
  const r = await client.responses.create({ model: 'm', input: 'Weather report.', max_output_tokens: 300,
    text: { format: { type: 'json_schema', name: 'report', schema, strict: true } } });
  assert.equal(r.status, 'completed');
  assert.ok(ajv.validate(schema, JSON.parse(r.output_text)), r.output_text);
  assert.equal(r.text.format.name, 'report');
});

test('Vercel AI SDK (its default provider calls the Responses API): text, stream, a tool loop, an object', async () => {
  const model = provider('m');
  const t = await generateText({ model, prompt: 'Hello', maxOutputTokens: 8, temperature: 0, maxRetries: 0 });
  assert.equal(typeof t.text, 'string');
  assert.ok(t.text.length > 0);
  assert.equal(t.usage.outputTokens, 8);
  const s = streamText({ model, prompt: 'Hello', maxOutputTokens: 8, temperature: 0, maxRetries: 0 });
  let streamed = '';
  for await (const part of s.textStream) streamed += part;
  assert.equal(streamed, t.text);
  // the tool loop: step 1 must call set_timer (its execute runs), step 2 answers with the result in view
  const executed = [];
  const loop = await generateText({
    model, prompt: 'Set a timer for 10 minutes.', maxOutputTokens: 200, maxRetries: 0, stopWhen: stepCountIs(2),
    tools: { set_timer: tool({ description: 'Start a countdown timer', inputSchema: z.object({ minutes: z.number().int().min(1).max(120) }), execute: async ({ minutes }) => { executed.push(minutes); return { ok: true, minutes }; } }) },
    prepareStep: ({ stepNumber }) => ({ toolChoice: stepNumber === 0 ? 'required' : 'none' }),
  });
  assert.equal(loop.steps.length, 2);
  assert.ok(executed.length >= 1 && executed.every((m) => Number.isInteger(m) && m >= 1 && m <= 120), JSON.stringify(executed));
  assert.equal(loop.steps[0].toolResults[0].output.ok, true);
  assert.equal(loop.steps[1].toolCalls.length, 0);
  assert.ok(loop.steps[1].usage.inputTokens > loop.steps[0].usage.inputTokens, 'the call and its result are in the second prompt');
  const schema = z.object({ city: z.string().max(20), population: z.number().int().min(0), capital: z.boolean() });
  const { object } = await generateObject({ model, schema, prompt: 'Describe a city.', maxOutputTokens: 600, maxRetries: 0 });
  assert.deepEqual(schema.parse(object), object);
});

test('stored responses are retrieved and deleted; unstored ones are not kept', async () => {
  const r = await client.responses.create({ model: 'm', input: 'Hi', max_output_tokens: 4, temperature: 0 });
  const back = await client.responses.retrieve(r.id);
  assert.deepEqual(back, r);
  const del = await client.responses.delete(r.id);
  assert.equal((await fetch(srv.url + '/v1/responses/' + r.id)).status, 404, JSON.stringify(del));
  await assert.rejects(client.responses.create({ model: 'm', previous_response_id: r.id, input: 'again', max_output_tokens: 2 }), (e) => e.status === 400);
  const unstored = await client.responses.create({ model: 'm', input: 'Hi', max_output_tokens: 2, store: false });
  assert.equal((await fetch(srv.url + '/v1/responses/' + unstored.id)).status, 404);
  assert.equal((await fetch(srv.url + '/v1/responses/' + r.id, { method: 'PUT' })).status, 405);
});

test('bad Responses requests are 400s naming the field', async () => {
  const bad = [
    [{ input: 'x', previous_response_id: 'resp_nope' }, 'previous_response_id'],
    [{ input: [{ type: 'item_reference', id: 'msg_nope' }] }, 'input[0]'],
    [{ input: 'x', tools: [{ type: 'web_search' }] }, 'tools[0]'],
    [{ input: [{ role: 'user', content: [{ type: 'input_image', image_url: 'x' }] }] }, 'input[0].content'],
    [{}, 'input'],
    [{ input: [{ type: 'computer_call' }] }, 'input[0]'],
  ];
  for (const [body, param] of bad) {
    const r = await fetch(srv.url + '/v1/responses', { method: 'POST', body: JSON.stringify({ model: 'm', ...body }) });
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.equal((await r.json()).error.param, param, JSON.stringify(body));
  }
});
