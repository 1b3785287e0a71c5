#!/usr/bin/env bash
# Each dense architecture at the same size: TinyLlama-1.1B's geometry (n_embd 2048, 22 layers, 32
# heads, 4 KV heads, n_ff 5632, the 32000-token llama vocabulary of ../shared) written by hai synth as llama, qwen2,
# qwen3, granite, smollm3, phi3, gemma2 and gemma3 in Q4_0, random weights. What differs is what
# each family adds (biases, q/k norms, GeGLU, norms after attention and FFN, soft-capping, sliding
# windows, fused tensors), so each family's prefill (pp256) and decode (tg64) against llama's, for
# the bytes a decode step reads (printed beside), shows the cost of that code. The models are
# benchmarked in turns, one repetition each round (ROUNDS, default 3), so the machine's drift
# touches all of them alike; the table gives each one's median and its ratio to llama.
# Environment: THREADS (2), ROUNDS (3), BENCH_DIR (build/bench), ARCHS (the list above).
source "$(dirname "$0")/common.sh"
rounds=${ROUNDS:-3}
archs=${ARCHS:-"llama qwen2 qwen3 granite smollm3 phi3 gemma2 gemma3"}
out=$dir/families.jsonl
: > "$out"
for a in $archs; do
  m=$dir/family-$a-Q4_0.gguf # (remove build/bench/family-* after changing the geometry)
  if [ ! -f "$m" ]; then
    echo "== generating $m (random weights, TinyLlama geometry as $a)" >&2
    ./build/hai synth --preset tinyllama --arch "$a" --type Q4_0 --vocab "$shared/vocab/ggml-vocab-llama-spm.gguf" -o "$m" >&2
  fi
done
for r in $(seq 1 "$rounds"); do
  for a in $archs; do
    echo "== round $r/$rounds: $a" >&2
    ./build/hai bench -m "$dir/family-$a-Q4_0.gguf" -t "$threads" -p 256 -n 64 -r 1 --json |
      grep -E '"test":"(pp256|tg64)"' | sed "s/^{/{\"arch\":\"$a\",/" >> "$out"
  done
done
node - "$out" <<'EOF'
const rows = require('fs').readFileSync(process.argv[2], 'utf8').trim().split('\n').map(JSON.parse);
const med = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };
const archs = [...new Set(rows.map((r) => r.arch))];
const fig = (a, t) => med(rows.filter((r) => r.arch === a && r.test === t).map((r) => r.tokens_per_s));
const base = { pp: fig('llama', 'pp256'), tg: fig('llama', 'tg64') };
const r0 = rows[0];
console.log(`${r0.kernels} kernels, ${r0.threads} threads, median of ${rows.length / archs.length / 2} rounds`);
console.log('| arch | MiB a decode step | pp256 tok/s | vs llama | tg64 tok/s | vs llama |');
console.log('|---|---|---|---|---|---|');
for (const a of archs) {
  const pp = fig(a, 'pp256'), tg = fig(a, 'tg64');
  const mib = rows.find((r) => r.arch === a).decode_bytes / 1048576;
  const ratio = (x, b) => (b ? (x / b).toFixed(2) : '-');
  console.log(`| ${a} | ${mib.toFixed(0)} | ${pp.toFixed(1)} | ${ratio(pp, base.pp)} | ${tg.toFixed(1)} | ${ratio(tg, base.tg)} |`);
}
EOF
