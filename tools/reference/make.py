"""Generates reference cases beyond ../shared/reference, in its layout (OUT/reference/: models,
tokens.txt, <model>.exact.f32, summary.json), so that test_reference checks hai on them as on
the shared ones: `test_reference OUT`.
Cases: the shared models with each RoPE scaling a GGUF can ask for (YaRN with default and with
explicit betas and attention factor, linear, llama3's factors) on each architecture, and as other architectures
of the same layout (granite: llama with multipliers; smollm3: llama without RoPE in every
fourth layer, on eight and five layers copied from the shared model's two; phi3: Q, K, V and
gate, up fused, NeoX RoPE with LongRoPE factors, partial rotary; gemma2 and gemma3 with norms
after attention and FFN added). The exact logits come from the
float64 forward of this directory; the bars (max_kl, min_top1) are those of the model the case
derives from, so hai must be as exact with the scaling as without it.
Then, with the hai binary given, derived F16 cases quantized by `hai quantize` to the types the
shared set lacks or that a family should be seen in (BF16, Q5_K_M, Q6_K), their exact logits from
the quantized file; the bars those of the shared model of the nearest type.
usage: make.py SHARED_DIR OUT [HAI]"""
import json
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from forward import forward  # noqa: E402
from gguf_read import TYPES, Reader, write_with_meta  # noqa: E402

def post_norms(n_layer, n_embd=256):
    """Gemma's norms after attention and after the FFN: weights around 1 (the converter adds
    Gemma's 1 to them), different in every layer."""
    i = np.arange(n_embd)
    return {f"blk.{L}.{n}.weight": 1 + 0.3 * np.sin(0.37 * i + 1.3 * L + k) for L in range(n_layer)
            for k, n in enumerate(("post_attention_norm", "post_ffw_norm"))}


