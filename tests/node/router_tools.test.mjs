// Tool calls through the hybrid router (hai serve --route-config) against the fake upstream: the
// routing rule for tools, tools / tool_choice / parallel_tool_calls / response_format passed to the
// cloud, the cloud's calls (streamed in pieces or whole) returned in OpenAI's shape by the same
// parse as local calls, and the privacy gate on tool arguments and tool results: personal data kept
// local, or redacted inside the arguments' JSON and restored into the cloud's call arguments as
// valid JSON. Also the Responses API through the router.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { startServer, hai, shared } from './serve.mjs';
import { startUpstream } from './fake_upstream.mjs';
import { execFileSync } from 'node:child_process';

const dir = mkdtempSync(join(tmpdir(), 'hai-router-tools-'));
let up;
before(async () => { up = await startUpstream(); });
after(async () => { await up.close(); });

let nconf = 0;
async function serverWith(policy, model) {
  const conf = {
    cloud: { base_url: up.url + '/v1', model: 'up-model', connect_timeout_ms: 1000, first_byte_timeout_ms: 3000, idle_timeout_ms: 3000,
      total_timeout_ms: 8000, max_retries: 0, circuit_failures: 100 },
    ...policy,
  };
  const file = join(dir, `policy-${nconf++}.json`);
  writeFileSync(file, JSON.stringify(conf));
  return startServer(['--route-config', file, '--ctx', '2048'], model);
}

const tools = [
  { type: 'function', function: { name: 'send_email', description: 'Send an e-mail.', parameters: { type: 'object', properties: { to: { type: 'string' }, body: { type: 'string' } }, required: ['to', 'body'] } } },
  { type: 'function', function: { name: 'second', parameters: { type: 'object', properties: {} } } },
];
const EMAIL = 'li.wei@example.com';
const PHONE = '+44 20 7946 0958';

// everything the upstream received, in every spelling an address could take in JSON
function leaked(value) {
  const raw = up.requests.map((r) => r.raw.toString('latin1')).join('\n');
  return raw.includes(value) || raw.includes(JSON.stringify(value).slice(1, -1)) || raw.includes(value.replace('@', '\\u0040'));
}

