#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (+ASan/UBSan) and runs each for a bounded time.
# usage: scripts/fuzz.sh [SECONDS per target, default 60]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shared=${HAI_SHARED_DIR:-$(cd .. && pwd)/shared}
build=build-fuzz
CC=clang cmake -S . -B $build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHAI_FUZZ=ON -DHAI_SANITIZE=ON \
  -DHAI_TESTS=ON -DHAI_WERROR=ON -DHAI_SHARED_DIR="$shared" >/dev/null
cmake --build $build --target fuzz_gguf test_gguf_bad -- --quiet

# seeds: real files from ../shared plus the bad-file corpus the tests generate
corpus=$build/corpus/gguf
mkdir -p $corpus
$build/tests/test_gguf_bad --save $build/corpus/gguf-bad >/dev/null 2>&1
cp -n "$shared"/reference/*.gguf "$shared"/vocab/*.gguf $build/corpus/gguf-bad/*.gguf tests/corpus/gguf/* $corpus/ 2>/dev/null || true

echo "fuzz: fuzz_gguf for ${secs}s"
$build/fuzz/fuzz_gguf $corpus -max_total_time="$secs" -max_len=1048576 -rss_limit_mb=2048 \
  -print_final_stats=1 -artifact_prefix=$build/ 2>$build/fuzz_gguf.log || { tail -50 $build/fuzz_gguf.log; echo "fuzz: fuzz_gguf FAILED"; exit 1; }
grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" $build/fuzz_gguf.log | tr '\n' ' '; echo
echo "fuzz: ok"
