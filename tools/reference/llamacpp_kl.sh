#!/usr/bin/env bash
# llama.cpp's distance from the exact logits on the derived reference cases, beside hai's: builds
# tools/reference/llamacpp_logits.cpp against a llama.cpp checkout built outside this project
# (LLAMA_CPP: its source directory, with libllama built in LLAMA_CPP/build or LLAMA_CPP_BUILD),
# runs it on every case
# of DIR/reference (make.py's output; default build/ref-gen) and writes
# tools/reference/llamacpp_kl.json: per file, KL(exact || llama.cpp) and top-1 agreement, or why
# llama.cpp could not run it (an architecture it does not know). make.py puts these figures in the
# cases' summary, so test_reference prints them beside hai's.
# usage: LLAMA_CPP=/path/to/llama.cpp tools/reference/llamacpp_kl.sh [DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${LLAMA_CPP:?set LLAMA_CPP to a llama.cpp source directory with libllama built in its build/}"
dir=${1:-build/ref-gen}/reference
bin=build/llamacpp_logits
lib=$(dirname "$(find "$LLAMA_CPP/${LLAMA_CPP_BUILD:-build}" -name 'libllama.so' | head -1)")
g++ -O2 -std=c++17 -I"$LLAMA_CPP/include" -I"$LLAMA_CPP/ggml/include" tools/reference/llamacpp_logits.cpp \
  -L"$lib" -lllama -lggml -lggml-base -Wl,-rpath,"$lib" -o "$bin"
version=$(git -C "$LLAMA_CPP" log -1 --format='%h %cs' 2>/dev/null || echo unknown)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for f in "$dir"/*.gguf; do
  name=$(basename "$f" .gguf)
  if "$bin" "$f" "$dir/tokens.txt" "$tmp/$name.f32" 2 2> "$tmp/$name.err"; then
    echo "ran $name" >&2
  else
    echo "llama.cpp refused $name: $(grep -v '^$' "$tmp/$name.err" | grep -m1 -E 'error|failed|abort' || tail -1 "$tmp/$name.err")" >&2
  fi
done
/usr/bin/python3 - "$dir" "$tmp" "$version" > tools/reference/llamacpp_kl.json <<'EOF'
import json, os, sys
import numpy as np
d, tmp, version = sys.argv[1:]
out = {"llama.cpp": version, "cases": {}}
for e in json.load(open(os.path.join(d, "summary.json"))):
    name = e["file"][:-len(".gguf")]
    got = os.path.join(tmp, name + ".f32")
    if not os.path.exists(got):
        lines = [l for l in open(os.path.join(tmp, name + ".err")).read().splitlines() if "error" in l or "failed" in l or "abort" in l.lower()]
        out["cases"][e["file"]] = {"error": lines[0].strip() if lines else "failed"}
        continue
    x = np.fromfile(os.path.join(d, name + ".exact.f32"), dtype="<f4").astype(np.float64).reshape(e["n_tokens"], -1)
    y = np.fromfile(got, dtype="<f4").astype(np.float64).reshape(e["n_tokens"], -1)
    lp = x - x.max(1, keepdims=True); lp -= np.log(np.exp(lp).sum(1, keepdims=True))
    lq = y - y.max(1, keepdims=True); lq -= np.log(np.exp(lq).sum(1, keepdims=True))
    kl = float((np.exp(lp) * (lp - lq)).sum(1).mean())
    top1 = float((x.argmax(1) == y.argmax(1)).mean())
    out["cases"][e["file"]] = {"kl": float(f"{kl:.3g}"), "top1": top1}
json.dump(out, sys.stdout, indent=1)
print()
EOF
echo "wrote tools/reference/llamacpp_kl.json (llama.cpp $version)" >&2
