#!/usr/bin/env bash
# `hai info` on every GGUF file in ../shared: exit 0 and the expected fields; on a bad file: exit 1
# and the reader's error.
set -u
hai=$1
shared=$2
fail=0
n=0
for f in "$shared"/reference/*.gguf "$shared"/vocab/*.gguf; do
  [ -e "$f" ] || { echo "FAIL: no GGUF files under $shared"; exit 1; }
  n=$((n + 1))
  out=$("$hai" info "$f" 2>&1)
  rc=$?
  arch=$(printf '%s\n' "$out" | sed -n 's/^architecture: *//p')
  if [ $rc -ne 0 ] || [ -z "$arch" ] || ! printf '%s\n' "$out" | grep -q '^memory: .*KV cache'; then
    echo "FAIL: hai info $f (exit $rc)"; printf '%s\n' "$out"; fail=1
  fi
done
# the reference models: parameters and tensor types are reported
out=$("$hai" info "$shared/reference/llama-s-Q4_K_M.gguf" --ctx 1024)
for want in 'architecture:  llama' 'Q4_K x' 'Q6_K x' 'file type:     Q4_K_M' 'at --ctx 1024' 'tokenizer:     llama'; do
  printf '%s\n' "$out" | grep -qF "$want" || { echo "FAIL: '$want' missing from:"; printf '%s\n' "$out"; fail=1; }
done
out=$("$hai" info -v "$shared/reference/qwen3-s-F16.gguf")
printf '%s\n' "$out" | grep -q 'blk.1.attn_k_norm.weight' || { echo "FAIL: -v lists no tensors"; fail=1; }
printf '%s\n' "$out" | grep -q 'head_dim 128/128' || { echo "FAIL: qwen3 head_dim"; fail=1; }
# a bad file: exit 1 with the reader's message
bad=$(mktemp)
head -c 100 "$shared/reference/llama-s-F16.gguf" > "$bad"
out=$("$hai" info "$bad" 2>&1); rc=$?
rm -f "$bad"
if [ $rc -ne 1 ] || ! printf '%s\n' "$out" | grep -q 'error: .*truncated'; then
  echo "FAIL: bad file gave exit $rc: $out"; fail=1
fi
"$hai" info /nonexistent.gguf >/dev/null 2>&1; [ $? -eq 1 ] || { echo "FAIL: missing file"; fail=1; }
# HAI_KERNELS naming a table that does not exist, or that this CPU cannot run, is an error at load,
# never a silent fallback to another table
out=$(HAI_KERNELS=bogus "$hai" run -m "$shared/reference/llama-s-Q8_0.gguf" -p hi -n 1 2>&1); rc=$?
{ [ $rc -ne 0 ] && printf '%s\n' "$out" | grep -q 'HAI_KERNELS=bogus: no such kernel table'; } || { echo "FAIL: HAI_KERNELS=bogus gave exit $rc: $out"; fail=1; }
case $(uname -m) in x86_64) other=neon ;; *) other=avx2 ;; esac
out=$(HAI_KERNELS=$other "$hai" run -m "$shared/reference/llama-s-Q8_0.gguf" -p hi -n 1 2>&1); rc=$?
{ [ $rc -ne 0 ] && printf '%s\n' "$out" | grep -q "HAI_KERNELS=$other: this CPU or build cannot run"; } || { echo "FAIL: HAI_KERNELS=$other gave exit $rc: $out"; fail=1; }
echo "cli_info: $n files, $([ $fail -eq 0 ] && echo ok || echo FAILED)"
exit $fail
