// Speculative decoding in the server: prompt lookup (hai serve --lookup N), each slot drafting from
// its own text, and a draft model (--draft FILE), its passes batched over the slots; the drafts
// ride in the batched step with the other slots' tokens. The answers must be exactly those
// of a server without drafts - greedy and seeded sampling, requests arriving together - and
// /metrics must count what was drafted and kept. Also on a model with sliding-window layers
// (gemma2, a window of 16), whose cut-back drafts leave those layers' caches as well.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hai, refModel, startServer, metrics } from './serve.mjs';

const prompts = [
  'one two three four five one two three four five one two three',
  'the cat sat on the mat. the cat sat on the mat. the cat sat',
  'a b c d e f g a b c d e f g a b c d',
  'Lorem ipsum dolor sit amet, lorem ipsum dolor sit amet, lorem',
];
// greedy, and seeded sampling at OpenAI's defaults (T 1, top_p 1) and with a cut (top_p 0.9)
const settings = [{ temperature: 0 }, { temperature: 1, seed: 11 }, { temperature: 1, top_p: 0.9, seed: 5 }];

async function complete(url, prompt, s) {
  const r = await fetch(url + '/v1/completions', {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'm', prompt, max_tokens: 48, logprobs: 1, ...s }),
  });
  assert.equal(r.status, 200, await r.clone().text());
  const j = await r.json();
  const c = j.choices[0];
  return { text: c.text, tokens: c.logprobs.tokens, finish: c.finish_reason, n: j.usage.completion_tokens };
}

async function compare(model, label, draftArgs = ['--lookup', '6']) {
  const plain = await startServer(['--parallel', '3'], model);
  const drafted = await startServer(['--parallel', '3', ...draftArgs], model);
  try {
    const want = [];
    for (const s of settings) for (const p of prompts) want.push(await complete(plain.url, p, s)); // one at a time
    const jobs = [];
    for (const s of settings) for (const p of prompts) jobs.push(complete(drafted.url, p, s)); // all at once: batched steps
    const got = await Promise.all(jobs);
    for (let i = 0; i < want.length; i++)
      assert.deepEqual(got[i], want[i], `${label}: request ${i} differs with drafts`);
    const m = await metrics(drafted.url), m0 = await metrics(plain.url);
    const d = m.hai_draft_tokens_total, k = m.hai_draft_accepted_tokens_total;
    console.log(`${label}: ${want.length} answers identical; drafted ${d} tokens, kept ${k}`);
    assert.ok(d > 0 && k > 0 && k <= d, `${label}: drafted ${d}, kept ${k}`);
    assert.equal(m0.hai_draft_tokens_total, 0);
  } finally {
    await drafted.stop();
    await plain.stop();
  }
}

test('prompt lookup in the server: the answers plain decoding gives (llama-s Q8_0), counted in /metrics', async () => {
  await compare(refModel('llama-s-Q8_0.gguf'), 'llama-s-Q8_0');
});

test('a draft model in the server (llama-s Q4_0 drafting for Q8_0, batched over the slots): the same answers', async () => {
  await compare(refModel('llama-s-Q8_0.gguf'), 'llama-s-Q8_0 drafted by Q4_0', ['--draft', refModel('llama-s-Q4_0.gguf'), '--lookup', '5']);
});

test('prompt lookup in the server on sliding-window layers (gemma2, window 16)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hai-lookup-'));
  try {
    const model = join(dir, 'gemma2.gguf');
    execFileSync(hai, ['synth', '--arch', 'gemma2', '--ctx', '128', '--type', 'Q8_0', '--std', '0.05', '-o', model]);
    await compare(model, 'gemma2 synth');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// The slots' KV cache quantized (--kv-type): sequences batched into one step read and write their
// own rows of the quantized caches - the answers are those of the same server one request at a time
// (greedy and seeded sampling at OpenAI's defaults), and they are not all the F16 cache's answers
// (the option reaches the cache).
for (const kv of ['q8_0', 'q4_0']) {
  test(`a ${kv} KV cache in the server: requests batched together answer as one at a time`, async () => {
    const model = refModel('qwen2-s-Q8_0.gguf');
    const one = await startServer(['--parallel', '3', '--kv-type', kv], model);
    const all = await startServer(['--parallel', '3', '--kv-type', kv], model);
    const f16 = await startServer(['--parallel', '3'], model);
    try {
      assert.match(one.log(), new RegExp(`KV cache ${kv.toUpperCase()}`));
      const want = [], plain = [];
      for (const s of settings) for (const p of prompts) want.push(await complete(one.url, p, s));
      const got = await Promise.all(settings.flatMap((s) => prompts.map((p) => complete(all.url, p, s))));
      for (let i = 0; i < want.length; i++) assert.deepEqual(got[i], want[i], `${kv}: request ${i} differs when batched`);
      for (const s of settings) for (const p of prompts) plain.push(await complete(f16.url, p, s));
      const same = want.filter((w, i) => JSON.stringify(w) === JSON.stringify(plain[i])).length;
      console.log(`${kv}: ${want.length} answers identical batched; ${same} of them as the F16 cache's`);
      assert.ok(same < want.length, `${kv}: every answer is the F16 cache's`);
    } finally {
      await Promise.all([one.stop(), all.stop(), f16.stop()]);
    }
  });
}
