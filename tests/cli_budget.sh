#!/usr/bin/env bash
# --mem-budget: what does not fit is refused with the figures; what fits is planned (the largest
# context the budget leaves room for) and the run stays within the budget: its peak RSS above
# what the process held before the model (code and libraries) is at most the budget.
set -u
hai=$1
model=$2
fail=0
dir=$(mktemp -d)
srv=
trap '[ -n "$srv" ] && kill $srv 2>/dev/null; rm -rf "$dir"' EXIT
expect() { printf '%s\n' "$3" | grep -qE -- "$2" || { echo "FAIL: $1: /$2/ not in:"; printf '%s\n' "$3"; fail=1; }; }

out=$("$hai" run -m "$model" --mem-budget 3M -p hi 2>&1); rc=$?
[ $rc -ne 0 ] || { echo "FAIL: 3M ran"; fail=1; }
expect "reserve" "must be more than the 4 MiB" "$out"
out=$("$hai" run -m "$model" --mem-budget 10M --stream off -p hi 2>&1); rc=$?
[ $rc -ne 0 ] || { echo "FAIL: 10M ran"; fail=1; }
expect "weights refused" "the weights take [0-9.]+ MiB; the memory budget is 6.0 MiB" "$out"
out=$("$hai" run -m "$model" --mem-budget 10M -p hi 2>&1); rc=$?
[ $rc -ne 0 ] || { echo "FAIL: 10M ran"; fail=1; }
expect "layers streamed" "weights [0-9.]+ MiB held \+ [0-9.]+ MiB streamed \(layers\)" "$out"
out=$("$hai" run -m "$model" --mem-budget 5G --ctx 100000000 -p hi 2>&1); rc=$?
[ $rc -ne 0 ] || { echo "FAIL: a context of 1e8 ran"; fail=1; }

# MiB of a run's peak RSS above what the process held before the model, from its output $1
above_start() {
  printf '%s\n' "$1" | sed -n 's/.*peak RSS \([0-9.]*\) MiB (\([0-9.]*\) MiB before the model).*/\1 \2/p' | awk '{printf "%.1f", $1 - $2}'
}

