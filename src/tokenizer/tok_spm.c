/* SentencePiece-style tokenization (the "llama" vocabularies): spaces become U+2581, the text
 * is split into characters, and adjacent pairs are merged greedily, the pair whose merged text
 * is the token with the highest score first (ties: leftmost). What no token covers falls back
 * to byte tokens <0xXX>. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"
#include "base/unicode.h"

typedef struct sym {
    int prev, next;
    size_t off;
    uint32_t n;
} sym;

typedef struct bigram {
    int left, right;
    float score;
    uint32_t size;
} bigram;

typedef struct heap {
    bigram *v;
    size_t n, cap;
    bool oom;
} heap;

/* a before b: higher score, then the leftmost */
static bool before(const bigram *a, const bigram *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static void heap_push(heap *h, bigram x) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 64;
        bigram *v = realloc(h->v, cap * sizeof *v);
        if (!v) {
            h->oom = true;
            return;
        }
        h->v = v;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0 && before(&x, &h->v[(i - 1) / 2])) {
        h->v[i] = h->v[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->v[i] = x;
}

static bigram heap_pop(heap *h) {
    bigram top = h->v[0], last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && before(&h->v[c + 1], &h->v[c])) c++;
        if (!before(&h->v[c], &last)) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n) h->v[i] = last;
    return top;
}

static void try_bigram(const hai_tokenizer *t, const char *buf, sym *s, heap *h, int left, int right) {
    if (left < 0 || right < 0) return;
    uint32_t size = s[left].n + s[right].n;
    int32_t id = tok_lookup(t, buf + s[left].off, size);
    if (id < 0) return;
    heap_push(h, (bigram){left, right, t->tok[id].score, size});
}

static bool is_mark(const char *s) {
    return (unsigned char)s[0] == 0xE2 && (unsigned char)s[1] == 0x96 && (unsigned char)s[2] == 0x81;
}

bool tok_spm_mark_after_text(const char *s, size_t n) {
    for (size_t k = 1; k + 3 <= n; k++)
        if (is_mark(s + k) && (k < 3 || !is_mark(s + k - 3))) return true;
    return false;
}

/* Merges one stretch of escaped text; s and h are scratch space of at least len entries. */
static void encode_segment(const hai_tokenizer *t, const char *buf, size_t blen, sym *s, heap *h, tok_vec *out) {
    int n = 0;
    for (size_t off = 0; off < blen;) {
        int l = hai_utf8_valid_len((const unsigned char *)buf + off, blen - off, NULL);
        if (!l) l = 1; /* a byte that is not valid UTF-8 stands alone (and falls back to <0xXX>) */
        s[n] = (sym){n - 1, off + (size_t)l == blen ? -1 : n + 1, off, (uint32_t)l};
        off += (size_t)l;
        n++;
    }
    h->n = 0;
    for (int i = 1; i < n; i++) try_bigram(t, buf, s, h, i - 1, i);
    while (h->n && !h->oom) {
        bigram b = heap_pop(h);
        sym *l = &s[b.left], *r = &s[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size) continue; /* outdated */
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) s[r->next].prev = b.left;
        try_bigram(t, buf, s, h, l->prev, b.left);
        try_bigram(t, buf, s, h, b.left, l->next);
    }
    if (h->oom) out->oom = true;
    for (int i = 0; i != -1 && n > 0; i = s[i].next) {
        int32_t id = tok_lookup(t, buf + s[i].off, s[i].n);
        if (id >= 0) {
            tok_vec_push(out, id);
            continue;
        }
        if (t->byte_tok[(unsigned char)buf[s[i].off]] < 0) { /* no byte tokens: one <unk> for the character */
            if (t->special[HAI_SPECIAL_UNK] >= 0) tok_vec_push(out, t->special[HAI_SPECIAL_UNK]);
            continue;
        }
        for (uint32_t k = 0; k < s[i].n; k++) {
            hai_token b = t->byte_tok[(unsigned char)buf[s[i].off + k]];
            if (b < 0) b = t->special[HAI_SPECIAL_UNK];
            if (b >= 0) tok_vec_push(out, b);
        }
    }
}

void tok_spm_encode(const hai_tokenizer *t, const char *text, size_t len, tok_vec *out) {
    if (len == 0) return;
    /* escape spaces: each ' ' becomes the 3 bytes of U+2581 */
    size_t n_sp = 0;
    for (size_t i = 0; i < len; i++) n_sp += text[i] == ' ';
    size_t blen = len + 2 * n_sp;
    char *buf = malloc(blen);
    sym *s = malloc(blen * sizeof *s);
    heap h = {0};
    if (!buf || !s) {
        out->oom = true;
        goto done;
    }
    for (size_t i = 0, j = 0; i < len; i++) {
        if (text[i] == ' ') {
            buf[j++] = (char)0xE2, buf[j++] = (char)0x96, buf[j++] = (char)0x81;
        } else {
            buf[j++] = text[i];
        }
    }
    if (!t->spm_split_words) {
        encode_segment(t, buf, blen, s, &h, out);
        goto done;
    }
    /* cut before every space mark that follows other text: no token spans such a cut */
    size_t seg = 0;
    for (size_t k = 1; k + 3 <= blen; k++) {
        if (is_mark(buf + k) && (k < 3 || !is_mark(buf + k - 3))) {
            encode_segment(t, buf + seg, k - seg, s, &h, out);
            seg = k;
        }
    }
    encode_segment(t, buf + seg, blen - seg, s, &h, out);
done:
    free(buf);
    free(s);
    free(h.v);
}
