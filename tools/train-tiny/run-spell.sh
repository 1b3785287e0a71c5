#!/usr/bin/env bash
# Reproduces models/hai-spell.gguf (models/hai-spell.md): hai-tiny's architecture trained on the
# spelling task of spelling.py (correct a paragraph's typos: the answer copies most of the input),
# exported with the project's GGUF writer and evaluated with hai on the held-out paragraphs.
# Environment: OUT (build/train-spelling), STEPS (1400), SEED (1), THREADS (2).
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/install-deps.sh train
scripts/build.sh
out=${OUT:-build/train-spelling}
/usr/bin/python3 tools/train-tiny/train.py --task spelling --out "$out" --steps "${STEPS:-1400}" --batch 16 --seq 256 \
  --seed "${SEED:-1}" --threads "${THREADS:-2}" --heldout 29
build/hai-export-tiny "$out" models/hai-spell.gguf F16
cp "$out/heldout.jsonl" tools/train-tiny/spelling-heldout.jsonl
(cd tools/train-tiny && /usr/bin/python3 eval_spelling.py --hai ../../build/hai --model ../../models/hai-spell.gguf \
  --heldout spelling-heldout.jsonl)
