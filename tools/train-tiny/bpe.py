"""A byte-level BPE tokenizer trained from scratch (GPT-2 style): text is cut into pre-tokens by
the Qwen2 pre-tokenizer pattern (single digits, so arithmetic sees digits), bytes are mapped to
printable characters, and the most frequent adjacent pair is merged until the vocabulary is full.
Encoding applies merges by rank, exactly as hai (and llama.cpp / HF tokenizers) do."""
import collections

import regex

# the "qwen2" pre-tokenizer of llama.cpp / Qwen's tokenizer.json
PRETOK = regex.compile(r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""")

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def bytes_to_unicode():
    """GPT-2's map of the 256 bytes to printable characters."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


B2U = bytes_to_unicode()


def pretokens(text):
    return ["".join(B2U[b] for b in m.encode("utf-8")) for m in PRETOK.findall(text)]


class BPE:
    def __init__(self, merges):
        self.merges = merges  # list of (a, b), by rank
        self.rank = {m: i for i, m in enumerate(merges)}
        # a merge whose result already is a token adds no new token (texts stay unique)
        self.vocab = [B2U[b] for b in range(256)]
        seen = set(self.vocab)
        for a, b in merges:
            if a + b not in seen:
                seen.add(a + b)
                self.vocab.append(a + b)
        self.vocab += SPECIALS
        self.id = {t: i for i, t in enumerate(self.vocab)}
        self.cache = {}

    def _word(self, w):
        if w in self.cache:
            return self.cache[w]
        parts = list(w)
        while len(parts) > 1:
            best, bi = None, -1
            for i in range(len(parts) - 1):
                r = self.rank.get((parts[i], parts[i + 1]))
                if r is not None and (best is None or r < best):
                    best, bi = r, i
            if best is None:
                break
            parts = parts[:bi] + [parts[bi] + parts[bi + 1]] + parts[bi + 2:]
        ids = [self.id[p] for p in parts]
        self.cache[w] = ids
        return ids

    def encode(self, text):
        out = []
        for w in pretokens(text):
            out.extend(self._word(w))
        return out

    def special(self, s):
        return self.id[s]


def train(texts, vocab_size):
    """Merges for a vocabulary of vocab_size tokens (256 bytes + merges + the specials)."""
    words = collections.Counter()
    for t in texts:
        words.update(pretokens(t))
    seqs = {w: list(w) for w in words}
    merges, texts_made = [], set(B2U.values())
    while len(texts_made) < vocab_size - len(SPECIALS):
        pairs = collections.Counter()
        for w, c in words.items():
            s = seqs[w]
            for i in range(len(s) - 1):
                pairs[(s[i], s[i + 1])] += c
        if not pairs:
            break
        best = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))[0]  # ties: the larger pair, deterministic
        merges.append(best)
        a, b = best
        texts_made.add(a + b)
        for w in words:
            s = seqs[w]
            if len(s) < 2:
                continue
            i, out = 0, []
            while i < len(s):
                if i + 1 < len(s) and s[i] == a and s[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            seqs[w] = out
    return BPE(merges)
