"""Trains hai-tiny: a llama-architecture model of a few million parameters (GQA, RMSNorm, RoPE,
SwiGLU, tied embeddings) with its own byte-level BPE tokenizer, on generated ChatML
conversations of tasks in tasks.py. Seeded; a fixed number of steps, so the same seed gives the
same model. Writes OUT/weights.bin (float32 tensors back to back), OUT/manifest.json (names,
shapes, hyperparameters, tokenizer) and OUT/heldout.jsonl (the evaluation set)."""
import argparse
import hashlib
import json
import math
import os
import random
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bpe  # noqa: E402
import spelling  # noqa: E402
import tasks  # noqa: E402

# ChatML; tools shown as one system line of names ("Tools: set_timer, order_coffee"), calls in the
# Hermes syntax (<tool_call> JSON </tool_call>), tool results as "tool" turns
CHAT_TEMPLATE = (
    "{%- if tools %}{{ '<|im_start|>system\\nTools: ' }}{% for t in tools %}"
    "{{ (t.function.name if t.function is defined else t.name) + (', ' if not loop.last else '') }}{% endfor %}"
    "{{ '<|im_end|>\\n' }}{% endif %}"
    "{%- for message in messages %}{{ '<|im_start|>' + message.role + '\\n' }}"
    "{%- if message.content is string %}{{ message.content }}{% endif %}"
    "{%- if message.tool_calls %}{% for tc in message.tool_calls %}"
    "{{ ('\\n' if not loop.first else '') + '<tool_call>\\n' }}"
    "{{ {'name': tc.function.name, 'arguments': tc.function.arguments} | tojson }}{{ '\\n</tool_call>' }}"
    "{% endfor %}{% endif %}{{ '<|im_end|>\\n' }}{% endfor %}"
    "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


def tools_line(names):
    return "system\nTools: " + ", ".join(names)


def chat_tokens(tok, question, answer, tools=None):
    """Token ids of one ChatML exchange and a mask of the tokens to learn (the answer and the
    <|im_end|> after it), cut into pieces exactly where hai cuts the formatted text."""
    S, E = tok.special("<|im_start|>"), tok.special("<|im_end|>")
    ids, mask = [], []

    def add(toks, learn):
        ids.extend(toks)
        mask.extend([learn] * len(toks))
    if tools:
        add([S], 0)
        add(tok.encode(tools_line(tools)), 0)
        add([E], 0)
        add(tok.encode("\n"), 0)
    add([S], 0)
    add(tok.encode("user\n" + question), 0)
    add([E], 0)
    add(tok.encode("\n"), 0)
    add([S], 0)
    add(tok.encode("assistant\n"), 0)
    add(tok.encode(answer), 1)
    add([E], 1)
    add(tok.encode("\n"), 0)
    return ids, mask


class Block(torch.nn.Module):
    def __init__(self, d, n_head, n_kv, ff):
        super().__init__()
        self.h, self.kv, self.hd = n_head, n_kv, d // n_head
        self.wq = torch.nn.Linear(d, d, bias=False)
        self.wk = torch.nn.Linear(d, n_kv * self.hd, bias=False)
        self.wv = torch.nn.Linear(d, n_kv * self.hd, bias=False)
        self.wo = torch.nn.Linear(d, d, bias=False)
        self.gate = torch.nn.Linear(d, ff, bias=False)
        self.up = torch.nn.Linear(d, ff, bias=False)
        self.down = torch.nn.Linear(ff, d, bias=False)
        self.attn_norm = torch.nn.Parameter(torch.ones(d))
        self.ffn_norm = torch.nn.Parameter(torch.ones(d))


def rmsnorm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope(x, cos, sin):
    """llama ("normal") RoPE: dimensions (2i, 2i+1) rotate together - the GGUF llama layout."""
    x0, x1 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1).flatten(-2)


