"""Checks that `hai synth` writes each architecture as the converters lay it out and that hai runs
it exactly: for every architecture synth knows, a small model (quantized to Q8_0), hai's logits
(`hai logits`, all tokens in one batch and one at a time) against the float64 reference forward.
usage: check_synth.py HAI_BINARY WORK_DIR"""
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from forward import forward  # noqa: E402
from gguf_read import Reader  # noqa: E402

ARCHS = ["llama", "qwen2", "qwen3", "granite", "smollm3", "phi3", "gemma2", "gemma3", "qwen2moe", "qwen3moe"]
MAX_KL = 1e-6  # Q8_0 weights, computed exactly from them: hai's own rounding only


def kl(exact, got):
    p = np.exp(exact - exact.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    q = np.exp(got - got.max(1, keepdims=True))
    q /= q.sum(1, keepdims=True)
    return float((p * (np.log(p) - np.log(q))).sum(1).mean())


def main():
    hai, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    tokens = [(i * 37 + 5) % 250 + 3 for i in range(40)]
    tpath = os.path.join(work, "tokens.txt")
    with open(tpath, "w") as f:
        f.write(" ".join(map(str, tokens)))
    bad = 0
    for arch in ARCHS:
        model = os.path.join(work, f"synth-{arch}.gguf")
        subprocess.run([hai, "synth", "--arch", arch, "--n-layer", "4", "--type", "Q8_0", "--std", "0.05", "--seed", "7",
                        "-o", model], check=True, capture_output=True)
        exact = forward(Reader(model), tokens)
        for batch in ("40", "1"):
            out = os.path.join(work, f"synth-{arch}-{batch}.f32")
            subprocess.run([hai, "logits", "-m", model, "--tokens", tpath, "-o", out, "--batch", batch], check=True,
                           capture_output=True)
            got = np.fromfile(out, dtype="<f4").astype(np.float64).reshape(len(tokens), -1)
            d, top1 = kl(exact, got), float((exact.argmax(1) == got.argmax(1)).mean())
            ok = d <= MAX_KL and top1 == 1.0
            bad += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {arch:8s} batch {batch:>2s}: KL {d:.2e} (max {MAX_KL:g}), top1 {top1:.3f}", flush=True)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
