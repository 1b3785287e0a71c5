#!/usr/bin/env bash
# Every test: set up, build, run the ctest suite (Release), again under ASan+UBSan, then fuzz
# each parser for a bounded time (HAI_FUZZ_SECONDS, default 60).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
scripts/install-deps.sh
shared=${HAI_SHARED_DIR:-$(cd .. && pwd)/shared}
[ -f "$shared/reference/summary.json" ] || { echo "test: shared test data not found at $shared" >&2; exit 1; }

scripts/fetch-hf-tokenizers.sh "$PWD/build/hf-tokenizers"
(cd tests/node && npm ci --silent --no-audit --no-fund)

echo "== release build + tests"
scripts/build.sh
ctest --test-dir build --output-on-failure -j2

echo "== AArch64 (NEON) build, tests under qemu"
scripts/test-arm.sh

echo "== ASan + UBSan build + tests"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DHAI_SANITIZE=ON -DHAI_WERROR=ON \
  -DHAI_SHARED_DIR="$shared" -DHAI_HF_DIR="$PWD/build/hf-tokenizers" >/dev/null
cmake --build build-asan -- --quiet
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j2

echo "== fuzzing"
scripts/fuzz.sh "${HAI_FUZZ_SECONDS:-60}"
echo "== all tests passed in $((SECONDS - start))s"