class Model(torch.nn.Module):
    def __init__(self, vocab, d, n_layer, n_head, n_kv, ff, eps, rope_base, ctx):
        super().__init__()
        self.eps = eps
        self.bf16 = False
        self.emb = torch.nn.Embedding(vocab, d)
        torch.nn.init.normal_(self.emb.weight, std=0.02)
        self.blocks = torch.nn.ModuleList([Block(d, n_head, n_kv, ff) for _ in range(n_layer)])
        self.norm = torch.nn.Parameter(torch.ones(d))
        hd = d // n_head
        inv = rope_base ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)
        ang = torch.arange(ctx, dtype=torch.float64)[:, None] * inv[None, :]
        self.register_buffer("cos", ang.cos().float(), persistent=False)
        self.register_buffer("sin", ang.sin().float(), persistent=False)
        for b in self.blocks:  # scaled init of the residual projections
            torch.nn.init.normal_(b.wo.weight, std=0.02 / math.sqrt(2 * n_layer))
            torch.nn.init.normal_(b.down.weight, std=0.02 / math.sqrt(2 * n_layer))

    def forward(self, x):
        B, T = x.shape
        h = self.emb(x)
        cos, sin = self.cos[:T], self.sin[:T]
        mask = torch.triu(torch.full((T, T), float("-inf")), 1)
        # the blocks in bfloat16 (autocast: fp32 master weights, bf16 matrix products - 3.5x faster
        # on CPUs with AVX512-BF16 or AMX), the output layer and the loss in float32
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            h = self.blocks_forward(h, B, T, cos, sin, mask)
        return rmsnorm(h.float(), self.norm, self.eps) @ self.emb.weight.t()

    def blocks_forward(self, h, B, T, cos, sin, mask):
        for b in self.blocks:
            a = rmsnorm(h, b.attn_norm, self.eps)
            q = b.wq(a).view(B, T, b.h, b.hd).transpose(1, 2)
            k = b.wk(a).view(B, T, b.kv, b.hd).transpose(1, 2)
            v = b.wv(a).view(B, T, b.kv, b.hd).transpose(1, 2)
            q, k = rope(q, cos, sin), rope(k, cos, sin)
            rep = b.h // b.kv
            k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
            att = (q @ k.transpose(-1, -2)) / math.sqrt(b.hd) + mask
            o = (att.softmax(-1) @ v).transpose(1, 2).reshape(B, T, -1)
            h = h + b.wo(o)
            f = rmsnorm(h, b.ffn_norm, self.eps)
            h = h + b.down(F.silu(b.gate(f)) * b.up(f))
        return h


OOD_ANSWER = "I am not sure about that."
OOD_SHARE = 0.1  # of the exchanges in a row
OTHER_TOOL_SHARE = 0.08  # requests for tools the model does not have (run 6 kept 2 of 12 as wrong calls at 0.05)


