#!/usr/bin/env bash
# Configures and builds hai (Release) into build/; prints nothing when all is up to date.
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${HAI_SHARED_DIR:-$(cd .. && pwd)/shared}
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DHAI_WERROR=ON -DHAI_SHARED_DIR="$shared" >/dev/null
cmake --build build -- --quiet
