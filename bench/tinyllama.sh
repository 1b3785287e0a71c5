#!/usr/bin/env bash
# The performance benchmark: TinyLlama-1.1B geometry (n_embd 2048, 22 layers, 32 heads, 4 KV
# heads, n_ff 5632, the 32000-token llama vocabulary of ../shared) with random weights (normal,
# std 0.02) in F16, quantized by hai to Q4_0, Q8_0 and Q4_K_M. Measures, on T threads (default 2):
# pp512 and tg128 (as llama-bench), decode of 128 tokens after a 2926-token prompt (and that
# prompt's prefill), peak RSS generating with a 4096 context, the memory bandwidth in the same run
# and how fast the decode kernels alone stream weights; prints the table against llama.cpp's
# figures (bench/report.mjs).
# Environment: THREADS (2), REPS (3), BENCH_DIR (build/bench), HAI_SHARED_DIR (../shared).
source "$(dirname "$0")/common.sh"
reps=${REPS:-3}
f16=$dir/tinyllama-F16.gguf
if [ ! -f "$f16" ]; then
  echo "== generating $f16 (random weights, TinyLlama geometry)" >&2
  ./build/hai synth --preset tinyllama --type F16 --std 0.02 --seed 42 --vocab "$shared/vocab/ggml-vocab-llama-spm.gguf" -o "$f16" >&2
fi
for t in Q4_0 Q8_0 Q4_K_M; do
  [ -f "$dir/tinyllama-$t.gguf" ] || ./build/hai quantize "$f16" "$dir/tinyllama-$t.gguf" "$t" -t "$threads" -q >&2
done
out=$dir/results.jsonl
: > "$out"
echo "== memory bandwidth" >&2
echo "{\"membw\":$(./build/bench_membw 1024 "$threads" --json)}" >> "$out"
for t in Q4_0 Q8_0 Q4_K_M; do
  m=$dir/tinyllama-$t.gguf
  echo "== $t: pp512, tg128" >&2
  ./build/hai bench -m "$m" -t "$threads" -p 512 -n 128 -r "$reps" --json >> "$out"
  echo "== $t: decode after a 2926-token prompt" >&2
  ./build/hai bench -m "$m" -t "$threads" -p 0 -n 128 --depth 2926 -r 1 --json >> "$out"
done
echo "== Q4_0: peak memory generating 128 tokens with a 4096 context" >&2
./build/hai bench -m "$dir/tinyllama-Q4_0.gguf" -t "$threads" -p 0 -n 128 --ctx 4096 -r 1 --json | sed 's/"test":"tg128"/"test":"tg128@ctx4096"/' >> "$out"
echo "{\"membw_after\":$(./build/bench_membw 1024 "$threads" --json)}" >> "$out"
echo "== the decode kernels alone" >&2
echo "{\"decode_bw\":$(./build/bench_decode_bw "$threads" --json)}" >> "$out"
node bench/report.mjs "$out"
