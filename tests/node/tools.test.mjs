// Tool calls through hai serve with the official OpenAI SDK: tools with tool_choice required, a
// named function and auto, streamed and not, results fed back, the SDK's runTools helper; on
// models with random weights in each family's call syntax (Qwen/Hermes, Llama 3.1, Mistral Nemo,
// DeepSeek R1, and a model without a chat template). Random weights call tools only when made to,
// so every forced call is checked against its tool's JSON Schema by Ajv.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import Ajv from 'ajv/dist/2020.js';
import { startServer, hai, shared } from './serve.mjs';

const ajv = new Ajv({ strict: false });
const dir = mkdtempSync(join(tmpdir(), 'hai-tools-'));
const servers = {};
const clients = {};

// family: [vocabulary, chat template (null: the vocabulary's own)]
const families = {
  qwen: ['ggml-vocab-qwen2.gguf', null],
  llama: ['ggml-vocab-llama-bpe.gguf', 'meta-llama-Llama-3.1-8B-Instruct.jinja'],
  mistral: ['ggml-vocab-llama-spm.gguf', 'mistralai-Mistral-Nemo-Instruct-2407.jinja'],
  deepseek: ['ggml-vocab-qwen2.gguf', 'deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja'],
};

before(async () => {
  const starts = [startServer().then((s) => { servers.plain = s; })]; // a reference model without a chat template
  for (const [name, [vocab, tpl]] of Object.entries(families)) {
    const model = join(dir, `${name}.gguf`);
    const args = ['synth', '-o', model, '--arch', 'qwen2', '--type', 'Q8_0', '--n-embd', '64', '--n-layer', '1', '--n-head', '2',
      '--n-head-kv', '1', '--n-ff', '128', '--tied', '--std', '0.5', '--vocab', join(shared, 'vocab', vocab)];
    if (tpl) args.push('--chat-template', join(shared, 'templates', tpl));
    const r = spawnSync(hai, args);
    assert.equal(r.status, 0, String(r.stderr));
    starts.push(startServer(['--ctx', '4096'], model).then((s) => { servers[name] = s; }));
  }
  await Promise.all(starts);
  for (const [name, s] of Object.entries(servers)) clients[name] = new OpenAI({ baseURL: s.url + '/v1', apiKey: 'x', maxRetries: 0 });
});
after(async () => {
  for (const s of Object.values(servers)) assert.equal(await s.stop(), 0);
  rmSync(dir, { recursive: true, force: true });
});

const tools = [
  {
    type: 'function',
    function: {
      name: 'set_timer', description: 'Start a countdown timer on the device',
      parameters: {
        type: 'object', properties: { minutes: { type: 'integer', minimum: 1, maximum: 120 }, label: { type: 'string', maxLength: 16 } },
        required: ['minutes'], additionalProperties: false,
      },
    },
  },
  {
    type: 'function',
    function: {
      name: 'order_coffee', description: 'Order a coffee',
      parameters: {
        type: 'object',
        properties: {
          drink: { enum: ['espresso', 'latte', 'cappuccino'] }, size: { enum: ['small', 'medium', 'large'] },
          milk: { type: ['string', 'null'], maxLength: 10 }, shots: { type: 'integer', minimum: 1, maximum: 3 },
        },
        required: ['drink', 'size'], additionalProperties: false,
      },
      strict: true,
    },
  },
  { type: 'function', function: { name: 'convert_units', parameters: { type: 'object', properties: { value: { type: 'number' }, from: { type: 'string', maxLength: 8 }, to: { type: 'string', maxLength: 8 } }, required: ['value', 'from', 'to'] } } },
];
const validators = Object.fromEntries(tools.map((t) => [t.function.name, ajv.compile(t.function.parameters)]));
const messages = [{ role: 'user', content: 'Set a timer for ten minutes, please.' }];

// Every call names a tool, has an id, and arguments valid against that tool's schema.
// A forced call has no content beside it; with auto the model may write some text first.
function checkCalls(msg, family, named, auto = false) {
  assert.ok(Array.isArray(msg.tool_calls) && msg.tool_calls.length >= 1, `${family}: no tool_calls in ${JSON.stringify(msg)}`);
  if (!auto) assert.equal(msg.content, null, `${family}: content beside the calls`);
  const ids = new Set();
  for (const c of msg.tool_calls) {
    assert.equal(c.type, 'function');
    assert.match(c.id, family === 'mistral' ? /^[A-Za-z0-9]{9}$/ : /^call_[A-Za-z0-9]{24}$/);
    ids.add(c.id);
    const v = validators[c.function.name];
    assert.ok(v, `${family}: unknown tool ${c.function.name}`);
    if (named) assert.equal(c.function.name, named);
    const args = JSON.parse(c.function.arguments);
    assert.ok(v(args), `${family}: ${c.function.name}(${c.function.arguments}): ${ajv.errorsText(v.errors)}`);
  }
  assert.equal(ids.size, msg.tool_calls.length, 'ids are distinct');
}