async function post(srv, path, body) {
  const r = await fetch(srv.url + path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  const text = await r.text();
  assert.equal(r.status, 200, text);
  return { r, text, json: body.stream ? null : JSON.parse(text) };
}

function checkCloudCalls(msg, echo, parallel = true) {
  assert.equal(msg.content, null);
  assert.equal(msg.tool_calls.length, parallel ? 2 : 1);
  assert.equal(msg.tool_calls[0].type, 'function');
  assert.equal(msg.tool_calls[0].function.name, 'send_email');
  assert.deepEqual(JSON.parse(msg.tool_calls[0].function.arguments), { echo });
  if (parallel) assert.deepEqual(JSON.parse(msg.tool_calls[1].function.arguments), {});
  assert.notEqual(msg.tool_calls[0].id, parallel ? msg.tool_calls[1].id : '');
}

test('a local model whose template cannot show tools sends tool requests to the cloud, which gets them as given', async () => {
  const srv = await serverWith({});
  try {
    const client = new OpenAI({ baseURL: srv.url + '/v1', apiKey: 'x' });
    for (const mode of ['tool', 'tool-json']) {
      up.requests.length = 0;
      up.script = [mode];
      const r = await client.chat.completions.create({ model: 'hai', messages: [{ role: 'user', content: 'Write to Anna' }], tools, tool_choice: 'required', max_tokens: 50 });
      assert.equal(r.choices[0].finish_reason, 'tool_calls');
      checkCloudCalls(r.choices[0].message, 'Write to Anna');
      assert.equal(r.hai_route.route, 'cloud');
      assert.deepEqual(r.hai_route.reasons, ['TOOLS_NOT_LOCAL']);
      const sent = JSON.parse(up.requests[0].body);
      assert.deepEqual(sent.tools, tools);
      assert.equal(sent.tool_choice, 'required');
      assert.equal(sent.parallel_tool_calls, true);
    }
    // streamed with the SDK, a named function and one call only
    up.requests.length = 0;
    up.script = ['tool'];
    const stream = client.chat.completions.stream({ model: 'hai', messages: [{ role: 'user', content: 'Once' }], tools, max_tokens: 50,
      tool_choice: { type: 'function', function: { name: 'send_email' } }, parallel_tool_calls: false });
    const final = await stream.finalChatCompletion();
    checkCloudCalls(final.choices[0].message, 'Once', false);
    assert.equal(final.choices[0].finish_reason, 'tool_calls');
    const sent = JSON.parse(up.requests[0].body);
    assert.deepEqual(sent.tool_choice, { type: 'function', function: { name: 'send_email' } });
    assert.equal(sent.parallel_tool_calls, false);
    // response_format goes to the cloud as given
    up.requests.length = 0;
    up.script = ['ok'];
    const rf = { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object', properties: { a: { type: 'string' } } } } };
    await post(srv, '/v1/chat/completions', { messages: [{ role: 'user', content: 'json' }], response_format: rf, max_tokens: 8, tools: [tools[1]], tool_choice: 'none' });
    assert.deepEqual(JSON.parse(up.requests[0].body).response_format, rf);
  } finally { await srv.stop(); }
});

test('privacy: personal data in tool arguments and results is redacted inside the JSON and restored in the cloud\'s calls', async () => {
  const srv = await serverWith({ privacy: { email: 'redact', custom: 'redact', keywords: ['Project "Falcon\\Zero"'] } });
  try {
    up.requests.length = 0;
    up.script = ['tool'];
    const messages = [
      { role: 'user', content: 'Mail my boss' },
      // the address escaped in the arguments' JSON: found all the same, once decoded
      { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'send_email', arguments: '{"to": "li.wei\\u0040example.com", "body": "hi"}' } }] },
      { role: 'tool', tool_call_id: 'c1', content: `sent to ${EMAIL}` },
      { role: 'user', content: `again to ${EMAIL} about Project "Falcon\\Zero"` },
    ];
    const { json } = await post(srv, '/v1/chat/completions', { messages, tools, max_tokens: 50 });
    assert.equal(up.requests.length, 1);
    assert.ok(!leaked(EMAIL), 'the address never reaches the upstream');
    assert.ok(!leaked('Falcon'), 'the custom keyword never reaches the upstream');
    const sent = JSON.parse(up.requests[0].body);
    assert.deepEqual(JSON.parse(sent.messages[1].tool_calls[0].function.arguments), { to: '[EMAIL_1]', body: 'hi' });
    assert.equal(sent.messages[1].content, null);
    assert.equal(sent.messages[2].tool_call_id, 'c1');
    assert.equal(sent.messages[2].content, 'sent to [EMAIL_1]');
    assert.equal(json.hai_route.route, 'cloud');
    assert.ok(json.hai_route.reasons.includes('PRIVACY_REDACTED'));
    // the upstream's call echoes placeholders; they come back restored, as valid JSON (quotes and
    // backslashes of the restored keyword escaped)
    checkCloudCalls(json.choices[0].message, `again to ${EMAIL} about Project "Falcon\\Zero"`);
  } finally { await srv.stop(); }
});

test('privacy: a class kept local in a tool result or argument keeps the request on the device', async () => {
  const srv = await serverWith({ privacy: { phone: 'keep_local' } });
  try {
    for (const messages of [
      [{ role: 'user', content: 'Who called?' }, { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'send_email', arguments: '{}' } }] },
        { role: 'tool', tool_call_id: 'c1', content: `missed call from ${PHONE}` }],
      [{ role: 'user', content: 'Call back' }, { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'send_email', arguments: JSON.stringify({ to: PHONE, body: 'x' }) } }] },
        { role: 'tool', tool_call_id: 'c1', content: 'done' }],
    ]) {
      up.requests.length = 0;
      const { json } = await post(srv, '/v1/chat/completions', { messages, tools, tool_choice: 'required', max_tokens: 60, temperature: 0 });
      assert.equal(up.requests.length, 0, 'nothing was sent');
      assert.equal(json.hai_route.route, 'local');
      assert.ok(json.hai_route.reasons.includes('PRIVACY_KEEP_LOCAL'));
      // answered on the device: a forced call is valid by construction even there
      const call = json.choices[0].message.tool_calls?.[0];
      assert.ok(call, JSON.stringify(json));
      assert.ok(['send_email', 'second'].includes(call.function.name));
      JSON.parse(call.function.arguments);
    }
  } finally { await srv.stop(); }
});

