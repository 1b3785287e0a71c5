"""Evaluates hai-tiny with hai itself (not PyTorch):
  - in-domain: exact-match accuracy of greedy answers on the held-out set, per task;
  - out-of-domain: the mean token entropy of the first 16 answer tokens (computed by hai) on
    200 prompts the model never trained for, against the held-out in-domain prompts: AUROC.
usage: eval.py --hai build/hai --model models/hai-tiny.gguf --heldout tools/train-tiny/heldout.jsonl
               [--ood tools/train-tiny/ood_prompts.txt] [--json OUT.json]"""
import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile


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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hai", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--heldout", required=True)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--ood", default=os.path.join(here, "ood_prompts.txt"))
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()

    held = [json.loads(line) for line in open(args.heldout) if line.strip()]
    ood = [line.rstrip("\n") for line in open(args.ood) if line.strip()]
    rows = run_hai(args.hai, args.model, [h["prompt"] for h in held], 48)
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
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"per_task": {t: {"correct": v[0], "total": v[1]} for t, v in per.items()},
                       "overall": total_ok / total, "auroc": area, "threshold": thr,
                       "mean_entropy_in": mean(s_in), "mean_entropy_ood": mean(s_out)}, f, indent=1)


if __name__ == "__main__":
    main()
