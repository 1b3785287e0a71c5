#!/usr/bin/env bash
# Tokenizer throughput (MB/s) on 1-2 MB of mixed English/Chinese/code text and on pathological
# inputs, for SentencePiece and BPE vocabularies. usage: bench/tokenizer.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/fetch-hf-tokenizers.sh "$PWD/build/hf-tokenizers"
scripts/build.sh
./build/bench_tokenizer "${HAI_SHARED_DIR:-$(cd .. && pwd)/shared}" "$PWD/build/hf-tokenizers"
