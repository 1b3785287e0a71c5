#!/usr/bin/env bash
# The hybrid router, live: hai-tiny answers on the device; a second `hai serve` on loopback plays
# the cloud (any OpenAI-compatible endpoint would do). Easy prompts - the tasks hai-tiny knows -
# are answered locally; prompts it is unsure about (mean entropy of its first tokens above the
# threshold calibrated in models/hai-tiny.md) are escalated before anything is shown; personal
# data stays on the device or goes out redacted, as the policy says.
# Environment: MODEL (default models/hai-tiny.gguf), CLOUD_MODEL (default: the same file),
# THRESHOLD (nats, default from the model card), SKIP_BUILD=1.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${SKIP_BUILD:-}" = 1 ] || { scripts/install-deps.sh && scripts/build.sh; }
model=${MODEL:-models/hai-tiny.gguf}
cloud_model=${CLOUD_MODEL:-$model}
threshold=${THRESHOLD:-0.424} # hai-tiny's calibrated threshold (models/hai-tiny.md)
hai=./build/hai
[ -f "$model" ] || { echo "demo-hybrid: $model not found (tools/train-tiny/run.sh makes it)" >&2; exit 1; }

work=$(mktemp -d)
cloud_pid=
cleanup() { [ -n "$cloud_pid" ] && kill "$cloud_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# the "cloud": another hai serve, on a free loopback port
"$hai" serve -m "$cloud_model" --port 0 -t 1 --parallel 1 2>"$work/cloud.log" &
cloud_pid=$!
url=
for _ in $(seq 1 100); do
  url=$(sed -n 's/.* on \(http:\/\/[0-9.]*:[0-9]*\).*/\1/p' "$work/cloud.log" | head -1)
  [ -n "$url" ] && break
  kill -0 "$cloud_pid" 2>/dev/null || { cat "$work/cloud.log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$url" ] || { echo "demo-hybrid: the cloud server did not start" >&2; cat "$work/cloud.log" >&2; exit 1; }

cat > "$work/policy.json" <<JSON
{
  "cloud": {"base_url": "$url/v1", "model": "cloud-model", "rtt_ms": 300, "tokens_per_s": 80},
  "privacy": {"email": "redact", "phone": "keep_local", "bank_card": "keep_local"},
  "cascade": {"enabled": true, "tokens": 16, "entropy_threshold": $threshold},
  "budget": {"daily_tokens": 100000}
}
JSON
echo "== hybrid demo: local $model, cloud $url (another hai serve), escalation above $threshold nats"
echo
while IFS= read -r prompt; do
  [ -n "$prompt" ] || continue
  echo "> $prompt"
  "$hai" run -m "$model" --route-config "$work/policy.json" -p "$prompt" -n 48 --temp 0 -t 2 -q 2>"$work/err"
  grep '^\[route' "$work/err" || { cat "$work/err" >&2; exit 1; }
  echo
done <<'PROMPTS'
What is 17 + 25?
What is the capital of Japan?
How many letters are in the word 'elephant'?
Convert 3 kilometers to meters.
Write a short poem about the ocean at night.
Explain how a transformer neural network works.
My email is li.wei@example.com - what is 12 + 9?
My card number is 4111 1111 1111 1111, is it safe to share?
PROMPTS
