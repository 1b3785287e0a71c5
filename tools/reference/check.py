"""Checks the reference forward against the exact logits of ../shared/reference: every model,
every weight type, every position (float64 against the float32-rounded answer; it must agree to
that rounding). New architectures' reference files are generated with this forward, so it has
to reproduce the existing ones first.
usage: check.py SHARED_DIR"""
import glob
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from forward import forward  # noqa: E402
from gguf_read import Reader  # noqa: E402


def main():
    ref = os.path.join(sys.argv[1], "reference")
    tokens = [int(t) for t in open(os.path.join(ref, "tokens.txt")).read().split()]
    files = sorted(glob.glob(os.path.join(ref, "*.gguf")))
    if not files:
        sys.exit(f"check.py: no reference models in {ref}")
    bad = 0
    for f in files:
        want = np.fromfile(f[:-len(".gguf")] + ".exact.f32", dtype="<f4").astype(np.float64)
        got = forward(Reader(f), tokens).reshape(-1)
        if got.shape != want.shape:
            print(f"FAIL {os.path.basename(f)}: {got.shape[0]} logits, the reference has {want.shape[0]}")
            bad += 1
            continue
        err = np.abs(got - want)
        worst = float((err / (1e-6 * np.abs(want) + 1e-6)).max())  # <= 1: within float32 rounding
        ok = worst <= 1
        bad += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {os.path.basename(f)}: max |diff| {err.max():.2e} (max |logit| {np.abs(want).max():.1f})")
    print(f"check.py: {len(files) - bad} of {len(files)} reference files reproduced")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
