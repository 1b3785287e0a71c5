// Structured outputs through hai serve, with the clients apps use: the official OpenAI SDK
// (response_format json_schema and json_object, chat.completions.parse), the Vercel AI SDK's
// generateObject with a zod schema, llama.cpp's `grammar` field, and errors for what is refused.
// The models have random weights, so only the grammar can make the answers valid: each is checked
// against its schema by Ajv (an independent JSON Schema validator).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { generateObject } from 'ai';
import { createOpenAI } from '@ai-sdk/openai';
import { z } from 'zod';
import Ajv from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { startServer, hai, shared } from './serve.mjs';

const ajv = new Ajv({ strict: false });
addFormats(ajv);
const dir = mkdtempSync(join(tmpdir(), 'hai-structured-'));
let ref, qwen, refClient, qwenClient;

before(async () => {
  // a random model with the real 151,936-token Qwen vocabulary (its tokens, its end-of-turn token)
  const model = join(dir, 'qwen-random.gguf');
  const r = spawnSync(hai, ['synth', '-o', model, '--arch', 'qwen2', '--type', 'Q8_0', '--n-embd', '64', '--n-layer', '1',
    '--n-head', '2', '--n-head-kv', '1', '--n-ff', '128', '--tied', '--std', '0.5', '--vocab', join(shared, 'vocab', 'ggml-vocab-qwen2.gguf')]);
  assert.equal(r.status, 0, String(r.stderr));
  [ref, qwen] = await Promise.all([startServer(), startServer(['--ctx', '4096'], model)]);
  refClient = new OpenAI({ baseURL: ref.url + '/v1', apiKey: 'x', maxRetries: 0 });
  qwenClient = new OpenAI({ baseURL: qwen.url + '/v1', apiKey: 'x', maxRetries: 0 });
});
after(async () => {
  assert.equal(await ref.stop(), 0);
  assert.equal(await qwen.stop(), 0);
  rmSync(dir, { recursive: true, force: true });
});

const messages = [{ role: 'user', content: 'Fill in the form for a coffee order.' }];

const schemas = {
  order: {
    type: 'object',
    properties: {
      drink: { enum: ['espresso', 'latte', 'cappuccino', 'flat white'] },
      size: { type: 'string', enum: ['small', 'medium', 'large'] },
      milk: { type: ['string', 'null'], maxLength: 12 },
      extras: { type: 'array', items: { type: 'string', maxLength: 10 }, maxItems: 3 },
      quantity: { type: 'integer', minimum: 1, maximum: 10 },
    },
    required: ['drink', 'size', 'milk', 'extras', 'quantity'],
    additionalProperties: false,
  },
  person: {
    type: 'object',
    properties: {
      name: { type: 'string', minLength: 1, maxLength: 20 },
      born: { type: 'string', format: 'date' },
      id: { type: 'string', format: 'uuid' },
      height_m: { type: 'number', minimum: 0 },
      tags: { type: 'array', items: { type: 'string', maxLength: 8 }, minItems: 1, maxItems: 2 },
      email: { type: 'string', nullable: true, maxLength: 30 },
    },
    required: ['name', 'born', 'id', 'height_m', 'tags'],
    additionalProperties: false,
  },
  tree: {
    $defs: {
      node: {
        type: 'object',
        properties: { label: { type: 'string', maxLength: 8 }, children: { type: 'array', items: { $ref: '#/$defs/node' }, maxItems: 2 } },
        required: ['label', 'children'],
        additionalProperties: false,
      },
    },
    $ref: '#/$defs/node',
  },
  command: {
    anyOf: [
      { type: 'object', properties: { action: { const: 'set_timer' }, minutes: { type: 'integer', minimum: 1, maximum: 120 } }, required: ['action', 'minutes'], additionalProperties: false },
      { type: 'object', properties: { action: { const: 'convert' }, value: { type: 'number' }, from: { enum: ['km', 'mi'] } }, required: ['action', 'value', 'from'], additionalProperties: false },
    ],
  },
};

