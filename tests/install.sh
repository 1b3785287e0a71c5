#!/bin/sh
# The installed package works for an app: `cmake --install` into a temporary prefix, then
# examples/generate.c built from there with pkg-config alone (shared library: its soname
# recorded, found at run time) and run on a reference model; and again through CMake's
# find_package(hai). usage: install.sh BUILD_DIR SOURCE_DIR SHARED_DIR
set -eu
build=$(cd "$1" && pwd) src=$(cd "$2" && pwd) shared=$(cd "$3" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
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
echo "install: pkg-config (shared) and find_package (static) apps built and run: '$(cat "$tmp/out.txt")'"