test('tools "local" answers on the device; a template that shows tools is local by default', async () => {
  const local = await serverWith({ tools: 'local' });
  try {
    up.requests.length = 0;
    const { json } = await post(local, '/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], tools, tool_choice: 'required', max_tokens: 60, temperature: 0 });
    assert.equal(up.requests.length, 0);
    assert.equal(json.hai_route.route, 'local');
    assert.equal(json.choices[0].finish_reason, 'tool_calls');
  } finally { await local.stop(); }
  // a Qwen-vocabulary model with Qwen3's template (it shows tools)
  const model = join(dir, 'qwen-tools.gguf');
  execFileSync(hai, ['synth', '-o', model, '--arch', 'qwen2', '--type', 'Q8_0', '--n-embd', '64', '--n-layer', '1', '--n-head', '2',
    '--n-head-kv', '1', '--n-ff', '128', '--tied', '--std', '0.5', '--vocab', join(shared, 'vocab', 'ggml-vocab-qwen2.gguf')]);
  const srv = await serverWith({}, model);
  try {
    up.requests.length = 0;
    const { json } = await post(srv, '/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], tools, tool_choice: 'required', max_tokens: 80, temperature: 0 });
    assert.equal(up.requests.length, 0);
    assert.equal(json.hai_route.route, 'local');
    assert.deepEqual(json.hai_route.reasons, ['DEFAULT']);
    const call = json.choices[0].message.tool_calls[0];
    assert.ok(['send_email', 'second'].includes(call.function.name));
    JSON.parse(call.function.arguments);
  } finally { await srv.stop(); }
});

test('cascade: a local call cut off is escalated like an unsure answer, before anything is shown', async () => {
  // the entropy threshold is out of reach: only the broken call can escalate
  const srv = await serverWith({ tools: 'local', cascade: { enabled: true, tokens: 4, entropy_threshold: 100 } });
  try {
    up.requests.length = 0;
    up.script = ['tool'];
    // 5 tokens cannot finish a forced call: broken, so the cloud answers
    const { json } = await post(srv, '/v1/chat/completions', { messages: [{ role: 'user', content: 'cut' }], tools, tool_choice: 'required', max_tokens: 5, temperature: 0 });
    assert.equal(json.hai_route.route, 'cloud');
    assert.ok(json.hai_route.reasons.includes('LOW_CONFIDENCE'), JSON.stringify(json.hai_route));
    assert.equal(up.requests.length, 1);
    checkCloudCalls(json.choices[0].message, 'cut');
    // room to finish it: a whole call, kept on the device
    up.requests.length = 0;
    const kept = await post(srv, '/v1/chat/completions', { messages: [{ role: 'user', content: 'room' }], tools, tool_choice: 'required', max_tokens: 200, temperature: 0 });
    assert.equal(kept.json.hai_route.route, 'local', JSON.stringify(kept.json));
    assert.equal(up.requests.length, 0);
    JSON.parse(kept.json.choices[0].message.tool_calls[0].function.arguments);
  } finally { await srv.stop(); }
});

test('the Responses API through the router: function calls from the cloud as items, streamed and whole', async () => {
  const srv = await serverWith({ privacy: { email: 'redact' } });
  try {
    const client = new OpenAI({ baseURL: srv.url + '/v1', apiKey: 'x' });
    const rtools = [{ type: 'function', name: 'send_email', parameters: tools[0].function.parameters, strict: false }];
    up.requests.length = 0;
    up.script = ['tool'];
    const r = await client.responses.create({ model: 'hai', input: `tell ${EMAIL}`, tools: rtools, parallel_tool_calls: false, max_output_tokens: 50 });
    assert.ok(!leaked(EMAIL));
    const calls = r.output.filter((o) => o.type === 'function_call');
    assert.equal(calls.length, 1);
    assert.equal(calls[0].name, 'send_email');
    assert.deepEqual(JSON.parse(calls[0].arguments), { echo: `tell ${EMAIL}` });
    up.script = ['tool'];
    const events = [];
    for await (const ev of await client.responses.create({ model: 'hai', input: 'again', tools: rtools, parallel_tool_calls: false, stream: true })) events.push(ev);
    const done = events.find((e) => e.type === 'response.completed');
    assert.ok(done, events.map((e) => e.type).join(' '));
    const item = done.response.output.find((o) => o.type === 'function_call');
    assert.deepEqual(JSON.parse(item.arguments), { echo: 'again' });
  } finally { await srv.stop(); }
});
