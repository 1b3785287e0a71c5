#!/usr/bin/env bash
# `hai route --explain` decisions on a real model, and hai-route-sim --check over seeded 10k-request
# traces under two policies (must send no personal data against the policy, answer every request
# during outages, and keep the budget).
set -u
hai=$1
model=$2/reference/qwen2-s-Q8_0.gguf
sim=$3 # tools/route-sim
fail=0
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
expect() { # expect NAME PATTERN OUTPUT
  printf '%s\n' "$3" | grep -qE -- "$2" || { echo "FAIL: $1: /$2/ not in:"; printf '%s\n' "$3"; fail=1; }
}

# explain, no policy file: everything local
out=$("$hai" route --explain -m "$model" "mail me at li.wei@example.com" 2>&1)
expect "keep-local" '^route: +local' "$out"
expect "keep-local reason" '^reasons: +PRIVACY_KEEP_LOCAL$' "$out"
expect "keep-local signal" 'email x1 \(keep_local\)' "$out"

cat > "$dir/cloud.json" <<'JSON'
{"cloud": {"base_url": "http://127.0.0.1:9/v1", "model": "big", "models": ["gpt-large"]},
 "privacy": {"email": "redact", "ip": "allow"}, "cascade": {"enabled": true, "tokens": 8},
 "budget": {"daily_tokens": 500000}}
JSON
out=$("$hai" route --explain -m "$model" --route-config "$dir/cloud.json" --json "what is 2+2?")
expect "cascade" '"route":"local->cloud".*"reasons":\["DEFAULT"\]' "$out"
out=$("$hai" route --explain -m "$model" --route-config "$dir/cloud.json" --json "mail li.wei@example.com")
expect "redact" '"reasons":\["PRIVACY_REDACTED","DEFAULT"\]' "$out"
expect "redact signal" '"personal_data":\{"email":1\}' "$out"
out=$("$hai" route --explain -m "$model" --route-config "$dir/cloud.json" --model-name gpt-large --json "hi")
expect "named model" '"route":"cloud".*"CLOUD_MODEL_REQUESTED"' "$out"
long=$(printf 'word %.0s' $(seq 1 300))
out=$("$hai" route --explain -m "$model" --route-config "$dir/cloud.json" --ctx 128 --json "$long")
expect "too long" '"route":"cloud".*"CONTEXT_TOO_LONG"' "$out"
out=$("$hai" route --explain -m "$model" --ctx 128 "$long")
expect "too long, no cloud" '^route: +local' "$out"
expect "too long, truncated" 'truncation:' "$out"
out=$("$hai" route --explain -m "$model" --route-config "$dir/cloud.json" -n 2000 --deadline-ms 100 --json "hurry")
expect "deadline" '"route":"cloud".*"DEADLINE"' "$out"

# the privacy gate fails closed: a hostile prefix long enough to send the prompt to the cloud for
# its length does not hide the address after it ("x@" + "ab." * 1500 stopped the old e-mail
# pattern, which read that as "no more addresses"; the prefix is address syntax itself: 2)
cat > "$dir/keep.json" <<'JSON'
{"cloud": {"base_url": "http://127.0.0.1:9/v1", "model": "big"}, "privacy": {"custom": "redact", "patterns": ["(a|aa)+b"]}}
JSON
hostile="x@$(printf 'ab.%.0s' $(seq 1 1500)) mail bob@example.org"
out=$("$hai" route --explain -m "$model" --route-config "$dir/keep.json" --ctx 512 --json "$hostile")
expect "hostile prefix" '"route":"local".*"PRIVACY_KEEP_LOCAL".*"personal_data":\{"email":2,' "$out"
# a custom pattern that cannot finish is a detection of its own
out=$("$hai" route --explain -m "$model" --route-config "$dir/keep.json" --json "$(printf 'a%.0s' $(seq 1 40)) hello bob")
expect "scan incomplete" '"route":"local".*"reasons":\["PRIVACY_SCAN_INCOMPLETE"\].*"privacy_scan_incomplete":"message 0: the custom detector' "$out"

# a policy with a typo is refused, naming it
printf '{"privacy": {"emial": "allow"}}' > "$dir/bad.json"
out=$("$hai" route --explain -m "$model" --route-config "$dir/bad.json" "x" 2>&1); rc=$?
[ $rc -eq 1 ] || { echo "FAIL: bad policy exit $rc"; fail=1; }
expect "bad policy" "unknown privacy class 'emial'" "$out"

# evaluation: the default evaluation policy and the redacting one
for policy in "" "$dir/cloud.json"; do
  out=$("$sim" --check --json ${policy:+--route-config "$policy"}); rc=$?
  [ $rc -eq 0 ] || { echo "FAIL: eval --check ($policy) exit $rc"; fail=1; }
  expect "eval requests" '"requests":10000,' "$out"
  expect "eval pii" '"personal_data_bytes_sent":0,' "$out"
  expect "eval offline" '"offline_answered_share":1.0000,' "$out"
  expect "eval budget" '"budget_overrun":0}' "$out"
  expect "eval pii seeded" '"with_personal_data":(1[5-9]|2[0-4])[0-9][0-9],' "$out"
  expect "eval outages" '"offline_requests":[1-9][0-9]+,' "$out"
  expect "eval cloud used" '"cloud_share":0\.[0-9]*[1-9]' "$out"
done
out=$("$sim" --json --route-config "$dir/cloud.json")
expect "eval allowed ip" '"personal_data_bytes_allowed":[1-9]' "$out"
expect "eval redacted" '"PRIVACY_REDACTED":[1-9]' "$out"
# the README's example policy is a valid policy
readme=$(dirname "$0")/../README.md
sed -n '/^```json$/,/^```$/p' "$readme" | sed '1d;$d' > "$dir/readme.json"
[ -s "$dir/readme.json" ] || { echo "FAIL: no example policy in $readme"; fail=1; }
out=$(CLOUD_API_KEY=k "$sim" --check --requests 2000 --route-config "$dir/readme.json" 2>&1) || {
  echo "FAIL: the README's policy:"; printf '%s\n' "$out"; fail=1; }
[ $fail -eq 0 ] && echo "cli_route: all checks passed"
exit $fail
