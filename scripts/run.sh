#!/usr/bin/env bash
# The main job: set up, build, and run hai on a model the project generates itself.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
model=build/models/hai-synth-demo.gguf
if [ ! -f $model ]; then
  mkdir -p build/models
  ./build/hai synth -o $model --arch llama --type Q8_0 --n-embd 512 --n-layer 4 --n-head 8 --n-head-kv 4 --n-ff 1536
fi
./build/hai info $model
