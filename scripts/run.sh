#!/usr/bin/env bash
# The main job: set up, build, and run hai on hai-tiny (the project's own model, models/): a few
# chat prompts answered and streamed on this device with timing, then the hybrid router live -
# easy prompts answered locally, hard ones escalated to a "cloud" (a second hai serve on
# loopback), personal data kept on the device - each answer saying where it came from and why.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
model=models/hai-tiny.gguf
./build/hai info "$model" | sed -n '1,6p'
echo
for prompt in "What is 23 + 19?" "What is the capital of Kenya?" "How many letters are in the word 'computer'?"; do
  echo "> $prompt"
  ./build/hai run -m "$model" --chat -p "$prompt" -n 48 --temp 0 -t 2
  echo
done
SKIP_BUILD=1 scripts/demo-hybrid.sh
