"""The reference forward pass in float64: the exact logits hai is measured against.
Written from the public model definitions (the papers and the Hugging Face modeling code as the
specification), one function per architecture step, nothing fused or approximated.
usage: forward.py MODEL.gguf TOKENS.txt OUT.f32   (logits [n_tokens][n_vocab], little-endian float32)"""
import sys

import numpy as np

from gguf_read import Reader


def rms_norm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rope_params(m, n_rot, base, n_ctx, local=False):
    """The rotary frequencies [n_rot/2], a factor on the positions and one on cos and sin, from
    the GGUF's rope scaling: linear (positions / factor), llama3 (the rope_freqs tensor divides
    the frequencies) or YaRN (transformers' _compute_yarn_parameters: each frequency between its
    extrapolated and interpolated value by a linear ramp over the correction range of beta_fast
    and beta_slow rotations in the original context; cos and sin times the attention factor,
    0.1 ln(factor) + 1, times the file's attn_factor)."""
    half = n_rot // 2
    inv = base ** (-np.arange(half, dtype=np.float64) * 2 / n_rot)
    if local:  # Gemma 3's sliding-window layers: their own base, no scaling
        return inv, 1.0, 1.0
    if m.has("rope_freqs.weight"):
        inv = inv / m.tensor("rope_freqs.weight")
    if m.has("rope_factors_long.weight"):
        # LongRoPE (Phi-3): per-frequency divisors, the long ones when the context is longer than
        # the original one (as llama.cpp chooses: per context; transformers: per sequence length);
        # cos and sin times sqrt(1 + ln(s) / ln(original)), s = context_length / original
        orig = m.get("rope.scaling.original_context_length")
        inv = inv / m.tensor("rope_factors_long.weight" if n_ctx > orig else "rope_factors_short.weight")
        s = m.get("context_length") / orig
        default = np.sqrt(1 + np.log(s) / np.log(orig)) if s > 1 else 1.0
        return inv, 1.0, m.get("rope.scaling.attn_factor", default)
    kind = m.get("rope.scaling.type", "none")
    factor = m.get("rope.scaling.factor", 1.0)
    if kind == "linear":
        return inv, 1 / factor, 1.0
    if kind != "yarn":
        return inv, 1.0, 1.0
    orig = m.get("rope.scaling.original_context_length")
    fast, slow = m.get("rope.scaling.yarn_beta_fast", 32.0), m.get("rope.scaling.yarn_beta_slow", 1.0)

    def corr_dim(rotations):
        return n_rot * np.log(orig / (rotations * 2 * np.pi)) / (2 * np.log(base))

    low, high = max(np.floor(corr_dim(fast)), 0), min(np.ceil(corr_dim(slow)), n_rot - 1)
    if low == high:
        high += 0.001
    ramp = np.clip((np.arange(half, dtype=np.float64) - low) / (high - low), 0, 1)
    extrapolate = 1 - ramp  # 1: the frequency kept (high frequencies), 0: interpolated
    inv = inv / factor * (1 - extrapolate) + inv * extrapolate
    mscale = (0.1 * np.log(factor) + 1 if factor > 1 else 1.0) * m.get("rope.scaling.attn_factor", 1.0)
    return inv, 1.0, mscale


def rope(x, pos, n_rot, inv, mscale, neox):
    """Rotary position embedding on the first n_rot dims of each head: x [T][H][D].
    neox: dimension i pairs with i + n_rot/2 (GPT-NeoX, Qwen); otherwise 2i with 2i+1 (the GGUF
    llama layout, whose converter permuted Q and K to that)."""
    half = n_rot // 2
    ang = pos[:, None] * inv[None, :]  # [T][half]
    cos, sin = np.cos(ang)[:, None, :] * mscale, np.sin(ang)[:, None, :] * mscale
    out = x.copy()
    if neox:
        a, b = x[..., :half], x[..., half:n_rot]
        out[..., :half] = a * cos - b * sin
        out[..., half:n_rot] = a * sin + b * cos
    else:
        a, b = x[..., 0:n_rot:2], x[..., 1:n_rot:2]
        out[..., 0:n_rot:2] = a * cos - b * sin
        out[..., 1:n_rot:2] = a * sin + b * cos
    return out


