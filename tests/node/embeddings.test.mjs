// POST /v1/embeddings through the openai SDK (which asks for base64 and decodes it) and as JSON
// floats: one vector per input, normalized, the same as `hai embed` gives for the same text (the
// library's hai_embed, checked against the float64 reference by tools/reference/check_embed.py);
// token-id inputs; OpenAI's errors for what the model cannot do.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import OpenAI from 'openai';
import { hai, refModel, startServer, metrics } from './serve.mjs';

let srv, client;
const model = refModel('llama-s-Q8_0.gguf');
before(async () => {
  srv = await startServer(['--ctx', '64', '--api-key', 'k'], model);
  client = new OpenAI({ baseURL: srv.url + '/v1', apiKey: 'k', maxRetries: 0 });
});
after(async () => { await srv.stop(); });

const cli = (text) => JSON.parse(execFileSync(hai, ['embed', '-m', model, '-t', '2', text], { encoding: 'utf8' })).embedding;
const norm = (v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
const post = (body) => fetch(srv.url + '/v1/embeddings', { method: 'POST', headers: { authorization: 'Bearer k', 'content-type': 'application/json' },
  body: JSON.stringify(body) });

test('the SDK (base64) and JSON floats: one normalized vector per input, equal to hai embed', async () => {
  const texts = ['Hello world', 'The cat sat on the mat.'];
  const r = await client.embeddings.create({ model: 'm', input: texts });
  assert.equal(r.object, 'list');
  assert.equal(r.data.length, 2);
  const ref = texts.map(cli);
  for (let i = 0; i < 2; i++) {
    assert.equal(r.data[i].index, i);
    assert.equal(r.data[i].embedding.length, ref[i].length);
    assert.ok(Math.abs(norm(r.data[i].embedding) - 1) < 1e-5);
    const diff = Math.max(...r.data[i].embedding.map((x, k) => Math.abs(x - ref[i][k])));
    assert.ok(diff < 1e-6, `input ${i}: off by ${diff} from hai embed`);
  }
  assert.ok(r.usage.prompt_tokens > 4 && r.usage.total_tokens === r.usage.prompt_tokens);
  const f = await (await post({ model: 'm', input: 'Hello world', encoding_format: 'float' })).json();
  assert.deepEqual(f.data[0].embedding.map((x) => Math.fround(x)), r.data[0].embedding);
});

test('token ids as input, one list or several', async () => {
  const one = await (await post({ input: [5, 6, 7, 8] })).json();
  const two = await (await post({ input: [[5, 6, 7, 8], [9, 10]] })).json();
  assert.equal(two.data.length, 2);
  assert.deepEqual(two.data[0].embedding, one.data[0].embedding);
  assert.equal(one.usage.prompt_tokens, 4);
});

test("OpenAI's errors: dimensions the model cannot give, bad ids, empty text, too long, not JSON", async () => {
  const cases = [
    [{ input: 'x', dimensions: 12 }, 'dimensions'],
    [{ input: [1, 2, -3] }, 'input'],
    [{ input: [1.5] }, 'input'],
    [{ input: '' }, 'input'],
    [{ input: { a: 1 } }, 'input'],
    [{ input: 'x', encoding_format: 'hex' }, 'encoding_format'],
    [{ input: Array(2049).fill('a') }, 'input'],
  ];
  for (const [body, param] of cases) {
    const r = await post(body);
    assert.equal(r.status, 400, JSON.stringify(body).slice(0, 80));
    assert.equal((await r.json()).error.param, param);
  }
  const long = await post({ input: 'word '.repeat(200) });
  assert.equal(long.status, 400);
  assert.equal((await long.json()).error.code, 'context_length_exceeded');
  const bad = await fetch(srv.url + '/v1/embeddings', { method: 'POST', headers: { authorization: 'Bearer k' }, body: '[1' });
  assert.equal(bad.status, 400);
  const noKey = await fetch(srv.url + '/v1/embeddings', { method: 'POST', body: '{"input":"x"}' });
  assert.equal(noKey.status, 401);
  const m = await metrics(srv.url, { authorization: 'Bearer k' });
  assert.ok(m['hai_requests_total{endpoint="/v1/embeddings",status="200"}'] >= 4);
});
