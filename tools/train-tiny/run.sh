#!/usr/bin/env bash
# Reproduces models/hai-tiny.gguf from nothing but this repository: installs PyTorch (Debian
# packages), builds hai, trains (seeded; about 45 minutes on 2 cores), exports the GGUF with the
# project's own writer, and evaluates it with hai. Environment: OUT (working directory, default
# build/train-tiny), STEPS (default 3600), SEED (default 1), MODEL (default models/hai-tiny.gguf).
# Debian's PyTorch belongs to Debian's python, hence /usr/bin/python3.
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/install-deps.sh train
scripts/build.sh
out=${OUT:-build/train-tiny}
model=${MODEL:-models/hai-tiny.gguf}
/usr/bin/python3 tools/train-tiny/train.py --out "$out" --steps "${STEPS:-3600}" --seed "${SEED:-1}" --heldout 120
mkdir -p "$(dirname "$model")"
build/hai-export-tiny "$out" "$model" F16
cp "$out/heldout.jsonl" tools/train-tiny/heldout.jsonl
/usr/bin/python3 tools/train-tiny/eval.py --hai build/hai --model "$model" --heldout tools/train-tiny/heldout.jsonl \
  --json "$out/eval.json"
