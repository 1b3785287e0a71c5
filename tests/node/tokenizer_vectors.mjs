// Reference token ids from @lenml/tokenizers (transformers.js's tokenizers) for the texts of
// tests/data/tokenizer_texts.json, in the layout of ../shared/vocab (ggml-vocab-NAME.gguf.inp:
// the texts, each followed by "\n__ggml_vocab_test__\n"; .out: one line of ids per text), so
// that test_tokenizer checks hai's tokenizer.json import against them id for id.
// usage: node tokenizer_vectors.mjs HF_DIR OUT_DIR NAME...   (HF_DIR/NAME/tokenizer.json)
import { readFileSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TokenizerLoader } from '@lenml/tokenizers';

const [hfDir, outDir, ...names] = process.argv.slice(2);
if (!hfDir || !outDir || !names.length) {
  console.error('usage: node tokenizer_vectors.mjs HF_DIR OUT_DIR NAME...');
  process.exit(2);
}
const here = dirname(fileURLToPath(import.meta.url));
const texts = JSON.parse(readFileSync(join(here, '..', 'data', 'tokenizer_texts.json'), 'utf8'));
mkdirSync(outDir, { recursive: true });
const sep = '\n__ggml_vocab_test__\n';
for (const name of names) {
  const dir = join(hfDir, name);
  if (!existsSync(join(dir, 'tokenizer.json'))) {
    console.error(`tokenizer_vectors: ${dir}/tokenizer.json is missing (scripts/fetch-hf-tokenizers.sh)`);
    process.exit(1);
  }
  const tokenizer = TokenizerLoader.fromPreTrained({
    tokenizerJSON: JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')),
    tokenizerConfig: JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')),
  });
  const ids = texts.map((t) => tokenizer.encode(t, { add_special_tokens: false }));
  writeFileSync(join(outDir, `ggml-vocab-${name}.gguf.inp`), texts.map((t) => t + sep).join(''));
  writeFileSync(join(outDir, `ggml-vocab-${name}.gguf.out`), ids.map((v) => v.map((i) => ' ' + i).join('') + '\n').join(''));
  console.log(`tokenizer_vectors: ${name}: ${texts.length} texts, ${ids.reduce((a, v) => a + v.length, 0)} tokens`);
}
