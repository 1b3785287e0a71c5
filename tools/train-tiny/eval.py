"""Evaluates hai-tiny with hai itself (not PyTorch):
  - in-domain: exact-match accuracy of greedy answers on the held-out set, per task (tool tasks:
    the exact call text, asked with the tools of the row shown);
  - out-of-domain: the mean token entropy of the first 16 answer tokens (computed by hai) on
    200 prompts the model never trained for, against the held-out in-domain prompts: AUROC and
    the escalation threshold that separates them best;
  - phrasings written apart from the generator (written.jsonl, written2.jsonl): answers and calls right (a call:
    the right tool with the right arguments), the share kept on the device at that threshold,
    and the share of requests for tools it does not have that are escalated.
usage: eval.py --hai build/hai --model models/hai-tiny.gguf --heldout tools/train-tiny/heldout.jsonl
               [--ood tools/train-tiny/ood_prompts.txt] [--written SET.jsonl ...] [--json OUT.json]"""
import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile


HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = {t["function"]["name"]: t for t in json.load(open(os.path.join(HERE, "device_tools.json")))}


def row(h):
    """A --prompts row: the prompt, with the row's tools (by name) as OpenAI tool definitions."""
    if not h.get("tools"):
        return h["prompt"]
    return {"prompt": h["prompt"], "tools": [TOOLS[n] for n in h["tools"]]}


def parse_call(text):
    """The one call of a Hermes-syntax answer, or None."""
    t = text.strip()
    if not (t.startswith("<tool_call>") and t.endswith("</tool_call>")):
        return None
    try:
        return json.loads(t[len("<tool_call>"):-len("</tool_call>")])
    except ValueError:
        return None


def call_right(got, want, optional):
    """The right tool with the right arguments; optional keys may be left out, not wrong."""
    if not isinstance(got, dict) or got.get("name") != want["name"] or not isinstance(got.get("arguments"), dict):
        return False
    a, w = got["arguments"], want["arguments"]
    for k, v in w.items():
        if k not in a:
            if k in optional:
                continue
            return False
        if a[k] != v or (type(a[k]) is bool) != (type(v) is bool):
            return False
    return all(k in w for k in a)


def run_hai(hai, model, prompts, n_predict):
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        for p in prompts:
            f.write(json.dumps(p) + "\n")
        path = f.name
    try:
        out = subprocess.run([hai, "run", "-m", model, "--chat", "--prompts", path, "--json", "--temp", "0",
                              "-n", str(n_predict), "-t", "2"], check=True, capture_output=True, text=True).stdout
    finally:
        os.unlink(path)
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    if len(rows) != len(prompts):
        sys.exit(f"eval: hai answered {len(rows)} of {len(prompts)} prompts")
    return rows


def auroc(pos, neg):
    """P(score of a positive > score of a negative), ties counting half."""
    wins = 0.0
    for p in pos:
        for n in neg:
            wins += 1.0 if p > n else 0.5 if p == n else 0.0
    return wins / (len(pos) * len(neg))


