"""A task for measuring speculative decoding: correct the spelling of a given paragraph. The answer
is the paragraph itself with its misspelt words mended, so a model that has learned the task
copies most of its input - what prompt lookup drafts. Paragraphs are runs of sentences of general
English (Debian's license texts, on every Debian machine byte for byte) with typos put in: letters
swapped, dropped, doubled or replaced. The held-out split is by a hash of the first sentence, so
no held-out paragraph starts with a sentence the model was trained on. The texts are few (~740
sentences): a model can learn them by heart instead of copying its input, and one trained on
them alone did (its held-out answers were remembered paragraphs). So most training paragraphs
are runs of words drawn at random from the texts' words (SALAD_SHARE), which cannot be
remembered: only copying them, word by word, mends them.

Same interface as tasks.py: TASK_NAMES and sample(r, held_out)."""
import hashlib
import os

TASK_NAMES = ["spelling"]
TEXT_DIR = "/usr/share/common-licenses"
FORMS = ["Correct the spelling: {p}", "Fix the typos in this text: {p}", "Please correct the spelling.\n{p}",
         "Spell-check this paragraph: {p}"]
TYPO_RATE = 0.12  # of the words of four letters or more
SALAD_SHARE = 0.7  # of the training paragraphs (the held-out ones are all real text)
LETTERS = "abcdefghijklmnopqrstuvwxyz"

_sentences = None
_words = None


def sentences():
    global _sentences
    if _sentences is None:
        text = []
        for name in sorted(os.listdir(TEXT_DIR)):
            path = os.path.join(TEXT_DIR, name)
            if os.path.isfile(path) and not os.path.islink(path):
                with open(path, encoding="utf-8", errors="replace") as f:
                    text.append(f.read())
        flat = " ".join(" ".join(text).split())
        seen, out = set(), []
        for s in flat.split(". "):
            s = s.strip()
            words = s.split()
            # plain prose only: no list markers, URLs or all-caps headings
            if 6 <= len(words) <= 60 and s.isascii() and "http" not in s and not s.isupper() and s not in seen:
                seen.add(s)
                out.append(s + ".")
        _sentences = out
    return _sentences


def all_words():
    """The texts' words as written (punctuation kept), each once."""
    global _words
    if _words is None:
        _words = sorted({w for s in sentences() for w in s.split()})
    return _words


def _held(s):
    return hashlib.sha256(s.encode()).digest()[0] < 13  # ~5%


def typo(r, w):
    """One misspelling of a word: two letters swapped, one dropped, doubled or replaced."""
    core = [i for i, c in enumerate(w) if c.isalpha()]
    if len(core) < 4:
        return w
    i = r.choice(core[1:-1])
    kind = r.randrange(4)
    if kind == 0 and w[i + 1].isalpha():
        return w[:i] + w[i + 1] + w[i] + w[i + 2:]
    if kind == 1:
        return w[:i] + w[i + 1:]
    if kind == 2:
        return w[:i] + w[i] + w[i:]
    c = r.choice(LETTERS.replace(w[i].lower(), ""))
    return w[:i] + c + w[i + 1:]


def misspell(r, text):
    words = text.split(" ")
    n = 0
    for k, w in enumerate(words):
        if len(w) >= 4 and r.random() < TYPO_RATE:
            words[k] = typo(r, w)
            n += words[k] != w
    if n == 0:  # every paragraph has something to mend
        long = [k for k, w in enumerate(words) if sum(c.isalpha() for c in w) >= 4]
        if long:
            k = r.choice(long)
            words[k] = typo(r, words[k])
    return " ".join(words)


def paragraph(r, held_out):
    if not held_out and r.random() < SALAD_SHARE:
        ws = all_words()
        return " ".join(r.choice(ws) for _ in range(r.randint(8, 40)))
    ss = sentences()
    while True:
        i = r.randrange(len(ss))
        if _held(ss[i]) == held_out:
            break
    out = ss[i]
    j = i + 1
    while j < len(ss) and len(out.split()) < 24 and r.random() < 0.7:
        out += " " + ss[j]
        j += 1
    words = out.split(" ")
    return " ".join(words[:48])


def sample(r, held_out):
    p = paragraph(r, held_out)
    return {"task": "spelling", "prompt": r.choice(FORMS).format(p=misspell(r, p)), "answer": p, "tools": None,
            "unsure": False}