def moe_tensors(src, n_layer, n_expert, used, shared, width, seed):
    """A mixture-of-experts layout (qwen2moe / qwen3moe as the converters write it) made from a
    dense model's FFNs: expert e of layer L is the FFN of the source's block L % n with the rows of
    its gate, up and down projections in orders of their own (rows of a quantized tensor move
    whole, so every expert is a different function in the file's own types). With a width smaller
    than the FFN's (float types only) each expert keeps a subset of the hidden units. A router of
    random rows (logits of a few units), the dense FFN kept as the shared expert with a random
    gate vector, or dropped. Returns (renames, raw tensors, extra tensors, metadata)."""
    r = Reader(src)
    rng = np.random.default_rng(seed)
    n0, E = r.get("block_count"), r.get("embedding_length")
    rename, raw, extra = {}, {}, {}
    F = r.get("feed_forward_length")
    X = width or F
    for L in range(n_layer):
        s = L % n0
        parts = {}
        for kind in ("gate", "up", "down"):
            dims, t, off = r.tensors[f"blk.{s}.ffn_{kind}.weight"]
            be, bb = TYPES[t][1], TYPES[t][2]
            rb = dims[0] // be * bb
            rows = np.frombuffer(r.buf, np.uint8, dims[1] * rb, off).reshape(dims[1], rb)
            parts[kind] = (dims, t, rows, bb // be if be == 1 else 0)
        blobs = {k: [] for k in parts}
        for e in range(n_expert):
            keep = np.sort(rng.permutation(F)[:X])  # the expert's hidden units
            for kind, (dims, t, rows, esize) in parts.items():
                if kind == "down":
                    m = rows[rng.permutation(dims[1])]
                    if X != F:  # columns of a float type: element by element
                        m = m.reshape(dims[1], F, esize)[:, keep].reshape(dims[1], X * esize)
                else:
                    m = rows[keep[rng.permutation(X)]]
                blobs[kind].append(m.tobytes())
        for kind, (dims, t, rows, esize) in parts.items():
            d = [X, dims[1], n_expert] if kind == "down" else [dims[0], X, n_expert]
            raw[f"blk.{L}.ffn_{kind}_exps.weight"] = (d, t, b"".join(blobs[kind]))
            rename[f"blk.{L}.ffn_{kind}.weight"] = f"blk.{L}.ffn_{kind}_shexp.weight" if shared else None
        extra[f"blk.{L}.ffn_gate_inp.weight"] = rng.standard_normal((n_expert, E)) * (2.5 / np.sqrt(E))
        if shared:
            extra[f"blk.{L}.ffn_gate_inp_shexp.weight"] = rng.standard_normal(E) * (1.5 / np.sqrt(E))
    if "output.weight" not in r.tensors:  # Qwen's MoE models are untied: the embeddings again, as their own output
        dims, t, off = r.tensors["token_embd.weight"]
        raw["output.weight"] = (dims, t, r.buf[off:off + dims[1] * (dims[0] // TYPES[t][1] * TYPES[t][2])])
    meta = {"expert_count": n_expert, "expert_used_count": used, "expert_feed_forward_length": X}
    if shared:
        meta["expert_shared_feed_forward_length"] = F
    return rename, raw, extra, meta


PHI3_FUSE = [("attn_qkv.weight", ["attn_q.weight", "attn_k.weight", "attn_v.weight"]), ("ffn_up.weight", ["ffn_gate.weight", "ffn_up.weight"])]
# (new file, the shared file it derives from, metadata set on it (the architecture's prefix added)
#  [, the architecture it becomes, its number of layers, tensors fused, tensors added])
CASES = [
    ("llama-s-yarn-F16.gguf", "llama-s-F16.gguf",
     {"rope.scaling.type": "yarn", "rope.scaling.factor": 4.0, "rope.scaling.original_context_length": 32}),
    ("qwen2-s-yarn-Q8_0.gguf", "qwen2-s-Q8_0.gguf",
     {"rope.scaling.type": "yarn", "rope.scaling.factor": 8.0, "rope.scaling.original_context_length": 16,
      "rope.scaling.yarn_beta_fast": 24.0, "rope.scaling.yarn_beta_slow": 2.0}),
    ("qwen3-s-yarn-Q4_K_M.gguf", "qwen3-s-Q4_K_M.gguf",
     {"rope.scaling.type": "yarn", "rope.scaling.factor": 2.5, "rope.scaling.original_context_length": 40,
      "rope.scaling.attn_factor": 0.9}),
    ("qwen3-s-linear-F16.gguf", "qwen3-s-F16.gguf", {"rope.scaling.type": "linear", "rope.scaling.factor": 2.0}),
    ("llama-s-linear-Q4_0.gguf", "llama-s-Q4_0.gguf", {"rope.scaling.type": "linear", "rope.scaling.factor": 3.0}),
    # llama3's frequency divisors (rope_freqs.weight, Llama 3.1's shape: 1 for high frequencies to 8 for low) on qwen2;
    # as the converter writes Llama 3.1: the tensor alone, no scaling type
    ("qwen2-s-llama3-F16.gguf", "qwen2-s-F16.gguf", {}, None, None, None,
     {"rope_freqs.weight": np.clip(1 + (np.arange(32) - 10) / 3, 1, 8)}),
    # granite: llama's layout with multipliers on the embeddings, the residual additions, the
    # attention scores and the logits (Granite 3's values)
    ("granite-s-F16.gguf", "llama-s-F16.gguf",
     {"embedding_scale": 12.0, "residual_scale": 0.22, "attention.scale": 0.0078125, "logit_scale": 8.0}, "granite"),
    ("granite-s-Q4_K_M.gguf", "llama-s-Q4_K_M.gguf",
     {"embedding_scale": 6.0, "residual_scale": 0.5, "attention.scale": 0.03125, "logit_scale": 4.0,
      "rope.scaling.type": "yarn", "rope.scaling.factor": 2.0, "rope.scaling.original_context_length": 32}, "granite"),
    # smollm3: llama's layout, every fourth layer without RoPE (eight layers: the shared model's two, repeated)
    ("smollm3-s-F16.gguf", "llama-s-F16.gguf", {}, "smollm3", 8),
    ("smollm3-s-Q8_0.gguf", "llama-s-Q8_0.gguf", {"rope.freq_base": 2000000.0}, "smollm3", 5),
    # phi3: fused QKV and gate/up, NeoX RoPE with LongRoPE factors: the long ones (the tests'
    # context of 64 is longer than the original 16, the attention factor the converter writes:
    # sqrt(1 + ln(256/16) / ln 16)) and every layer
    # attending to a sliding window (as Phi-3-mini-4k's 2047 of 4096: 11); the short ones with
    # partial rotary (48 of 64 dims, as Phi-4-mini) and an explicit attention factor
    ("phi3-s-F16.gguf", "llama-s-F16.gguf", {"rope.scaling.original_context_length": 16, "context_length": 256, "attention.sliding_window": 11,
                                            "rope.scaling.attn_factor": float(np.sqrt(1 + np.log(256 / 16) / np.log(16)))},
     "phi3", None, PHI3_FUSE, {"rope_factors_long.weight": 1 + np.arange(32) ** 1.5 / 20, "rope_factors_short.weight": 1 + np.arange(32) / 64}),
    # gemma2: GeGLU, norms after attention and FFN, embeddings times sqrt(n_embd), sliding window
    # on every other layer (8 of 64 tokens), attention and final logit soft-capping (small caps
    # that bind on these scores; Gemma 2's own 50 and 30 on the Q8_0 one)
    ("gemma2-s-F16.gguf", "llama-s-F16.gguf",
     {"attention.sliding_window": 8, "attn_logit_softcapping": 1.5, "final_logit_softcapping": 10.0}, "gemma2", 6, None, post_norms(6)),
    ("gemma2-s-Q8_0.gguf", "llama-s-Q8_0.gguf",
     {"attention.sliding_window": 12, "attn_logit_softcapping": 50.0, "final_logit_softcapping": 30.0}, "gemma2", 4, None, post_norms(4)),
    # gemma3: q/k norms, five sliding layers to one global, the sliding ones with RoPE base 10000
    # and the global ones with the file's base and scaling (linear 8, as Gemma 3 4B+); and a period
    # from the metadata
    ("gemma3-s-Q8_0.gguf", "qwen3-s-Q8_0.gguf",
     {"attention.sliding_window": 12, "rope.freq_base": 1000000.0, "rope.scaling.type": "linear", "rope.scaling.factor": 8.0},
     "gemma3", 7, None, post_norms(7)),
    ("gemma3-s-F16.gguf", "qwen3-s-F16.gguf", {"attention.sliding_window": 20, "attention.sliding_window_pattern": 3},
     "gemma3", 6, None, post_norms(6)),
    ("phi3-s-Q4_0.gguf", "llama-s-Q4_0.gguf",
     {"rope.scaling.original_context_length": 4096, "context_length": 131072, "rope.dimension_count": 48, "rope.scaling.attn_factor": 1.19,
      "attention.sliding_window": 262144},  # Phi-3.5/4-mini's window: past any context
     "phi3", 3, PHI3_FUSE, {"rope_factors_long.weight": 2 + np.arange(24) / 3, "rope_factors_short.weight": 1 + np.sin(np.arange(24)) ** 2}),
    # mixture of experts (last: experts, used a token, a shared expert, the experts' width
    # (None: the FFN's), seed): qwen2moe with qwen2's biases, a shared expert and the top-2
    # weights as they are; qwen3moe with q/k norms and the chosen renormalised; one with the
    # renormalisation switched by the file and a single expert a token
    ("qwen2moe-s-F16.gguf", "qwen2-s-F16.gguf", {}, "qwen2moe", 3, None, None,
     (8, 2, True, 96, 11)),
    ("qwen2moe-s-Q4_0.gguf", "qwen2-s-Q4_0.gguf", {}, "qwen2moe", None, None, None,
     (6, 3, True, None, 12)),
    ("qwen3moe-s-Q8_0.gguf", "qwen3-s-Q8_0.gguf", {}, "qwen3moe", 3, None, None,
     (8, 3, False, None, 13)),
    ("qwen3moe-s-Q4_K_M.gguf", "qwen3-s-Q4_K_M.gguf", {}, "qwen3moe", None, None, None,
     (16, 4, False, None, 14)),
    ("qwen3moe-s-F16.gguf", "qwen3-s-F16.gguf", {"expert_weights_norm": False},
     "qwen3moe", 4, None, None, (5, 1, False, 64, 15)),
]


# (new file, the derived case it quantizes, the type, the shared file whose bars apply)
QUANTIZED = [
    ("gemma3-s-BF16.gguf", "gemma3-s-F16.gguf", "BF16", "qwen3-s-F16.gguf"),
    ("qwen2moe-s-BF16.gguf", "qwen2moe-s-F16.gguf", "BF16", "qwen2-s-F16.gguf"),
    ("granite-s-BF16.gguf", "granite-s-F16.gguf", "BF16", "llama-s-F16.gguf"),
    ("phi3-s-Q5_K_M.gguf", "phi3-s-F16.gguf", "Q5_K_M", "llama-s-Q4_K_M.gguf"),
    ("gemma2-s-Q5_K_M.gguf", "gemma2-s-F16.gguf", "Q5_K_M", "llama-s-Q4_K_M.gguf"),
    ("qwen3moe-s-Q5_K_M.gguf", "qwen3moe-s-F16.gguf", "Q5_K_M", "qwen3-s-Q4_K_M.gguf"),
    ("smollm3-s-Q6_K.gguf", "smollm3-s-F16.gguf", "Q6_K", "llama-s-Q6_K.gguf"),
    ("qwen3moe-s-Q6_K.gguf", "qwen3moe-s-F16.gguf", "Q6_K", "qwen3-s-Q6_K.gguf"),
    ("gemma3-s-Q6_K.gguf", "gemma3-s-F16.gguf", "Q6_K", "qwen3-s-Q6_K.gguf"),
]


def quantized(hai, out, tokens, bars, summary):
    for name, base, qtype, bar in QUANTIZED:
        path = os.path.join(out, name)
        subprocess.run([hai, "quantize", os.path.join(out, base), path, qtype], check=True, capture_output=True)
        model = Reader(path)
        forward(model, tokens).astype("<f4").tofile(path[:-len(".gguf")] + ".exact.f32")
        b = bars[bar]
        summary.append({"file": name, "type": qtype, "n_tokens": len(tokens), "llamacpp_kl": None, "max_kl": b["max_kl"],
                        "min_top1": b["min_top1"], "derived_from": base, "quantized_by": "hai quantize", "arch": model.arch()})
        print(f"make.py: {name} ({base} quantized to {qtype} by hai)", flush=True)


def main():
    shared, out = sys.argv[1], os.path.join(sys.argv[2], "reference")
    os.makedirs(out, exist_ok=True)
    src = os.path.join(shared, "reference")
    bars = {e["file"]: e for e in json.load(open(os.path.join(src, "summary.json")))}
    tokens_txt = open(os.path.join(src, "tokens.txt")).read()
    tokens = [int(t) for t in tokens_txt.split()]
    with open(os.path.join(out, "tokens.txt"), "w") as f:
        f.write(tokens_txt)
    summary = []
    for name, base, meta, *other in CASES:
        other += [None] * (5 - len(other))
        source = Reader(os.path.join(src, base))
        arch = other[0] or source.arch()
        path = os.path.join(out, name)
        rename = raw = None
        extra = dict(other[3] or {})
        meta_all = dict(meta)
        if other[4]:
            n_layer = other[1] or source.get("block_count")
            rename, raw, more, mm = moe_tensors(os.path.join(src, base), n_layer, *other[4])
            extra.update(more)
            meta_all.update(mm)
        if arch.startswith("gemma"):  # Gemma's files have no output matrix: the embeddings are tied
            rename = {**(rename or {}), "output.weight": None}
        write_with_meta(os.path.join(src, base), path, {f"{arch}.{k}": v for k, v in meta_all.items()}, arch=other[0],
                        layers=other[1], fuse=other[2] or (), extra=extra, rename=rename, raw=raw)
        forward(Reader(path), tokens).astype("<f4").tofile(path[:-len(".gguf")] + ".exact.f32")
        b = bars[base]
        summary.append({"file": name, "type": b["type"], "n_tokens": len(tokens), "llamacpp_kl": None,
                        "max_kl": b["max_kl"], "min_top1": b["min_top1"], "derived_from": base, "meta": meta_all, "arch": arch})
        print(f"make.py: {name} ({base} as {arch} + {meta})", flush=True)
    if len(sys.argv) > 3:
        quantized(sys.argv[3], out, tokens, bars, summary)
    # llama.cpp's distance on the same cases where it was measured (llamacpp_kl.sh; run it again
    # when a case changes), printed by test_reference beside hai's
    lc = os.path.join(os.path.dirname(os.path.abspath(__file__)), "llamacpp_kl.json")
    measured = json.load(open(lc))["cases"] if os.path.exists(lc) else {}
    for e in summary:
        if "kl" in measured.get(e["file"], {}):
            e["llamacpp_kl"] = measured[e["file"]]["kl"]
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)


if __name__ == "__main__":
    main()
