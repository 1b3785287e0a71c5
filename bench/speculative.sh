#!/usr/bin/env bash
# Speculative decoding, measured. Random weights do not copy or agree with themselves, so the
# share of drafts kept comes from a model that does: hai-spell (models/hai-spell.md), hai-tiny's
# architecture taught to correct the spelling of a paragraph, whose answer copies most of its
# input. On its held-out paragraphs (greedy, N tokens at most, in turns with plain decoding;
# every drafted text must equal the plain one):
#   - prompt lookup of up to 8 tokens on the F16 file,
#   - its own Q4_0 copy drafting for the F16 file and for the Q8_0 file.
# hai-spell is tiny (4.75M parameters): a step is mostly overhead, not weights, so its end-to-end
# figures understate what a model that is bandwidth-bound gains. The cost of checking k drafts on
# the TinyLlama-1.1B geometry (hai bench --verify: one pass of k+1 tokens in decode steps, F16,
# Q8_0 and Q4_0) gives, with the kept shares above, the speed-up a 1.1B model would see:
#   tokens a pass / (pass cost + draft cost), draft cost = drafts x (draft step / model step).
# With LLAMA_CPP (a llama.cpp build directory holding bin/llama-speculative, bin/llama-lookup,
# bin/llama-bench), llama.cpp's figures on the same files beside hai's.
# Environment: THREADS (2), REPS (3), N (160), PROMPTS (4), BENCH_DIR (build/bench), LLAMA_CPP.
source "$(dirname "$0")/common.sh"
reps=${REPS:-3}
n=${N:-160}
nprompts=${PROMPTS:-4}
spell=models/hai-spell.gguf
out=$dir/speculative.jsonl
: > "$out"
for t in Q8_0 Q4_0; do
  [ -f "$dir/spell-$t.gguf" ] || ./build/hai quantize "$spell" "$dir/spell-$t.gguf" "$t" -q >&2
done
# the held-out paragraphs as ChatML prompts, one file each
node - "$dir" "$nprompts" <<'EOF'
const fs = require('fs');
const [dir, k] = process.argv.slice(2);
const rows = fs.readFileSync('tools/train-tiny/spelling-heldout.jsonl', 'utf8').trim().split('\n').map(JSON.parse);
rows.slice(0, Number(k)).forEach((r, i) =>
  fs.writeFileSync(`${dir}/spell-prompt-${i}.txt`, `<|im_start|>user\n${r.prompt}<|im_end|>\n<|im_start|>assistant\n`));
EOF
F16=$spell Q8=$dir/spell-Q8_0.gguf Q4=$dir/spell-Q4_0.gguf
for i in $(seq 0 $((nprompts - 1))); do
  p=$dir/spell-prompt-$i.txt
  echo "== paragraph $i: lookup, Q4_0 drafting for F16, Q4_0 drafting for Q8_0" >&2
  ./build/hai bench -m "$F16" -t "$threads" -p 0 -n "$n" -r "$reps" --lookup 8 --prompt-file "$p" --json |
    grep '"drafted"' | sed "s/^{/{\"case\":\"F16 lookup\",\"prompt\":$i,/" >> "$out"
  ./build/hai bench -m "$F16" -t "$threads" -p 0 -n "$n" -r "$reps" --draft "$Q4" --lookup 8 --prompt-file "$p" --json |
    grep '"drafted"' | sed "s/^{/{\"case\":\"F16 by Q4_0\",\"prompt\":$i,/" >> "$out"
  ./build/hai bench -m "$Q8" -t "$threads" -p 0 -n "$n" -r "$reps" --draft "$Q4" --lookup 8 --prompt-file "$p" --json |
    grep '"drafted"' | sed "s/^{/{\"case\":\"Q8_0 by Q4_0\",\"prompt\":$i,/" >> "$out"
done
# the cost of checking drafts on the 1.1B geometry
f16=$dir/tinyllama-F16.gguf
if [ ! -f "$f16" ]; then
  echo "== generating $f16 (random weights, TinyLlama geometry)" >&2
  ./build/hai synth --preset tinyllama --type F16 --std 0.02 --seed 42 --vocab "$shared/vocab/ggml-vocab-llama-spm.gguf" -o "$f16" >&2
fi
for t in Q4_0 Q8_0; do
  [ -f "$dir/tinyllama-$t.gguf" ] || ./build/hai quantize "$f16" "$dir/tinyllama-$t.gguf" "$t" -t "$threads" -q >&2
done
for t in F16 Q8_0 Q4_0; do
  echo "== TinyLlama geometry $t: decode and the cost of checking 1..8 drafts" >&2
  ./build/hai bench -m "$dir/tinyllama-$t.gguf" -t "$threads" -p 0 -n 32 -r "$reps" --verify 8 --json |
    grep -E '"test":"(tg32|verify[0-9]+)"' | sed "s/^{/{\"geometry\":\"$t\",/" >> "$out"
done
if [ -n "${LLAMA_CPP:-}" ]; then
  lb=$LLAMA_CPP/bin
  for i in $(seq 0 $((nprompts - 1))); do
    p=$dir/spell-prompt-$i.txt
    echo "== llama.cpp, paragraph $i" >&2
    for c in "F16 lookup" "F16 by Q4_0" "Q8_0 by Q4_0"; do
      case $c in
        "F16 lookup") log=$("$lb/llama-lookup" -m "$F16" -f "$p" -n "$n" -t "$threads" --temp 0 --draft-max 8 -c 2048 2>&1 || true) ;;
        "F16 by Q4_0") log=$("$lb/llama-speculative" -m "$F16" -md "$Q4" -f "$p" -n "$n" -t "$threads" --temp 0 --draft-max 8 -c 2048 2>&1 || true) ;;
        *) log=$("$lb/llama-speculative" -m "$Q8" -md "$Q4" -f "$p" -n "$n" -t "$threads" --temp 0 --draft-max 8 -c 2048 2>&1 || true) ;;
      esac
      tps=$(echo "$log" | sed -n 's/.*decoded *[0-9]* tokens in *[0-9.]* seconds, speed: *\([0-9.]*\) t\/s.*/\1/p' | tail -1)
      drafted=$(echo "$log" | sed -n 's/^n_drafted *= *\([0-9]*\).*/\1/p' | tail -1)
      accepted=$(echo "$log" | sed -n 's/^n_accept *= *\([0-9]*\).*/\1/p' | tail -1)
      echo "{\"llama\":true,\"case\":\"$c\",\"prompt\":$i,\"tokens_per_s\":${tps:-0},\"drafted\":${drafted:-0},\"kept\":${accepted:-0}}" >> "$out"
    done
  done
  for f in "$F16" "$Q8"; do
    t=$(basename "$f" .gguf)
    "$lb/llama-bench" -m "$f" -t "$threads" -p 0 -n 64 -r "$reps" -o json 2>/dev/null |
      node -e "const j=JSON.parse(require('fs').readFileSync(0,'utf8'));console.log(JSON.stringify({llama:true,plain:'$t',tokens_per_s:j[0].avg_ts}))" >> "$out"
  done
fi
node bench/speculative_report.mjs "$out"
