#!/usr/bin/env bash
# `hai quantize` from the command line: progress lines, the per-tensor table and summary, the
# file it writes (hai info, hai run), the requantization warning, and errors.
set -u
hai=$1
ref=$2/reference
fail=0
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
expect() { printf '%s\n' "$3" | grep -qE -- "$2" || { echo "FAIL: $1: /$2/ not in:"; printf '%s\n' "$3"; fail=1; }; }

out=$("$hai" quantize "$ref/llama-s-F32.gguf" "$dir/q.gguf" Q4_K_M -t 2 2>"$dir/err"); rc=$?
[ $rc -eq 0 ] || { echo "FAIL: quantize exit $rc"; cat "$dir/err"; fail=1; }
expect "table" '^blk\.1\.ffn_down\.weight +F32 +-> Q6_K +196608 +[0-9.e+-]+ +[0-9.]+%$' "$out"
expect "norms stay F32" '^output_norm\.weight +F32 +-> F32' "$out"
expect "summary" 'Q4_K_M, file type Q4_K_M\), [0-9.]+x smaller, [0-9.]+ bits per weight' "$out"
expect "rmse" '^error over [0-9]+ weights: rmse [0-9.e+-]+, relative [0-9.]+%' "$out"
expect "progress (not a tty: a line per tensor)" '^\[100\.0%\] blk\.1\.ffn_down\.weight' "$(cat "$dir/err")"
info=$("$hai" info "$dir/q.gguf")
expect "info" 'file type: +Q4_K_M \(15\)' "$info"
gen=$("$hai" run -m "$dir/q.gguf" -p "Hello" -n 4 --temp 0 -q 2>&1) || { echo "FAIL: hai run on the quantized file"; fail=1; }

# already quantized: a warning, and still a valid file
err=$("$hai" quantize "$ref/llama-s-Q8_0.gguf" "$dir/r.gguf" Q4_0 -q 2>&1 >/dev/null); rc=$?
[ $rc -eq 0 ] || { echo "FAIL: requantize exit $rc"; fail=1; }
expect "requantize warning" 'warning: [0-9]+ tensors are already quantized \(Q8_0' "$err"

# errors
"$hai" quantize "$ref/llama-s-F32.gguf" "$dir/x.gguf" Q7 >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] || { echo "FAIL: unknown type exit $rc"; fail=1; }
head -c 3000 "$ref/llama-s-F32.gguf" > "$dir/trunc.gguf"
err=$("$hai" quantize "$dir/trunc.gguf" "$dir/y.gguf" Q8_0 2>&1); rc=$?
[ $rc -eq 1 ] && [ ! -e "$dir/y.gguf" ] || { echo "FAIL: truncated input exit $rc"; fail=1; }
expect "truncated input" 'hai quantize: ' "$err"
[ $fail -eq 0 ] && echo "cli_quantize: all checks passed"
exit $fail
