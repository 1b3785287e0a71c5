"""Evaluates hai-spell with hai itself: on the held-out paragraphs (their first sentence never
trained on), greedy answers against the corrected paragraph - exactly right, and the share of
words right (position by position) - next to the same share for the misspelt input as given.
usage: eval_spelling.py --hai build/hai --model models/hai-spell.gguf --heldout tools/train-tiny/spelling-heldout.jsonl"""
import argparse
import json
import sys

import spelling
from eval import run_hai


def given_text(prompt):
    """The misspelt paragraph of a prompt (the text after its form's lead)."""
    for f in spelling.FORMS:
        lead = f.split("{p}")[0]
        if prompt.startswith(lead):
            return prompt[len(lead):]
    return prompt


def words_right(got, want):
    g, w = got.split(), want.split()
    return sum(a == b for a, b in zip(g, w)) / max(len(w), 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hai", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--heldout", required=True)
    args = ap.parse_args()
    rows = [json.loads(line) for line in open(args.heldout) if line.strip()]
    outs = run_hai(args.hai, args.model, [r["prompt"] for r in rows], 200)
    exact = sum(o["text"].strip() == r["answer"] for o, r in zip(outs, rows))
    got = sum(words_right(o["text"].strip(), r["answer"]) for o, r in zip(outs, rows)) / len(rows)
    given = sum(words_right(given_text(r["prompt"]), r["answer"]) for r in rows) / len(rows)
    print(f"hai-spell, {len(rows)} held-out paragraphs: {exact} exact ({100 * exact / len(rows):.0f}%), "
          f"words right {100 * got:.1f}% (the misspelt input: {100 * given:.1f}%)")
    for o, r in list(zip(outs, rows))[:3]:
        print(f"  in:  {r['prompt']}\n  out: {o['text'].strip()}\n  want: {r['answer']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
