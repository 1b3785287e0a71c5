"""Checks that `hai synth` writes each architecture as the converters lay it out and that hai runs
it exactly: for every architecture synth knows, a small model (quantized to Q8_0), hai's logits
(`hai logits`, all tokens in one batch and one at a time) against the float64 reference forward;
then the model through what users run: `hai run` generates, `hai serve` answers a completion.
usage: check_synth.py HAI_BINARY WORK_DIR"""
import json
import os
import re
import subprocess
import sys
import urllib.request

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


def runs(hai, model):
    """hai run generates (up to 8 tokens: a random model may draw its end token); hai serve (any free
    port) answers /v1/completions with the same tokens, greedy both."""
    r = subprocess.run([hai, "run", "-m", model, "-p", "Hello", "-n", "8", "--temp", "0"], capture_output=True, text=True, timeout=120)
    got = re.search(r"generated (\d+) tok", r.stderr)
    if r.returncode != 0 or not got or not 1 <= int(got.group(1)) <= 8:
        return f"hai run: exit {r.returncode}, {r.stderr.strip()[-200:]}"
    srv = subprocess.Popen([hai, "serve", "-m", model, "--port", "0", "--parallel", "1"], stderr=subprocess.PIPE, text=True)
    try:
        port = None
        for line in srv.stderr:  # "hai serve: MODEL on http://127.0.0.1:PORT  (..."
            m = re.search(r"http://127\.0\.0\.1:(\d+)", line)
            if m:
                port = m.group(1)
                break
        if not port:
            return "hai serve: no address printed"
        body = json.dumps({"prompt": "Hello", "max_tokens": 8, "temperature": 0}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/completions", body, {"Content-Type": "application/json"})
        out = json.load(urllib.request.urlopen(req, timeout=60))
        if out["usage"]["completion_tokens"] != int(got.group(1)):
            return f"hai serve: {out['usage']}, hai run generated {got.group(1)}"
        return None
    finally:
        srv.terminate()
        srv.wait(timeout=30)


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
        why = runs(hai, model)
        bad += why is not None
        print(f"{'ok  ' if why is None else 'FAIL'} {arch:8s} hai run and hai serve{': ' + why if why else ''}", flush=True)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