# peak RSS: $1 budget, $2 prompt repeats; prints "n_ctx used_mib"
peak() {
  python3 -c "print('The quick brown fox jumps over the lazy dog. ' * $2)" > "$dir/prompt.txt"
  local o
  o=$("$hai" run -m "$model" --mem-budget "$1" -f "$dir/prompt.txt" -n 0 --temp 1 --seed 3 -t 2 2>&1) || { echo "FAIL: run at $1: $o" >&2; return 1; }
  local n u
  n=$(printf '%s\n' "$o" | sed -n 's/.*(n_ctx \([0-9]*\)).*/\1/p')
  u=$(above_start "$o")
  [ -n "$n" ] && [ -n "$u" ] || { echo "FAIL: no plan or peak RSS in: $o" >&2; return 1; }
  echo "$n $u"
}
for case in "22M 10 22" "40M 90 40"; do
  set -- $case
  r=$(peak "$1" "$2") || { fail=1; continue; }
  n=${r% *} used=${r#* }
  echo "budget $1: n_ctx $n, peak RSS above the start $used MiB"
  awk -v u="$used" -v b="$3" 'BEGIN { exit !(u <= b) }' || { echo "FAIL: $1: $used MiB used"; fail=1; }
  # 22M: the weights in memory would leave less than 512 tokens of context: they stream instead
  if [ "$1" = 22M ]; then [ "$n" -ge 512 ] || { echo "FAIL: 22M left a context of $n"; fail=1; }; fi
  if [ "$1" = 40M ]; then [ "$n" = 2048 ] || { echo "FAIL: 40M did not give the trained context ($n)"; fail=1; }; fi
done

# ... unless told not to stream: the weights in memory, what context is left
o=$("$hai" run -m "$model" --mem-budget 22M --stream off -p hi -n 2 2>&1)
n=$(printf '%s\n' "$o" | sed -n 's/.*(n_ctx \([0-9]*\)).*/\1/p')
expect "stream off" "^\[memory budget 22.0 MiB: weights [0-9.]+ MiB \+ context" "$o"
[ -n "$n" ] && [ "$n" -lt 512 ] || { echo "FAIL: --stream off at 22M: n_ctx $n"; fail=1; }

# a mixture of experts twice the budget: the experts stream, the run stays within the budget
"$hai" synth -o "$dir/moe.gguf" --arch qwen3moe --type Q8_0 --n-embd 256 --n-layer 4 --n-head 4 --n-head-kv 2 \
  --n-expert 32 --n-expert-used 4 --n-ff-exp 512 --n-ff 1024 > /dev/null 2>&1 || { echo "FAIL: synth"; fail=1; }
o=$("$hai" run -m "$dir/moe.gguf" --mem-budget 24M -p "The quick brown fox jumps over the lazy dog" -n 24 --temp 1 --seed 3 -t 2 2>&1)
expect "experts streamed" "weights [0-9.]+ MiB held \+ [0-9.]+ MiB streamed \(experts\)" "$o"
expect "stream report" "^stream: experts, 128 in [0-9]+ slots" "$o"
w=$(stat -c %s "$dir/moe.gguf")
used=$(above_start "$o")
echo "moe of $((w >> 20)) MiB in a 24M budget: peak RSS above the start ${used} MiB"
awk -v u="$used" -v w="$w" 'BEGIN { exit !(u != "" && u <= 24 && w > 40 * 1048576) }' || { echo "FAIL: moe: $used MiB used ($w bytes)"; fail=1; }

# a 262,144-token vocabulary: its output matrix (32 MiB, tied to the embedding) placed in runs, the
# file's pages dropped after each - not all of them mapped beside the arena they fill (that peaked
# 25 MiB over a 66M budget)
"$hai" synth -o "$dir/v262.gguf" --arch llama --type Q8_0 --n-embd 128 --n-layer 2 --n-head 2 --n-head-kv 2 --n-ff 256 \
  --n-vocab 262144 --ctx 256 --tied > /dev/null 2>&1 || { echo "FAIL: synth v262"; fail=1; }
o=$("$hai" run -m "$dir/v262.gguf" --mem-budget 72M -p "The quick brown fox" -n 8 --temp 1 --seed 3 -t 2 2>&1)
used=$(above_start "$o")
echo "262K vocabulary in a 72M budget: peak RSS above the start ${used} MiB"
awk -v u="$used" 'BEGIN { exit !(u != "" && u <= 72) }' || { echo "FAIL: v262: $used MiB used: $o"; fail=1; }

# the KV type by the budget: F16 holds 3072 of the 4096 tokens wanted, Q8_0 all of them
"$hai" synth -o "$dir/kv.gguf" --arch llama --type Q8_0 --n-embd 256 --n-layer 4 --n-head 4 --n-head-kv 4 --n-ff 512 --ctx 4096 \
  > /dev/null 2>&1 || { echo "FAIL: synth kv"; fail=1; }
python3 -c "print('The quick brown fox jumps over the lazy dog. ' * 10)" > "$dir/prompt.txt"
o=$("$hai" run -m "$dir/kv.gguf" --mem-budget 28M -f "$dir/prompt.txt" -n 8 --temp 1 --seed 3 -t 2 2>&1)
expect "kv chosen" "^\[KV cache Q8_0: within the memory budget an F16 cache would hold 3072 tokens, this one 4096\]" "$o"
expect "kv context" "n_ctx 4096 \| seed" "$o"
used=$(above_start "$o")
echo "KV Q8_0 chosen in a 28M budget: peak RSS above the start ${used} MiB"
awk -v u="$used" 'BEGIN { exit !(u != "" && u <= 28) }' || { echo "FAIL: kv: $used MiB used"; fail=1; }
o=$("$hai" run -m "$dir/kv.gguf" --mem-budget 28M --kv-type f16 -f "$dir/prompt.txt" -n 8 --temp 1 --seed 3 -t 2 2>&1)
expect "kv as told" "n_ctx 3072 \| seed" "$o"
printf '%s\n' "$o" | grep -q "KV cache" && { echo "FAIL: --kv-type f16 still chose"; fail=1; }
# a draft model within the budget: its weights and context planned beside the model's
o=$("$hai" run -m "$dir/kv.gguf" --draft "$dir/kv.gguf" --mem-budget 40M -f "$dir/prompt.txt" -n 16 --temp 0 -t 2 2>&1)
expect "draft planned" "\+ draft [0-9.]+ MiB and its context [0-9.]+ MiB \+ the run's own" "$o"
expect "draft used" "^\[drafts: [0-9]+ tokens drafted" "$o"
used=$(above_start "$o")
echo "a draft beside the model in a 40M budget: peak RSS above the start ${used} MiB"
awk -v u="$used" 'BEGIN { exit !(u != "" && u <= 40) }' || { echo "FAIL: draft: $used MiB used"; fail=1; }
o=$("$hai" run -m "$dir/kv.gguf" --draft "$dir/kv.gguf" --mem-budget 12M -p hi -n 4 2>&1) && { echo "FAIL: a draft past the budget ran"; fail=1; }
expect "draft refused" "counted against another model's budget, [0-9.]+ MiB left: model: the weights take" "$o"

out=$("$hai" info "$dir/kv.gguf" --mem-budget 24M 2>&1)
expect "info kv" "hai run \(no --ctx, --kv-type\): KV Q8_0, n_ctx 4096" "$out"
"$hai" serve -m "$dir/kv.gguf" --port 0 --parallel 1 --mem-budget 40M -t 1 2> "$dir/serve.log" &
srv=$!
for _ in $(seq 100); do grep -q 'memory budget' "$dir/serve.log" && break; sleep 0.1; done
expect "serve kv" "KV cache Q8_0, chosen by the memory budget: an F16 cache would hold 3072 tokens a slot" "$(cat "$dir/serve.log")"
expect "serve kv context" "1 slots x 4096 context" "$(cat "$dir/serve.log")"
kill $srv; wait $srv 2>/dev/null; srv=
"$hai" serve -m "$dir/kv.gguf" --draft "$dir/kv.gguf" --port 0 --parallel 1 --mem-budget 60M -t 1 2> "$dir/serve.log" &
srv=$!
for _ in $(seq 100); do grep -q 'memory budget' "$dir/serve.log" && break; sleep 0.1; done
expect "serve draft" "memory budget 44.0 MiB: weights [0-9.]+ MiB \+ draft weights [0-9.]+ MiB \+ slots" "$(cat "$dir/serve.log")"
kill $srv; wait $srv 2>/dev/null; srv=

out=$("$hai" info "$model" --mem-budget 24M 2>&1)
expect "info" "^budget: +24.00 MiB: weights" "$out"
expect "info fit" "1 sequence: +n_ctx [0-9]+" "$out"

# the server plans its slots in the budget
"$hai" serve -m "$model" --port 0 --mem-budget 40M -t 1 2> "$dir/serve.log" &
srv=$!
for _ in $(seq 100); do grep -q 'memory budget' "$dir/serve.log" && break; sleep 0.1; done
expect "serve" "memory budget 24.0 MiB: weights [0-9.]+ MiB \+ slots [0-9.]+ MiB" "$(cat "$dir/serve.log")"
kill $srv; wait $srv 2>/dev/null; srv=
out=$("$hai" serve -m "$model" --port 0 --mem-budget 20M 2>&1); rc=$?
[ $rc -ne 0 ] || { echo "FAIL: serve ran in 20M"; fail=1; }
expect "serve refused" "memory budget" "$out"
[ $fail -eq 0 ] && echo "cli_budget: all checks passed"
exit $fail
