#!/usr/bin/env bash
# The ARM path, proven on this x86 machine: libhai and its C tests cross-compiled for AArch64
# (gcc-aarch64-linux-gnu, NEON kernels and their dotprod and i8mm matrix paths), then the kernel tests and the reference-logits tests
# run under qemu-aarch64 (-cpu max). Speed cannot be measured this way; correctness can.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh arm
shared=${HAI_SHARED_DIR:-$(cd .. && pwd)/shared}
cmake -S . -B build-arm -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake -DCMAKE_BUILD_TYPE=Release \
  -DHAI_CORE_ONLY=ON -DHAI_WERROR=ON -DHAI_SHARED_DIR="$shared" >/dev/null
cmake --build build-arm --target test_kernels test_reference test_quant -- --quiet
run() { HAI_TEST_THREADS=1 qemu-aarch64 -L /usr/aarch64-linux-gnu -cpu max "$@"; } # emulated threads only spin
run build-arm/tests/test_kernels
run build-arm/tests/test_quant "$shared"
# every model and type, in the three paths (batch, token by token, chunks), on what the CPU has
# (qemu's max: i8mm, whose prefill tiles use smmla and decode the dotprod rows), then on the dotprod
# table (sdot for prefill too), then the batch path on plain NEON
run build-arm/tests/test_reference "$shared"
HAI_KERNELS=neon-dotprod run build-arm/tests/test_reference "$shared"
HAI_KERNELS=neon run build-arm/tests/test_reference "$shared" --paths all
# the generated reference cases (RoPE scalings, granite, smollm3, phi3, gemma, MoE; with the x86 hai
# of scripts/build.sh, also those it quantizes): batch on i8mm, decode on dotprod
hai_x86=()
[ -x build/hai ] && hai_x86=(build/hai)
/usr/bin/python3 tools/reference/make.py "$shared" build-arm/ref-gen "${hai_x86[@]}" >/dev/null
run build-arm/tests/test_reference build-arm/ref-gen --paths all
HAI_KERNELS=neon-dotprod run build-arm/tests/test_reference build-arm/ref-gen --paths one-by-one
echo "test-arm: the AArch64 build passes its kernel, block-format and reference-logits tests under qemu"
