#!/usr/bin/env bash
# hai run --state: a second run with the same long prompt reads only what the saved state does not
# hold (its answer the same as the first's, greedy); a damaged state file is refused (exit 1, the checksum named) and left as it was.
set -u
hai=$1
model=$2
fail=0
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
prompt="$(for i in $(seq 40); do printf 'You are a careful assistant. '; done)What is 2+2?"
out1=$("$hai" run -m "$model" --chat -p "$prompt" --state "$dir/s" -n 16 --temp 0 -t 1 2>&1 >"$dir/a1") || { echo "FAIL: first run: $out1"; fail=1; }
n=$(printf '%s\n' "$out1" | sed -n 's/.*prompt \([0-9]*\) tok (+0 cached).*/\1/p')
[ -n "$n" ] && [ -s "$dir/s" ] || { echo "FAIL: no prompt count or no state file: $out1"; fail=1; }
out2=$("$hai" run -m "$model" --chat -p "$prompt" --state "$dir/s" -n 16 --temp 0 -t 1 2>&1 >"$dir/a2") || { echo "FAIL: second run: $out2"; fail=1; }
printf '%s\n' "$out2" | grep -qE "prompt 1 tok \(\+$((n - 1)) cached\)" || { echo "FAIL: the prompt was read again:"; printf '%s\n' "$out2"; fail=1; }
[ -s "$dir/a1" ] && cmp -s "$dir/a1" "$dir/a2" || { echo "FAIL: the answers differ: '$(cat "$dir/a1")' / '$(cat "$dir/a2")'"; fail=1; }
# damage one byte in the middle
size=$(stat -c %s "$dir/s")
cp "$dir/s" "$dir/bad"
printf '\xff' | dd of="$dir/bad" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
cp "$dir/bad" "$dir/bad.orig"
out3=$("$hai" run -m "$model" -p "$prompt" --state "$dir/bad" -n 4 -t 1 2>&1); rc=$?
[ $rc -eq 1 ] || { echo "FAIL: a damaged state: exit $rc"; fail=1; }
printf '%s\n' "$out3" | grep -q "checksum does not match" || { echo "FAIL: no checksum message: $out3"; fail=1; }
cmp -s "$dir/bad" "$dir/bad.orig" || { echo "FAIL: the damaged file was overwritten"; fail=1; }
[ $fail -eq 0 ] && echo "cli_state: all checks passed ($n-token prompt read once)"
exit $fail
