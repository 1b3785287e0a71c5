#!/bin/sh
# The installed package works for an app: `cmake --install` into a temporary prefix, then
# examples/generate.c built from there with pkg-config alone (shared library: its soname
# recorded, found at run time) and run on a reference model; and again through CMake's
# find_package(hai). Then the hybrid router from an app's code: examples/hybrid.c built with
# pkg-config hai-hybrid, routing to a `hai serve` standing in for the cloud, keeping personal data
# on the device, and falling back to it when the cloud is down. And the shared libraries export
# their public headers' functions and nothing else.
# usage: install.sh BUILD_DIR SOURCE_DIR SHARED_DIR HAI
set -eu
build=$(cd "$1" && pwd) src=$(cd "$2" && pwd) shared=$(cd "$3" && pwd) hai=$4
tmp=$(mktemp -d)
srv=
trap '[ -n "$srv" ] && kill $srv 2>/dev/null; rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" > "$tmp/install.log"
pc=$(find "$tmp/prefix" -name hai.pc)
[ -n "$pc" ] || { echo "FAIL: no hai.pc installed"; cat "$tmp/install.log"; exit 1; }
libdir=$(dirname "$(dirname "$pc")")
export PKG_CONFIG_PATH="$(dirname "$pc")"
[ "$(pkg-config --modversion hai)" = "$(sed -n 's/^#define HAI_VERSION_STRING "\(.*\)"/\1/p' "$src/include/hai.h")" ] ||
  { echo "FAIL: pkg-config says $(pkg-config --modversion hai)"; exit 1; }
cc -o "$tmp/generate" "$src/examples/generate.c" $(pkg-config --cflags --libs hai)
readelf -d "$tmp/generate" | grep -q 'NEEDED.*libhai\.so\.0' || { echo "FAIL: not linked against libhai.so.0"; exit 1; }
LD_LIBRARY_PATH="$libdir" "$tmp/generate" "$shared/reference/llama-s-Q8_0.gguf" "Once upon a time" 8 > "$tmp/out.txt" 2> "$tmp/err.txt" ||
  { echo "FAIL: the example failed"; cat "$tmp/err.txt"; exit 1; }
grep -q '8 tokens generated' "$tmp/err.txt" || { echo "FAIL: unexpected output"; cat "$tmp/err.txt"; exit 1; }
# CMake: find_package(hai) and the static library
mkdir -p "$tmp/app"
cat > "$tmp/app/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.20)
project(app C)
find_package(hai 0.1 REQUIRED)
add_executable(generate $src/examples/generate.c)
target_link_libraries(generate PRIVATE hai::hai)
CM
cmake -S "$tmp/app" -B "$tmp/app/build" -DCMAKE_PREFIX_PATH="$tmp/prefix" > "$tmp/cmake.log" 2>&1 || { cat "$tmp/cmake.log"; exit 1; }
cmake --build "$tmp/app/build" > "$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; exit 1; }
! readelf -d "$tmp/app/build/generate" | grep -q 'NEEDED.*libhai' || { echo "FAIL: hai::hai is not the static library"; exit 1; }
"$tmp/app/build/generate" "$shared/reference/llama-s-Q8_0.gguf" "Once upon a time" 8 > "$tmp/out2.txt" 2> "$tmp/err2.txt" ||
  { echo "FAIL: the CMake-built example failed"; cat "$tmp/err2.txt"; exit 1; }
cmp -s "$tmp/out.txt" "$tmp/out2.txt" || { echo "FAIL: the two builds printed different text"; exit 1; }

# what the shared libraries export: exactly the functions their headers declare
for pair in libhai.so:hai.h libhai_hybrid.so:hai_hybrid.h,hai_pull.h; do
  lib=${pair%%:*} hdrs=${pair#*:}
  nm -D --defined-only "$libdir/$lib" | awk '{print $3}' | sort > "$tmp/exported"
  for hdr in $(echo "$hdrs" | tr , " "); do sed 's|/\*.*\*/||' "$tmp/prefix/include/$hdr"; done | grep -o 'hai_[a-z0-9_]*(' | tr -d '(' | sort -u > "$tmp/declared"
  extra=$(comm -23 "$tmp/exported" "$tmp/declared")
  [ -z "$extra" ] || { echo "FAIL: $lib exports what $hdrs does not declare: $extra"; exit 1; }
  [ "$(wc -l < "$tmp/exported")" -ge 10 ] || { echo "FAIL: $lib exports $(wc -l < "$tmp/exported") functions"; exit 1; }
done

# the hybrid router from an app: pkg-config hai-hybrid
cc -o "$tmp/hybrid" "$src/examples/hybrid.c" $(pkg-config --cflags --libs hai-hybrid)
readelf -d "$tmp/hybrid" | grep -q 'NEEDED.*libhai_hybrid\.so\.0' || { echo "FAIL: not linked against libhai_hybrid.so.0"; exit 1; }
model=$shared/reference/qwen2-s-Q8_0.gguf
"$hai" serve -m "$model" --port 0 --parallel 1 -t 1 2> "$tmp/serve.log" &
srv=$!
port=
for _ in $(seq 100); do
  port=$(sed -n 's|.* on http://127\.0\.0\.1:\([0-9]*\) .*|\1|p' "$tmp/serve.log")
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { echo "FAIL: the stand-in cloud did not start"; cat "$tmp/serve.log"; exit 1; }
printf '{"cloud": {"base_url": "http://127.0.0.1:%s/v1", "model": "big"}, "prefer": "cloud"}' "$port" > "$tmp/cloud.json"
printf '{"cloud": {"base_url": "http://127.0.0.1:9/v1", "model": "big", "max_retries": 0}, "prefer": "cloud"}' > "$tmp/down.json"
route() { # route POLICY QUESTION -> stderr of the example in $tmp/route.txt
  LD_LIBRARY_PATH="$libdir" "$tmp/hybrid" "$model" "$1" "$2" 8 > "$tmp/answer.txt" 2> "$tmp/route.txt" ||
    { echo "FAIL: the hybrid example failed on '$2'"; cat "$tmp/route.txt"; exit 1; }
}
expect() { grep -qE "$1" "$tmp/route.txt" || { echo "FAIL: /$1/ not in:"; cat "$tmp/route.txt"; exit 1; }; }
route "$tmp/cloud.json" "What is the capital of France?"
expect '^decision: cloud \(DEFAULT\)'
expect '^answered by: cloud \(DEFAULT\); [1-9][0-9]* tokens'
route "$tmp/cloud.json" "Please mail li.wei@example.com the plan"
expect '^decision: local \(PRIVACY_KEEP_LOCAL\)'
expect '^answered by: local \(PRIVACY_KEEP_LOCAL\); 8 tokens'
route "$tmp/down.json" "What is the capital of France?"
expect '^decision: cloud \(DEFAULT\)'
expect '^answered by: local \(CLOUD_ERROR\); 8 tokens in .*; cloud error: cloud: '
route - "What is the capital of France?"
expect '^answered by: local \(DEFAULT\); 8 tokens'
echo "install: pkg-config (shared) and find_package (static) apps built and run: '$(cat "$tmp/out.txt")'; the hybrid example routed to the cloud, kept an e-mail address on the device and fell back when the cloud was down"
