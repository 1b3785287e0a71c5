"""Checks hai's embeddings (`hai embed`) against the float64 reference: the final hidden states of
the reference forward (after the output norm) over a token sequence, pooled - mean, first token,
last token - and normalized; the cosine of hai's vector with it must be at least 0.9999, for
several architectures and weight types of ../shared/reference and sequences of several lengths
(one longer than a batch of the few-token kernels); each input alone, and the three together (one
`hai embed` call: hai_embed_batch, a sequence each in shared forward passes).
usage: check_embed.py HAI_BINARY SHARED_DIR"""
import json
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from forward import forward  # noqa: E402
from gguf_read import Reader  # noqa: E402

MODELS = ["llama-s-F16", "llama-s-Q8_0", "qwen2-s-Q4_0", "qwen3-s-F16"]
MIN_COSINE = 0.9999


def main():
    hai, shared = sys.argv[1], sys.argv[2]
    failed, worst = 0, 1.0
    for name in MODELS:
        path = os.path.join(shared, "reference", name + ".gguf")
        m = Reader(path)
        n_vocab = len(m.meta["tokenizer.ggml.tokens"])
        lengths = (1, 7, 45)
        seqs = {n: [(17 + 7919 * i) % (n_vocab - 3) + 3 for i in range(n)] for n in lengths}
        hidden = {n: forward(m, seqs[n], hidden=True) for n in lengths}
        for pooling in ("mean", "cls", "last"):
            want = {}
            for n, h in hidden.items():
                w = h.mean(0) if pooling == "mean" else h[0] if pooling == "cls" else h[-1]
                want[n] = w / np.linalg.norm(w)
            # each alone, then all together
            runs = [([n], f"n={n}") for n in lengths] + [(list(lengths), "batch " + "+".join(map(str, lengths)))]
            for ns, label in runs:
                args = [hai, "embed", "-m", path, "--pooling", pooling, "-t", "2"]
                for n in ns:
                    args += ["--ids", " ".join(map(str, seqs[n]))]
                r = subprocess.run(args, capture_output=True, text=True, timeout=120)
                lines = r.stdout.strip().split("\n") if r.returncode == 0 else []
                if r.returncode != 0 or len(lines) != len(ns):
                    print(f"FAIL {name} {label} {pooling}: hai embed exited {r.returncode} with {len(lines)} lines: {r.stderr.strip()}")
                    failed += 1
                    continue
                for n, line in zip(ns, lines):
                    got = np.array(json.loads(line)["embedding"], dtype=np.float64)
                    cos = float(got @ want[n] / np.linalg.norm(got))
                    worst = min(worst, cos)
                    ok = cos >= MIN_COSINE and abs(np.linalg.norm(got) - 1) < 1e-5
                    failed += not ok
                    print(f"{'ok  ' if ok else 'FAIL'} {name} {label} (n={n}) {pooling}: cosine {cos:.8f}")
    print(f"check_embed: worst cosine {worst:.8f} (at least {MIN_COSINE}), {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