def attention(q, k, v, scale, window=0, softcap=0):
    """Causal softmax attention with grouped KV heads: q [T][H][D], k/v [T][Hkv][D]. window: each
    query sees only the keys less than `window` positions back (itself included); softcap: scores
    through cap * tanh(s / cap) (Gemma 2)."""
    T, H, _ = q.shape
    rep = H // k.shape[1]
    k, v = np.repeat(k, rep, axis=1), np.repeat(v, rep, axis=1)
    s = np.einsum("thd,shd->hts", q, k) * scale
    if softcap:
        s = softcap * np.tanh(s / softcap)
    s = s + np.triu(np.full((T, T), -np.inf), 1)[None]
    if window:
        s = s + np.tril(np.full((T, T), -np.inf), -window)[None]
    s = np.exp(s - s.max(axis=-1, keepdims=True))
    s /= s.sum(axis=-1, keepdims=True)
    return np.einsum("hts,shd->thd", s, v)


def silu(x):
    return x / (1 + np.exp(-x))


def gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))


def moe(m, p, h):
    """A mixture-of-experts FFN (transformers' Qwen2MoeSparseMoeBlock / Qwen3MoeSparseMoeBlock):
    the router's softmax over the experts, the top expert_used_count of each token, their
    probabilities renormalised over the chosen (qwen3moe; the file's expert_weights_norm when it
    says), each chosen expert's SwiGLU weighted; plus the shared expert times the sigmoid of its
    gate (qwen2moe)."""
    logits = h @ m.tensor(p + "ffn_gate_inp.weight").T
    prob = np.exp(logits - logits.max(axis=-1, keepdims=True))
    prob /= prob.sum(axis=-1, keepdims=True)
    k = m.get("expert_used_count")
    norm = m.meta.get(m.arch() + ".expert_weights_norm", m.arch() == "qwen3moe")
    gate, up, down = (m.tensor(p + f"ffn_{n}_exps.weight") for n in ("gate", "up", "down"))
    out = np.zeros_like(h)
    for t in range(h.shape[0]):
        sel = np.argsort(-prob[t], kind="stable")[:k]
        w = prob[t, sel] / (prob[t, sel].sum() if norm else 1)
        for e, we in zip(sel, w):
            out[t] += we * (down[e] @ (silu(gate[e] @ h[t]) * (up[e] @ h[t])))
    if m.has(p + "ffn_gate_shexp.weight"):
        s = (silu(h @ m.tensor(p + "ffn_gate_shexp.weight").T) * (h @ m.tensor(p + "ffn_up_shexp.weight").T)) @ m.tensor(p + "ffn_down_shexp.weight").T
        if m.has(p + "ffn_gate_inp_shexp.weight"):
            s = s / (1 + np.exp(-(h @ m.tensor(p + "ffn_gate_inp_shexp.weight"))))[:, None]
        out += s
    return out