test('every forced call is valid against its tool schema, in every family syntax', async () => {
  for (const family of ['qwen', 'llama', 'mistral', 'deepseek', 'plain']) {
    for (let seed = 0; seed < 4; seed++) {
      const named = seed % 3 === 2 ? tools[seed % 3].function.name : null;
      const r = await clients[family].chat.completions.create({
        model: 'm', messages, tools, seed, max_tokens: 300, parallel_tool_calls: seed % 2 === 0,
        tool_choice: named ? { type: 'function', function: { name: named } } : 'required',
      });
      assert.equal(r.choices[0].finish_reason, 'tool_calls', `${family} seed ${seed}`);
      checkCalls(r.choices[0].message, family, named);
      if (seed % 2) assert.equal(r.choices[0].message.tool_calls.length, 1, 'parallel_tool_calls false: one call');
    }
  }
});

test('a streamed call arrives as OpenAI streams it and adds up to the same call', async () => {
  const req = { model: 'm', messages, tools, tool_choice: 'required', temperature: 0, max_tokens: 300 };
  const whole = await clients.qwen.chat.completions.create(req);
  const stream = await clients.qwen.chat.completions.create({ ...req, stream: true });
  const calls = [];
  let finish = null, chunks = 0;
  for await (const ch of stream) {
    const c = ch.choices[0];
    if (!c) continue;
    chunks++;
    for (const d of c.delta.tool_calls ?? []) {
      if (!calls[d.index]) { // its first piece: id, type and name
        assert.match(d.id, /^call_/);
        assert.equal(d.type, 'function');
        assert.ok(d.function.name);
        calls[d.index] = { name: d.function.name, args: '' };
      } else {
        assert.equal(d.id, undefined, 'the id comes once');
      }
      calls[d.index].args += d.function.arguments ?? '';
    }
    if (c.finish_reason) finish = c.finish_reason;
  }
  assert.equal(finish, 'tool_calls');
  assert.ok(chunks > 3, 'the arguments came in pieces');
  const want = whole.choices[0].message.tool_calls;
  assert.deepEqual(calls.map((c) => [c.name, c.args]), want.map((c) => [c.function.name, c.function.arguments]));
  // the SDK's own stream helper assembles the same message
  const final = await clients.qwen.chat.completions.stream(req).finalChatCompletion();
  checkCalls(final.choices[0].message, 'qwen');
  assert.deepEqual(final.choices[0].message.tool_calls.map((c) => c.function.arguments), want.map((c) => c.function.arguments));
});

test('auto: the model may answer or call; what it calls is valid', async () => {
  // the <tool_call> token made likely: the model opens a call, and the grammar takes over from there
  for (let seed = 0; seed < 4; seed++) {
    const r = await clients.qwen.chat.completions.create({ model: 'm', messages, tools, seed, max_tokens: 300, logit_bias: { 151657: 12 } });
    assert.equal(r.choices[0].finish_reason, 'tool_calls', `seed ${seed}: ${JSON.stringify(r.choices[0].message)}`);
    checkCalls(r.choices[0].message, 'qwen', null, true);
  }
  // and made impossible: a text answer, no calls
  const r = await clients.qwen.chat.completions.create({ model: 'm', messages, tools, seed: 1, max_tokens: 20, logit_bias: { 151657: -100 } });
  assert.equal(typeof r.choices[0].message.content, 'string');
  assert.equal(r.choices[0].message.tool_calls, undefined);
  assert.equal(r.choices[0].finish_reason, 'length');
  // tool_choice none: the tools are not offered at all
  const n = await clients.qwen.chat.completions.create({ model: 'm', messages, tools, tool_choice: 'none', seed: 1, max_tokens: 20, logit_bias: { 151657: 12 } });
  assert.equal(n.choices[0].message.tool_calls, undefined);
});

test('tool results are fed back through the template', async () => {
  for (const family of ['qwen', 'llama', 'mistral', 'deepseek', 'plain']) {
    const client = clients[family];
    const first = await client.chat.completions.create({ model: 'm', messages, tools, tool_choice: { type: 'function', function: { name: 'set_timer' } }, seed: 3, max_tokens: 200 });
    const msg = first.choices[0].message;
    checkCalls(msg, family, 'set_timer');
    const bare = await client.chat.completions.create({ model: 'm', messages, tools, max_tokens: 1, tool_choice: 'none' });
    const convo = (result) => [...messages, msg, ...msg.tool_calls.map((c) => ({ role: 'tool', tool_call_id: c.id, content: result }))];
    const short = await client.chat.completions.create({ model: 'm', messages: convo('{"ok": true}'), tools, max_tokens: 5, tool_choice: 'none' });
    const long = await client.chat.completions.create({ model: 'm', messages: convo(JSON.stringify({ ok: true, note: 'the timer rings at 10:40 in the kitchen and on the phone' })), tools, max_tokens: 5, tool_choice: 'none' });
    assert.equal(typeof short.choices[0].message.content, 'string', family);
    // the result reached the prompt: a longer result, a longer prompt
    assert.ok(long.usage.prompt_tokens > short.usage.prompt_tokens + 8, `${family}: ${long.usage.prompt_tokens} vs ${short.usage.prompt_tokens}`);
    assert.ok(short.usage.prompt_tokens > bare.usage.prompt_tokens + 8, `${family}: the call and its result are in the prompt (${short.usage.prompt_tokens} vs ${bare.usage.prompt_tokens})`);
  }
});