def eval_written(args, path, thr, gen):
    """One set of phrasings written apart: answers and calls right, kept on the device at the
    threshold, requests for other tools escalated; per kind [right, kept, total, right and kept]."""
    wr = [json.loads(line) for line in open(path) if line.strip()]
    same = [h["prompt"] for h in wr if h["prompt"].lower().rstrip(".?!") in gen]
    print(f"\n{os.path.basename(path)}: written prompts the generator also writes (of {len(gen)} distinct generated): {len(same)} {same}")
    wout = run_hai(args.hai, args.model, [row(h) for h in wr], 64)
    wper = collections.defaultdict(lambda: [0, 0, 0, 0])  # right, kept on the device, total, right and kept
    for h, r in zip(wr, wout):
        kept = r["mean_entropy"] <= thr
        if h["task"] == "other_tool":
            right = False
        elif "call" in h:
            right = call_right(parse_call(r.get("text", "")), h["call"], h.get("optional", []))
        else:
            right = r.get("text", "").strip() == h["answer"]
        kind = "other_tool" if h["task"] == "other_tool" else "tool call" if "call" in h else "text"
        v = wper[kind]
        v[0] += right
        v[1] += kept
        v[2] += 1
        v[3] += right and kept
        if h["task"] != "other_tool" and not (right and kept):
            print(f"  written [{h['task']}] {h['prompt']!r} -> {r.get('text')!r} (entropy {r['mean_entropy']:.3f})")
        if h["task"] == "other_tool" and kept:
            print(f"  written [kept, should escalate] {h['prompt']!r} -> {r.get('text')!r}")
    print()
    # what a user of the router gets: the answers kept on the device, and how many of them are right
    print(f"| {os.path.basename(path)} | prompts | right | kept on the device | escalated | right among those kept |")
    print("|---|---|---|---|---|---|")
    for kind in ("text", "tool call", "other_tool"):
        if kind in wper:
            v = wper[kind]
            right = "-" if kind == "other_tool" else f"{100.0 * v[0] / v[2]:.1f}%"
            kept_right = "-" if kind == "other_tool" or not v[1] else f"{100.0 * v[3] / v[1]:.1f}% ({v[3]}/{v[1]})"
            print(f"| {kind} | {v[2]} | {right} | {100.0 * v[1] / v[2]:.1f}% | {100.0 * (v[2] - v[1]) / v[2]:.1f}% | {kept_right} |")
    if same:  # the same figures without the prompts the generator happens to write too
        apart = [(h, r) for h, r in zip(wr, wout) if h["prompt"] not in same and "call" in h]
        ok = sum(call_right(parse_call(r.get("text", "")), h["call"], h.get("optional", [])) for h, r in apart)
        if apart:
            print(f"tool calls right without the {len(same)} prompts the generator writes too: {ok}/{len(apart)} = {100.0 * ok / len(apart):.1f}%")
    return wper


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hai", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--heldout", required=True)
    ap.add_argument("--ood", default=os.path.join(HERE, "ood_prompts.txt"))
    ap.add_argument("--written", nargs="+", default=[os.path.join(HERE, n) for n in ("written.jsonl", "written2.jsonl")])
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()

    held = [json.loads(line) for line in open(args.heldout) if line.strip()]
    ood = [line.rstrip("\n") for line in open(args.ood) if line.strip()]
    rows = run_hai(args.hai, args.model, [row(h) for h in held], 64)
    per = collections.defaultdict(lambda: [0, 0])
    misses = collections.defaultdict(list)
    for h, r in zip(held, rows):
        ok = r.get("text", "").strip() == h["answer"]
        per[h["task"]][0] += ok
        per[h["task"]][1] += 1
        if not ok and len(misses[h["task"]]) < 3:
            misses[h["task"]].append((h["prompt"], r.get("text", r.get("error"))))
    total_ok = sum(v[0] for v in per.values())
    total = sum(v[1] for v in per.values())
    orow = run_hai(args.hai, args.model, ood, 16)
    s_in = [r["mean_entropy"] for r in rows]
    s_out = [r["mean_entropy"] for r in orow]
    area = auroc(s_out, s_in)

    print("| task | held-out prompts | exact match |")
    print("|---|---|---|")
    for t in sorted(per):
        print(f"| {t} | {per[t][1]} | {100.0 * per[t][0] / per[t][1]:.1f}% |")
    print(f"| **overall** | {total} | **{100.0 * total_ok / total:.1f}%** |")
    print()
    mean = lambda v: sum(v) / len(v)
    print(f"mean entropy of the first 16 answer tokens: in-domain {mean(s_in):.3f} nats, "
          f"out-of-domain {mean(s_out):.3f} nats; AUROC {area:.3f} ({len(s_in)} vs {len(s_out)} prompts)")
    # the router's escalation threshold: the cut that best separates the two (balanced accuracy)
    best = (0.0, 0.0)
    for t in sorted(set(s_in + s_out)):
        bal = (sum(v <= t for v in s_in) / len(s_in) + sum(v > t for v in s_out) / len(s_out)) / 2
        if bal > best[0]:
            best = (bal, t)
    thr = best[1]
    print(f"escalation threshold (cascade.entropy_threshold): {thr:.3f} nats - in-domain kept local "
          f"{100 * sum(v <= thr for v in s_in) / len(s_in):.1f}%, out-of-domain escalated "
          f"{100 * sum(v > thr for v in s_out) / len(s_out):.1f}%")
    for t, m in misses.items():
        for p, g in m:
            print(f"  miss [{t}] {p!r} -> {g!r}")

    # phrasings written apart from the generator (none of them one the generator writes)
    sys.path.insert(0, HERE)
    import random
    import tasks
    rng, gen = random.Random(5), set()
    for _ in range(200000):
        gen.add(tasks.sample(rng, held_out=False)["prompt"].lower().rstrip(".?!"))
        gen.add(tasks.other_tool_item(rng)["prompt"].lower().rstrip(".?!"))
    written = {}
    for path in args.written:
        written[os.path.basename(path)] = eval_written(args, path, thr, gen)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"per_task": {t: {"correct": v[0], "total": v[1]} for t, v in per.items()},
                       "overall": total_ok / total, "auroc": area, "threshold": thr,
                       "mean_entropy_in": mean(s_in), "mean_entropy_ood": mean(s_out),
                       "written": {name: {k: {"right": v[0], "kept": v[1], "total": v[2], "right_kept": v[3]} for k, v in wper.items()}
                                   for name, wper in written.items()}},
                      f, indent=1)


if __name__ == "__main__":
    main()
