// Files hai writes must load in other GGUF runtimes unchanged. An independent parser
// (@huggingface/gguf, which follows llama.cpp's gguf-py reader) reads models/hai-tiny.gguf and
// models written by `hai synth`, and the metadata and tensors llama.cpp's llama loader needs are
// checked: hyperparameter keys, a tokenizer it knows, tensor names, shapes, types, alignment, and
// that the tensor data ends exactly at the end of the file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, statSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gguf } from '@huggingface/gguf';
import { hai } from './serve.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
// ggml type id: [elements per block, bytes per block]
const TYPE_SIZE = { 0: [1, 4], 1: [1, 2], 2: [32, 18], 3: [32, 20], 6: [32, 22], 7: [32, 24], 8: [32, 34], 10: [256, 84],
  11: [256, 110], 12: [256, 144], 13: [256, 176], 14: [256, 210], 20: [32, 18], 23: [256, 136], 30: [1, 2] };

async function check(path, { tokenizer }) {
  const { metadata: md, tensorInfos: ts, tensorDataOffset } = await gguf(path, { allowLocalFile: true });
  const arch = md['general.architecture'];
  assert.ok(['llama', 'qwen2', 'qwen3'].includes(arch), arch);
  for (const k of ['context_length', 'embedding_length', 'block_count', 'feed_forward_length', 'attention.head_count',
    'attention.head_count_kv', 'attention.layer_norm_rms_epsilon']) {
    assert.equal(typeof md[`${arch}.${k}`], 'number', `${path}: ${arch}.${k}`);
  }
  const n_embd = md[`${arch}.embedding_length`], n_layer = md[`${arch}.block_count`], n_ff = md[`${arch}.feed_forward_length`];
  const n_head = md[`${arch}.attention.head_count`], n_kv = md[`${arch}.attention.head_count_kv`];
  const hd = md[`${arch}.attention.key_length`] ?? n_embd / n_head;
  // the tokenizer
  const tokens = md['tokenizer.ggml.tokens'];
  assert.ok(Array.isArray(tokens) && tokens.length > 0);
  assert.equal(md['tokenizer.ggml.model'], tokenizer);
  assert.equal(md['tokenizer.ggml.token_type'].length, tokens.length, 'token_type per token');
  if (tokenizer === 'gpt2') {
    assert.ok(md['tokenizer.ggml.merges'].length > 0, 'BPE merges');
    for (const m of md['tokenizer.ggml.merges'].slice(0, 200)) assert.equal(m.split(' ').length, 2, `merge '${m}'`);
    assert.ok(['llama-bpe', 'qwen2', 'gpt-2', 'deepseek-llm'].includes(md['tokenizer.ggml.pre']), md['tokenizer.ggml.pre']);
  }
  for (const k of ['bos_token_id', 'eos_token_id']) {
    const id = md[`tokenizer.ggml.${k}`];
    assert.ok(Number.isInteger(id) && id >= 0 && id < tokens.length, `${k} ${id}`);
  }
  // tensors: names and shapes as llama.cpp's llama loader expects them (ne order: [in, out])
  const byName = new Map(ts.map((t) => [t.name, t]));
  assert.equal(byName.size, ts.length, 'tensor names are unique');
  const shape = (n) => byName.get(n)?.shape.map(Number);
  assert.deepEqual(shape('token_embd.weight'), [n_embd, tokens.length]);
  assert.deepEqual(shape('output_norm.weight'), [n_embd]);
  if (byName.has('output.weight')) assert.deepEqual(shape('output.weight'), [n_embd, tokens.length]);
  for (let i = 0; i < n_layer; i++) {
    const b = `blk.${i}.`;
    assert.deepEqual(shape(b + 'attn_norm.weight'), [n_embd]);
    assert.deepEqual(shape(b + 'ffn_norm.weight'), [n_embd]);
    assert.deepEqual(shape(b + 'attn_q.weight'), [n_embd, n_head * hd]);
    assert.deepEqual(shape(b + 'attn_k.weight'), [n_embd, n_kv * hd]);
    assert.deepEqual(shape(b + 'attn_v.weight'), [n_embd, n_kv * hd]);
    assert.deepEqual(shape(b + 'attn_output.weight'), [n_head * hd, n_embd]);
    assert.deepEqual(shape(b + 'ffn_gate.weight'), [n_embd, n_ff]);
    assert.deepEqual(shape(b + 'ffn_up.weight'), [n_embd, n_ff]);
    assert.deepEqual(shape(b + 'ffn_down.weight'), [n_ff, n_embd]);
  }
  // norms are F32 (llama.cpp's kernels take them so); data aligned; the last byte is the file's
  const align = BigInt(md['general.alignment'] ?? 32);
  assert.equal(tensorDataOffset % align, 0n, 'tensor data starts aligned');
  let end = 0n;
  for (const t of ts) {
    if (t.name.endsWith('norm.weight')) assert.equal(t.dtype, 0, `${t.name} is F32`);
    assert.equal(t.offset % align, 0n, `${t.name} aligned`);
    const [blk, bytes] = TYPE_SIZE[t.dtype] ?? assert.fail(`unexpected type ${t.dtype} of ${t.name}`);
    const n = t.shape.reduce((a, b) => a * b, 1n);
    assert.equal(n % BigInt(blk), 0n);
    const stop = t.offset + (n / BigInt(blk)) * BigInt(bytes);
    if (stop > end) end = stop;
  }
  const size = BigInt(statSync(path).size);
  assert.ok(tensorDataOffset + end <= size && size - (tensorDataOffset + end) < align, `data ends at the file's end (${tensorDataOffset + end} of ${size})`);
  return md;
}