test('openai SDK: response_format json_schema gives schema-valid JSON on random models (greedy and sampled)', async () => {
  for (const [name, schema] of Object.entries(schemas)) {
    const validate = ajv.compile(schema);
    for (const [client, label] of [[refClient, 'spm-2k'], [qwenClient, 'qwen-152k']]) {
      for (const temperature of [0, 1]) {
        for (const seed of temperature ? [1, 2, 3] : [0]) {
          const r = await client.chat.completions.create({
            model: 'm', messages, temperature, seed, max_tokens: 1500,
            response_format: { type: 'json_schema', json_schema: { name, schema, strict: true } },
          });
          const c = r.choices[0];
          assert.equal(c.finish_reason, 'stop', `${name} on ${label} t=${temperature} seed ${seed}: ${c.message.content}`);
          const v = JSON.parse(c.message.content);
          assert.ok(validate(v), `${name} on ${label}: ${JSON.stringify(validate.errors)} in ${c.message.content}`);
        }
      }
    }
  }
});

test('a small max_tokens still ends in valid JSON: the grammar closes the output within its budget', async () => {
  // the tree recurses and its strings are long on a random model; its shortest answer is 26 bytes
  const validate = ajv.compile(schemas.tree);
  for (const seed of [1, 2, 3, 4, 5, 6]) {
    for (const max_tokens of [40, 80]) {
      const r = await qwenClient.chat.completions.create({
        model: 'm', messages, temperature: 1, seed, max_tokens,
        response_format: { type: 'json_schema', json_schema: { name: 'tree', schema: schemas.tree } },
      });
      const c = r.choices[0];
      assert.equal(c.finish_reason, 'stop', `max_tokens ${max_tokens} seed ${seed}: ${c.message.content}`);
      assert.ok(r.usage.completion_tokens <= max_tokens);
      assert.ok(validate(JSON.parse(c.message.content)), c.message.content);
    }
  }
});