def forward(m, tokens, n_ctx=None, hidden=False):
    """llama, qwen2, qwen3, granite, smollm3, phi3, gemma2, gemma3, qwen2moe, qwen3moe: logits [T][n_vocab] of the tokens at positions
    0.. in a context of n_ctx (default: as many as the tokens); hidden: the final hidden states
    [T][n_embd] instead (after the output norm: what embeddings pool)."""
    arch = m.arch()
    if arch not in ("llama", "qwen2", "qwen3", "granite", "smollm3", "phi3", "gemma2", "gemma3", "qwen2moe", "qwen3moe"):
        raise ValueError(f"architecture {arch} not in the reference yet")
    n_layer, n_head = m.get("block_count"), m.get("attention.head_count")
    n_kv = m.get("attention.head_count_kv", n_head)
    eps = m.get("attention.layer_norm_rms_epsilon")
    base = m.get("rope.freq_base", 10000.0)
    emb = m.tensor("token_embd.weight")
    x = emb[tokens] * m.get("embedding_scale", 1.0)  # granite's multipliers: 1 elsewhere
    T, n_embd = x.shape
    gemma = arch in ("gemma2", "gemma3")
    if gemma:  # Gemma: embeddings times sqrt(n_embd); GeGLU; norms after attention and FFN too
        x = x * np.sqrt(n_embd)
    hd = m.get("attention.key_length", n_embd // n_head)
    n_rot = m.get("rope.dimension_count", hd)
    neox = arch in ("qwen2", "qwen3", "phi3", "gemma2", "gemma3", "qwen2moe", "qwen3moe")
    resid, logit_scale = m.get("residual_scale", 1.0), m.get("logit_scale", 1.0)
    # Gemma 2/3 27B scale queries by n_embd / n_head (query_pre_attn_scalar), the others by head_dim
    big_gemma = gemma and n_layer in (46, 62)
    attn_scale = m.get("attention.scale", 1 / np.sqrt(n_embd / n_head if big_gemma else hd))
    # sliding windows: Gemma's (all layers but every period-th), Phi-3's (every layer: period 0)
    window = m.get("attention.sliding_window", 0) if gemma or arch == "phi3" else 0
    period = m.get("attention.sliding_window_pattern", {"gemma2": 2, "gemma3": 6}.get(arch, 0))
    softcap, final_cap = m.get("attn_logit_softcapping", 0.0), m.get("final_logit_softcapping", 0.0)
    local = rope_params(m, n_rot, m.get("rope.freq_base_swa", 10000.0), n_ctx or len(tokens), local=True)
    inv, pos_scale, mscale = rope_params(m, n_rot, base, n_ctx or len(tokens))
    pos = np.arange(T, dtype=np.float64) * pos_scale

    def lin(name, h, rows=None):
        w = m.tensor(name + ".weight")
        y = h @ (w if rows is None else w[rows[0]:rows[1]]).T
        return y + m.tensor(name + ".bias") if m.has(name + ".bias") else y

    Q, K, F = n_head * hd, n_kv * hd, m.get("feed_forward_length")

    for L in range(n_layer):
        p = f"blk.{L}."
        h = rms_norm(x, m.tensor(p + "attn_norm.weight"), eps)
        if m.has(p + "attn_qkv.weight"):  # fused (phi3): the rows of Q, then K, then V
            q, k, v = (lin(p + "attn_qkv", h, (a, b)) for a, b in ((0, Q), (Q, Q + K), (Q + K, Q + 2 * K)))
        else:
            q, k, v = lin(p + "attn_q", h), lin(p + "attn_k", h), lin(p + "attn_v", h)
        q, k, v = q.reshape(T, n_head, hd), k.reshape(T, n_kv, hd), v.reshape(T, n_kv, hd)
        if m.has(p + "attn_q_norm.weight"):
            q = rms_norm(q, m.tensor(p + "attn_q_norm.weight"), eps)
            k = rms_norm(k, m.tensor(p + "attn_k_norm.weight"), eps)
        swa = window and (period == 0 or L % period < period - 1)
        li, lm = (local[0], local[2]) if swa and arch == "gemma3" else (inv, mscale)
        lpos = np.arange(T, dtype=np.float64) if swa and arch == "gemma3" else pos
        if not (arch == "smollm3" and (L + 1) % 4 == 0):  # SmolLM3: every fourth layer without RoPE
            q, k = rope(q, lpos, n_rot, li, lm, neox), rope(k, lpos, n_rot, li, lm, neox)
        a = attention(q, k, v, attn_scale, window if swa else 0, softcap).reshape(T, n_head * hd)
        a = lin(p + "attn_output", a)
        if m.has(p + "post_attention_norm.weight"):
            a = rms_norm(a, m.tensor(p + "post_attention_norm.weight"), eps)
        x = x + a * resid
        h = rms_norm(x, m.tensor(p + "ffn_norm.weight"), eps)
        if m.has(p + "ffn_gate_inp.weight"):
            x = x + moe(m, p, h) * resid
            continue
        if m.has(p + "ffn_gate.weight"):
            gate, up = lin(p + "ffn_gate", h), lin(p + "ffn_up", h)
        else:  # fused (phi3): the gate's rows, then the up projection's
            gate, up = lin(p + "ffn_up", h, (0, F)), lin(p + "ffn_up", h, (F, 2 * F))
        f = lin(p + "ffn_down", (gelu_tanh(gate) if gemma else silu(gate)) * up)
        if m.has(p + "post_ffw_norm.weight"):
            f = rms_norm(f, m.tensor(p + "post_ffw_norm.weight"), eps)
        x = x + f * resid
    x = rms_norm(x, m.tensor("output_norm.weight"), eps)
    if hidden:
        return x
    out = m.tensor("output.weight") if m.has("output.weight") else emb
    logits = x @ out.T / logit_scale
    return final_cap * np.tanh(logits / final_cap) if final_cap else logits


def main():
    m = Reader(sys.argv[1])
    tokens = [int(t) for t in open(sys.argv[2]).read().split()]
    forward(m, tokens).astype("<f4").tofile(sys.argv[3])


if __name__ == "__main__":
    main()