test('models/hai-tiny.gguf reads in an independent GGUF parser with what llama.cpp needs', async () => {
  const path = join(root, 'models', 'hai-tiny.gguf');
  assert.ok(existsSync(path), `${path} is missing`);
  const md = await check(path, { tokenizer: 'gpt2' });
  assert.equal(md['general.architecture'], 'llama');
  assert.ok(md['tokenizer.chat_template'].includes('<|im_start|>'), 'a ChatML chat template');
  const eos = md['tokenizer.ggml.tokens'][md['tokenizer.ggml.eos_token_id']];
  assert.equal(eos, '<|im_end|>', 'generation ends at the end of the turn');
});

test('models hai quantize writes read in an independent GGUF parser', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hai-gguf-q-'));
  try {
    const src = join(process.env.HAI_SHARED_DIR, 'reference', 'llama-s-F32.gguf');
    for (const type of ['Q8_0', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'IQ4_NL', 'IQ4_XS', 'Q2_K', 'Q3_K_M', 'Q4_K_M', 'Q5_K_M', 'Q6_K', 'BF16']) {
      const out = join(dir, `${type}.gguf`);
      execFileSync(hai, ['quantize', src, out, type, '-q'], { stdio: 'ignore' });
      const md = await check(out, { tokenizer: 'llama' });
      assert.equal(md['general.quantization_version'], 2);
      assert.equal(typeof md['general.file_type'], 'number');
    }
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('models hai synth writes read in an independent GGUF parser', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hai-gguf-'));
  try {
    for (const [arch, type] of [['llama', 'Q8_0'], ['qwen2', 'Q4_0'], ['qwen3', 'F16']]) {
      const out = join(dir, `${arch}.gguf`);
      execFileSync(hai, ['synth', '-o', out, '--arch', arch, '--type', type, '--n-embd', '128', '--n-layer', '2', '--n-head', '4',
        '--n-head-kv', '2', '--n-ff', '256'], { stdio: 'ignore' });
      await check(out, { tokenizer: 'llama' });
    }
  } finally { rmSync(dir, { recursive: true, force: true }); }
});
