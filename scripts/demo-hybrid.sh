#!/usr/bin/env bash
# The hybrid router, live: hai-tiny answers on the device; a second `hai serve` on loopback plays
# the cloud (any OpenAI-compatible endpoint would do). Easy prompts - the tasks hai-tiny knows -
# are answered locally; prompts it is unsure about (mean entropy of its first tokens above the
# threshold calibrated in models/hai-tiny.md) are escalated before anything is shown; personal
# data stays on the device or goes out redacted, as the policy says.
# Environment: MODEL (default models/hai-tiny.gguf), THRESHOLD (nats, default from the model
# card), SKIP_BUILD=1. The cloud: a real OpenAI-compatible endpoint when HAI_CLOUD_BASE_URL is set
# (HAI_CLOUD_MODEL its model, HAI_CLOUD_API_KEY_ENV the name of the variable holding its key,
# default OPENAI_API_KEY), e.g.
#   HAI_CLOUD_BASE_URL=https://api.openai.com/v1 HAI_CLOUD_MODEL=gpt-4o-mini scripts/demo-hybrid.sh
# Otherwise a local stand-in: another hai serve of CLOUD_MODEL (default: the same file as MODEL).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${SKIP_BUILD:-}" = 1 ] || { scripts/install-deps.sh && scripts/build.sh; }
model=${MODEL:-models/hai-tiny.gguf}
cloud_model=${CLOUD_MODEL:-$model}
threshold=${THRESHOLD:-0.439} # hai-tiny's calibrated threshold (models/hai-tiny.md)
hai=./build/hai
[ -f "$model" ] || { echo "demo-hybrid: $model not found (tools/train-tiny/run.sh makes it)" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# start_serve NAME ARGS...: a hai serve on a free loopback port; its URL in $url
start_serve() {
  local name=$1
  shift
  "$hai" serve --port 0 "$@" 2>"$work/$name.log" &
  pids+=($!)
  url=
  for _ in $(seq 1 100); do
    url=$(sed -n 's/.* on \(http:\/\/[0-9.]*:[0-9]*\).*/\1/p' "$work/$name.log" | head -1)
    [ -n "$url" ] && return 0
    kill -0 "${pids[-1]}" 2>/dev/null || break
    sleep 0.1
  done
  echo "demo-hybrid: the $name server did not start" >&2
  cat "$work/$name.log" >&2
  exit 1
}

if [ -n "${HAI_CLOUD_BASE_URL:-}" ]; then
  # a real cloud: what the router escalates gets a real answer
  [ -n "${HAI_CLOUD_MODEL:-}" ] || { echo "demo-hybrid: HAI_CLOUD_BASE_URL needs HAI_CLOUD_MODEL (the model to ask)" >&2; exit 1; }
  key_env=${HAI_CLOUD_API_KEY_ENV:-OPENAI_API_KEY}
  key_json=", \"api_key_env\": \"$key_env\""
  [ -n "${!key_env:-}" ] || { echo "demo-hybrid: note: \$$key_env is not set; the endpoint gets no API key" >&2; key_json=; }
  cloud_url=${HAI_CLOUD_BASE_URL%/}
  cloud_name=$HAI_CLOUD_MODEL
  cloud_what="$cloud_url (model $cloud_name)"
  stand_in=0
else
  # the "cloud": another hai serve, on loopback - a stand-in that knows no more than the device
  start_serve cloud -m "$cloud_model" -t 1 --parallel 1
  cloud_url=$url/v1
  cloud_name=cloud-model
  key_json=
  cloud_what="$url - a LOCAL STAND-IN (another hai serve of $cloud_model), not a real cloud model"
  stand_in=1
fi
cloud_json=$(printf '{"base_url": "%s", "model": "%s"%s, "rtt_ms": 300, "tokens_per_s": 80}' "$cloud_url" "$cloud_name" "$key_json")

cat > "$work/policy.json" <<JSON
{
  "cloud": $cloud_json,
  "privacy": {"email": "redact", "phone": "keep_local", "bank_card": "keep_local"},
  "cascade": {"enabled": true, "tokens": 16, "entropy_threshold": $threshold},
  "budget": {"daily_tokens": 100000}
}
JSON
echo "== hybrid demo: local $model; cloud $cloud_what; escalation above $threshold nats"
if [ "$stand_in" = 1 ]; then
  cat <<'NOTE'
   The cloud in this run is a stand-in on this machine: hai-tiny again. It shows where each
   request goes and why, but the answers to escalated prompts (the poem, the transformer) are no
   better than the device's - a real cloud model would answer them properly. To use one:
     HAI_CLOUD_BASE_URL=https://api.openai.com/v1 HAI_CLOUD_MODEL=gpt-4o-mini \
       OPENAI_API_KEY=sk-... scripts/demo-hybrid.sh
   (any OpenAI-compatible endpoint: a hosted API, a vLLM server, another hai serve)
NOTE
fi
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
My email is li.wei@example.com - draft a note to my landlord about the broken heating.
My card number is 4111 1111 1111 1111, is it safe to share?
PROMPTS

# Tool calls, as an app makes them: OpenAI's chat completions with the device's tools, sent to a
# hai serve with the same policy. hai-tiny calls the tools it knows on the device; a request for one
# it does not know (an alarm) leaves it unsure, and the router hands it to the cloud.
echo "== tool calls through hai serve --route-config (the same policy)"
start_serve device -m "$model" --route-config "$work/policy.json" -t 2 --parallel 1
node scripts/demo-tools.mjs "$url" tools/train-tiny/device_tools.json set_timer,convert_units,order_coffee,set_alarm \
  "Set a timer for 12 minutes for the pasta." \
  "Order a large oat latte with an extra shot." \
  "Wake me up at 6:30 tomorrow."
if [ "$stand_in" = 1 ]; then
  echo "(the cloud here is a stand-in that knows no more than hai-tiny: a real endpoint would answer the"
  echo " escalated request with its own set_alarm call, returned to the app in the same shape)"
fi
