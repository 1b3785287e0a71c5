#!/usr/bin/env bash
# Installs what hai needs to build and test, from Debian packages. Idempotent: when everything
# is present it prints nothing and touches nothing.
set -euo pipefail

pkgs=(
  cmake ninja-build pkg-config make gcc   # build
  libpcre2-dev                            # tokenizer pre-tokenizer regexes
  libutf8proc-dev                         # tokenizer.json normalizers (NFC, NFKC)
  libcurl4-openssl-dev libssl-dev        # cloud client; model downloads (SHA-256: libcrypto)
  libmicrohttpd-dev libcjson-dev          # server
  clang libclang-rt-14-dev                # libFuzzer, sanitizers
  python3 python3-numpy                   # the float64 reference forward (tools/reference)
  chromium fonts-dejavu-core              # the chat page's test in a real browser (tests/node/chat_page)
)
# `install-deps.sh train`: also what tools/train-tiny needs (PyTorch from Debian, with OpenBLAS:
# Debian's torch otherwise calls the reference BLAS, about 10x slower)
if [ "${1:-}" = train ]; then
  pkgs+=(python3-torch python3-regex libopenblas0-pthread)
fi
# `install-deps.sh arm`: also the AArch64 cross compiler, qemu and the arm64 libraries the core
# needs (scripts/test-arm.sh); arm64 is added to dpkg's architectures first
if [ "${1:-}" = arm ]; then
  pkgs+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user libpcre2-dev:arm64 libcjson-dev:arm64 libutf8proc-dev:arm64)
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    sudo_=""
    [ "$(id -u)" -ne 0 ] && sudo_="sudo"
    $sudo_ dpkg --add-architecture arm64
  fi
fi
# Node.js and npm (end-to-end tests with the OpenAI SDK): a machine may already have them from
# another source (NodeSource's nodejs bundles npm and conflicts with Debian's npm package).
command -v node >/dev/null || pkgs+=(nodejs)
command -v npm >/dev/null || pkgs+=(npm)

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
if ! { $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
  cat "$log" >&2
  rm -f "$log"
  echo "install-deps: apt-get failed" >&2
  exit 1
fi
rm -f "$log"