test('the SDK runTools helper calls the function with valid arguments', async () => {
  const seen = [];
  const runner = clients.qwen.chat.completions.runTools({
    model: 'm', messages, max_tokens: 200, seed: 5,
    tool_choice: { type: 'function', function: { name: 'order_coffee' } },
    tools: [{ type: 'function', function: { name: 'order_coffee', parameters: tools[1].function.parameters, parse: JSON.parse, function: (args) => { seen.push(args); return { ordered: true }; } } }],
  });
  await runner.done();
  assert.equal(seen.length, 1);
  assert.ok(validators.order_coffee(seen[0]), JSON.stringify(seen[0]));
  const toolMsg = runner.messages.find((m) => m.role === 'tool');
  assert.equal(toolMsg.content, '{"ordered":true}');
});

test('reasoning models: the <think> part is reasoning_content, streamed and whole', async () => {
  // the R1 template opens <think> in the prompt: what the model writes is reasoning until </think>
  const req = { model: 'm', messages: [{ role: 'user', content: 'Why is the sky blue?' }], temperature: 0, max_tokens: 24 };
  const whole = await clients.deepseek.chat.completions.create(req);
  const m = whole.choices[0].message;
  assert.ok(typeof m.reasoning_content === 'string' && m.reasoning_content.length > 0, JSON.stringify(m));
  let reasoning = '', content = '';
  for await (const ch of await clients.deepseek.chat.completions.create({ ...req, stream: true })) {
    reasoning += ch.choices[0]?.delta?.reasoning_content ?? '';
    content += ch.choices[0]?.delta?.content ?? '';
  }
  assert.equal(reasoning, m.reasoning_content);
  assert.equal(content, m.content);
  // llama.cpp's reasoning_format "none": the text as the model wrote it, all in content
  const raw = await clients.deepseek.chat.completions.create({ ...req, reasoning_format: 'none' });
  assert.equal(raw.choices[0].message.reasoning_content, undefined);
  assert.ok(raw.choices[0].message.content.includes(m.reasoning_content));
  // chat_template_kwargs.enable_thinking false (Qwen3's template): the prompt closes an empty <think> block
  const on = await clients.qwen.chat.completions.create({ ...req, max_tokens: 1 });
  const off = await clients.qwen.chat.completions.create({ ...req, max_tokens: 1, chat_template_kwargs: { enable_thinking: false } });
  assert.equal(off.usage.prompt_tokens, on.usage.prompt_tokens + 4, 'the prompt ends with <think>\n\n</think>\n\n');
});

test('bad tool requests are 400s naming the field', async () => {
  const bad = [
    [{ tools, tool_choice: { type: 'function', function: { name: 'fly' } } }, 'tool_choice'],
    [{ tools: [{ type: 'function', function: { name: 'has space' } }] }, 'tools[0].function.name'],
    [{ tools: [tools[0], tools[0]] }, 'tools[1].function.name'],
    [{ tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { e: { type: 'string', pattern: '^a' } } }, strict: true } }], tool_choice: 'required' }, 'tools'],
    [{ tools, response_format: { type: 'json_object' } }, 'response_format'],
    [{ tools, tool_choice: 'sometimes' }, 'tool_choice'],
    [{ tool_choice: 'auto' }, 'tool_choice'],
    [{ tools: [{ type: 'custom', custom: { name: 'x' } }] }, 'tools[0]'],
  ];
  for (const [extra, param] of bad) {
    const r = await fetch(servers.qwen.url + '/v1/chat/completions', { method: 'POST', body: JSON.stringify({ messages, max_tokens: 5, ...extra }) });
    assert.equal(r.status, 400, JSON.stringify(extra));
    const e = (await r.json()).error;
    assert.equal(e.param, param, JSON.stringify(extra) + ': ' + e.message);
  }
  // a schema keyword the grammar cannot enforce: refused on a strict tool (by name), enforced as far as it can on another
  const r = await fetch(servers.qwen.url + '/v1/chat/completions', { method: 'POST', body: JSON.stringify({ messages, max_tokens: 5, tools: bad[3][0].tools, tool_choice: 'required' }) });
  assert.match((await r.json()).error.message, /pattern/);
  const loose = await clients.qwen.chat.completions.create({ model: 'm', messages, max_tokens: 200, tool_choice: 'required', tools: [{ type: 'function', function: { ...bad[3][0].tools[0].function, strict: false } }] });
  assert.equal(loose.choices[0].finish_reason, 'tool_calls');
  assert.equal(typeof JSON.parse(loose.choices[0].message.tool_calls[0].function.arguments), 'object');
});