test('openai SDK: streamed json_schema output parses whole', async () => {
  const stream = await qwenClient.chat.completions.create({
    model: 'm', messages, temperature: 1, seed: 9, max_tokens: 1500, stream: true,
    response_format: { type: 'json_schema', json_schema: { name: 'order', schema: schemas.order } },
  });
  let text = '', finish = null;
  for await (const ch of stream) {
    text += ch.choices[0]?.delta?.content ?? '';
    finish = ch.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(finish, 'stop');
  assert.ok(ajv.validate(schemas.order, JSON.parse(text)), text);
});

test('openai SDK: json_object gives a JSON object; chat.completions.parse reads the schema output', async () => {
  for (const seed of [1, 2, 3, 4]) {
    const r = await qwenClient.chat.completions.create({ model: 'm', messages, temperature: 1, seed, max_tokens: 1500, response_format: { type: 'json_object' } });
    assert.equal(r.choices[0].finish_reason, 'stop', r.choices[0].message.content);
    const v = JSON.parse(r.choices[0].message.content);
    assert.ok(v !== null && typeof v === 'object' && !Array.isArray(v), r.choices[0].message.content);
  }
  const p = await qwenClient.chat.completions.parse({
    model: 'm', messages, temperature: 0, max_tokens: 1500,
    response_format: { type: 'json_schema', json_schema: { name: 'person', schema: schemas.person, strict: true } },
  });
  assert.ok(ajv.validate(schemas.person, p.choices[0].message.parsed), JSON.stringify(p.choices[0].message.parsed));
});

test('Vercel AI SDK: generateObject with a zod schema', async () => {
  const provider = createOpenAI({ baseURL: qwen.url + '/v1', apiKey: 'x' });
  const schema = z.object({
    city: z.string().max(20),
    population: z.number().int().min(0),
    country: z.enum(['France', 'Germany', 'Japan']),
    landmarks: z.array(z.string().max(12)).max(3),
    capital: z.boolean(),
  });
  for (const seed of [1, 2]) {
    const { object } = await generateObject({
      model: provider.chat('m'), schema, prompt: 'Describe a city.', temperature: 1, seed, maxOutputTokens: 1500, maxRetries: 0,
    });
    assert.deepEqual(schema.parse(object), object);
  }
});

test('llama.cpp fields: grammar (GBNF) and json_schema, on chat and completions', async () => {
  const gbnf = 'root ::= "yes" | "no" | "maybe " [0-9]';
  for (const seed of [1, 2, 3]) {
    const body = { model: 'm', prompt: 'Answer:', temperature: 1, seed, max_tokens: 20, grammar: gbnf };
    const r = await (await fetch(qwen.url + '/v1/completions', { method: 'POST', body: JSON.stringify(body) })).json();
    assert.match(r.choices[0].text, /^(yes|no|maybe [0-9])$/, JSON.stringify(r));
  }
  const body = { model: 'm', messages, temperature: 1, seed: 5, max_tokens: 1500, json_schema: schemas.command };
  const r = await (await fetch(qwen.url + '/v1/chat/completions', { method: 'POST', body: JSON.stringify(body) })).json();
  assert.ok(ajv.validate(schemas.command, JSON.parse(r.choices[0].message.content)), r.choices[0].message.content);
});

test('a history with tool calls (content null) and tool results, as a cloud model returns it, is answered', async () => {
  const history = [{ role: 'user', content: 'Weather in Paris?' },
    { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
    { role: 'tool', tool_call_id: 'call_1', content: '{"temp": 21}' }];
  const r = await qwenClient.chat.completions.create({ model: 'm', messages: history, max_tokens: 8, temperature: 0 });
  assert.equal(r.object, 'chat.completion');
  assert.equal(typeof r.choices[0].message.content, 'string');
  // and with a schema for the answer after the tool result
  const s = await qwenClient.chat.completions.create({ model: 'm', messages: history, max_tokens: 1500, temperature: 1, seed: 3,
    response_format: { type: 'json_schema', json_schema: { name: 'order', schema: schemas.order } } });
  assert.ok(ajv.validate(schemas.order, JSON.parse(s.choices[0].message.content)), s.choices[0].message.content);
});

test('refused: unsupported schema keywords, bad grammars, unknown formats (400 naming the field)', async () => {
  const cases = [
    [{ response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'string', pattern: '^a+$' } } } }, 'response_format', /'pattern'/],
    [{ response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object', minProperties: 1 } } } }, 'response_format', /'minProperties'/],
    [{ response_format: { type: 'xml' } }, 'response_format', /not supported/],
    [{ grammar: 'root ::= missing' }, 'grammar', /'missing' is used but not defined/],
    [{ grammar: 'root ::= root "a"' }, 'grammar', /left-recursive/],
    [{ grammar: 'root ::= "a"', response_format: { type: 'json_object' } }, 'response_format', /one of/],
    [{ json_schema: { type: 'string', format: 'hostname' } }, 'json_schema', /'format': 'hostname'/],
  ];
  for (const [extra, param, msg] of cases) {
    const res = await fetch(qwen.url + '/v1/chat/completions', { method: 'POST', body: JSON.stringify({ model: 'm', messages, max_tokens: 4, ...extra }) });
    const j = await res.json();
    assert.equal(res.status, 400, JSON.stringify(j));
    assert.equal(j.error.param, param, JSON.stringify(j));
    assert.match(j.error.message, msg);
  }
  // through the SDK: a BadRequestError naming the keyword
  await assert.rejects(
    refClient.chat.completions.create({ model: 'm', messages, response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object', patternProperties: {} } } } }),
    (e) => e.status === 400 && /patternProperties/.test(e.message));
  // the server is still there
  const ok = await refClient.chat.completions.create({ model: 'm', messages, max_tokens: 2, response_format: { type: 'text' } });
  assert.equal(ok.object, 'chat.completion');
});