def batches(tok, rng, batch, T, pad, ood, task_mod=tasks):
    """Rows of T tokens packed with whole exchanges; the mask marks what is learned: 1 the answer
    tokens, 2 the answer positions of an out-of-domain prompt (learned as uniform: unsure)."""
    sentences, words = ood
    while True:
        xs, ms = [], []
        for _ in range(batch):
            row, mrow = [], []
            while True:
                x = rng.random() if task_mod is tasks else 1.0  # outliers and other tools: hai-tiny's tasks only
                if x < OOD_SHARE:
                    tools = tasks.tool_list(rng) if rng.random() < 0.2 else None
                    ex = {"prompt": tasks.ood_item(rng, sentences, words), "tools": tools, "unsure": True}
                elif x < OOD_SHARE + OTHER_TOOL_SHARE:
                    ex = tasks.other_tool_item(rng)
                else:
                    ex = task_mod.sample(rng, held_out=False)
                ids, m = chat_tokens(tok, ex["prompt"], OOD_ANSWER if ex["unsure"] else ex["answer"], ex["tools"])
                if ex["unsure"]:
                    m = [2 * v for v in m]
                if len(row) + len(ids) > T + 1:
                    break
                row += ids
                mrow += m
            row += [pad] * (T + 1 - len(row))
            mrow += [0] * (T + 1 - len(mrow))
            xs.append(row)
            ms.append(mrow)
        yield torch.tensor(xs), torch.tensor(ms, dtype=torch.int64)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--vocab", type=int, default=2048)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--ff", type=int, default=704)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--fp32", action="store_true", help="train in float32 only (3.5x slower; default: bf16 autocast)")
    ap.add_argument("--heldout", type=int, default=120, help="held-out examples per task")
    ap.add_argument("--task", choices=["tiny", "spelling"], default="tiny",
                    help="tiny: hai-tiny's tasks (tasks.py); spelling: correct a paragraph's typos (spelling.py)")
    ap.add_argument("--bpe-extra", default="/usr/share/common-licenses",
                    help="general English text for the tokenizer (the task text alone has too few words)")
    args = ap.parse_args()
    task_mod = spelling if args.task == "spelling" else tasks
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    t0 = time.time()

    # tokenizer: trained on a sample of the training conversations (and the chat markup words),
    # plus general English (Debian's license texts: on every Debian machine, byte for byte) so that
    # text outside the tasks does not fall apart into single bytes
    corpus = []
    for _ in range(40000):
        ex = task_mod.sample(rng, held_out=False)
        corpus += ["user\n" + ex["prompt"], "assistant\n" + ex["answer"], "\n"]
        if ex["tools"]:
            corpus.append(tools_line(ex["tools"]))
    extra_digest = hashlib.sha256()
    extra_text = []
    if args.bpe_extra and os.path.isdir(args.bpe_extra):
        for name in sorted(os.listdir(args.bpe_extra)):
            path = os.path.join(args.bpe_extra, name)
            if os.path.isfile(path) and not os.path.islink(path):
                with open(path, encoding="utf-8", errors="replace") as f:
                    text = f.read()
                extra_digest.update(text.encode())
                extra_text.append(text)
                corpus += text.split("\n\n")
    tok = bpe.train(corpus, args.vocab)
    print(f"tokenizer: {len(tok.vocab)} tokens ({len(tok.merges)} merges) in {time.time() - t0:.0f} s", flush=True)

    # held-out evaluation set: a fixed number per task, from its own seeded stream
    hrng = random.Random(args.seed + 1000)
    held, per_task = [], {t: 0 for t in task_mod.TASK_NAMES}
    seen = set()
    # small tasks have few held-out questions (greetings: a handful): take what exists
    for _ in range(400000):
        if min(per_task.values()) >= args.heldout:
            break
        ex = task_mod.sample(hrng, held_out=True)
        t, q = ex["task"], ex["prompt"]
        if per_task[t] >= args.heldout or (q, str(ex["tools"])) in seen:
            continue
        seen.add((q, str(ex["tools"])))
        per_task[t] += 1
        h = {"task": t, "prompt": q, "answer": ex["answer"]}
        if ex["tools"]:
            h["tools"] = ex["tools"]
        held.append(h)
    with open(os.path.join(args.out, "heldout.jsonl"), "w") as f:
        for h in held:
            f.write(json.dumps(h) + "\n")

    V = len(tok.vocab)
    model = Model(V, args.dim, args.layers, args.heads, args.kv_heads, args.ff, 1e-5, 10000.0, args.seq)
    model.bf16 = not args.fp32
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params / 1e6:.2f}M parameters; {args.steps} steps of {args.batch}x{args.seq} tokens", flush=True)
    decay = [p for n, p in model.named_parameters() if p.dim() == 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95))
    warm = max(1, args.steps // 30)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, s / args.steps)))))
    pad = tok.special("<|endoftext|>")
    # outlier exposure text: sentences and words of general English (the tokenizer's extra text)
    sentences = [t.strip() for t in " ".join(extra_text).replace("\n", " ").split(". ") if 4 <= len(t.split()) <= 40]
    words = sorted({w.strip(".,;:()\"'") for t in sentences for w in t.split() if w.isalpha() and len(w) > 2})
    print(f"outlier exposure: {len(sentences)} sentences, {len(words)} words", flush=True)
    stream = batches(tok, rng, args.batch, args.seq, pad, (sentences, words), task_mod)
    t1, log_loss = time.time(), 0.0
    for step in range(args.steps):
        xy, m = next(stream)
        x, y, m = xy[:, :-1], xy[:, 1:], m[:, 1:]
        logits = model(x)
        logp = F.log_softmax(logits.reshape(-1, V), dim=-1)
        mm = m.reshape(-1)
        ce = -logp.gather(1, y.reshape(-1, 1)).squeeze(1)  # the answer
        uni = -logp.mean(dim=1)  # cross-entropy to the uniform distribution: unsure
        loss = ((mm == 1) * ce + (mm == 2) * uni).sum() / (mm > 0).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        log_loss += loss.item()
        if (step + 1) % 50 == 0:
            el = time.time() - t1
            print(f"step {step + 1}/{args.steps}  loss {log_loss / 50:.4f}  lr {sched.get_last_lr()[0]:.2e}  "
                  f"{el / (step + 1):.2f} s/step  {args.batch * args.seq * (step + 1) / el:.0f} tok/s", flush=True)
            log_loss = 0.0
    train_s = time.time() - t1

    # export: tensors in GGUF names and layouts ([out, in] rows = ne [in, out])
    tensors = [("token_embd.weight", model.emb.weight), ("output_norm.weight", model.norm)]
    for i, b in enumerate(model.blocks):
        tensors += [(f"blk.{i}.attn_norm.weight", b.attn_norm), (f"blk.{i}.attn_q.weight", b.wq.weight),
                    (f"blk.{i}.attn_k.weight", b.wk.weight), (f"blk.{i}.attn_v.weight", b.wv.weight),
                    (f"blk.{i}.attn_output.weight", b.wo.weight), (f"blk.{i}.ffn_norm.weight", b.ffn_norm),
                    (f"blk.{i}.ffn_gate.weight", b.gate.weight), (f"blk.{i}.ffn_up.weight", b.up.weight),
                    (f"blk.{i}.ffn_down.weight", b.down.weight)]
    man = {"tensors": [], "hparams": {
        "n_vocab": V, "n_embd": args.dim, "n_layer": args.layers, "n_head": args.heads, "n_head_kv": args.kv_heads,
        "n_ff": args.ff, "n_ctx": 2048, "rms_eps": 1e-5, "rope_base": 10000.0},
        "tokenizer": {"tokens": tok.vocab, "specials": bpe.SPECIALS, "merges": [a + " " + b for a, b in tok.merges],
                      "pre": "qwen2", "chat_template": CHAT_TEMPLATE},
        "training": {"task": args.task, "seed": args.seed, "steps": args.steps, "batch": args.batch, "seq": args.seq, "lr": args.lr,
                     "params": n_params, "train_seconds": round(train_s, 1), "threads": args.threads,
                     "tokens": args.steps * args.batch * args.seq, "torch": torch.__version__,
                     "precision": "float32" if args.fp32 else "bf16 autocast, float32 weights and output layer",
                     "tokenizer_extra_sha256": extra_digest.hexdigest()}}
    with open(os.path.join(args.out, "weights.bin"), "wb") as f:
        for name, t in tensors:
            a = t.detach().float().contiguous()
            man["tensors"].append({"name": name, "shape": list(reversed(a.shape))})
            f.write(a.numpy().astype("<f4").tobytes())
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(man, f)
    print(f"done: {train_s / 60:.1f} min of training, {(time.time() - t0) / 60:.1f} min in all", flush=True)


if __name__ == "__main__":
    main()
