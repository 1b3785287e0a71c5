/* Byte-level BPE (the "gpt2" vocabularies): the text is cut into pre-tokens by the
 * pre-tokenizer's regexes (PCRE2, run exactly as the reference tokenizers write them), each
 * pre-token's bytes are mapped to characters, and adjacent symbols are merged by rank, lowest
 * first (ties: leftmost). tokenizer.json's BPE over characters (SentencePiece converted, with
 * byte fallback) goes the same way from the characters themselves. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "tokenizer.h"
#include "base/unicode.h"

/* ---- pre-tokenizers ------------------------------------------------------------------------ */

#define GPT2_RE "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"

static const char *const pre_gpt2[] = {GPT2_RE, NULL};
static const char *const pre_default[] = {"[\\p{P}\\$\\+<=>\\^~\\|]+", GPT2_RE, "\\p{N}+", "[0-9][0-9][0-9]", NULL};
static const char *const pre_llama3[] = {
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL};
static const char *const pre_qwen2[] = {
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL};
static const char *const pre_deepseek_llm[] = {
    "[\\r\\n]",
    "\\s?[A-Za-z\xc2\xb5\xc3\x80-\xc3\x96\xc3\x98-\xc3\xb6\xc3\xb8-\xc6\xba\xc6\xbc-\xc6\xbf\xc7\x84-\xca\x93\xca\x95-\xca\xaf"
    "\xcd\xb0-\xcd\xb3\xcd\xb6\xcd\xb7\xcd\xbb-\xcd\xbd\xcd\xbf\xce\x86\xce\x88-\xce\x8a\xce\x8c\xce\x8e-\xce\xa1\xce\xa3-\xcf\xb5"
    "\xcf\xb7-\xd2\x81\xd2\x8a-\xd4\xaf\xd4\xb1-\xd5\x96\xe1\x82\xa0-\xe1\x83\x85\xe1\x8e\xa0-\xe1\x8f\xb5\xe1\x8f\xb8-\xe1\x8f\xbd"
    "\xe1\xb2\x90-\xe1\xb2\xba\xe1\xb2\xbd-\xe1\xb2\xbf\xe1\xb4\x80-\xe1\xb4\xab\xe1\xb5\xab-\xe1\xb5\xb7\xe1\xb5\xb9-\xe1\xb6\x9a"
    "\xe1\xb8\x80-\xe1\xbc\x95\xe1\xbc\x98-\xe1\xbc\x9d\xe1\xbc\xa0-\xe1\xbd\x85\xe1\xbd\x88-\xe1\xbd\x8d\xe1\xbd\x90-\xe1\xbd\x97"
    "\xe1\xbd\x99\xe1\xbd\x9b\xe1\xbd\x9d\xe1\xbd\x9f-\xe1\xbd\xbd\xe1\xbe\x80-\xe1\xbe\xb4\xe1\xbe\xb6-\xe1\xbe\xbc\xe1\xbe\xbe"
    "\xe1\xbf\x82-\xe1\xbf\x84\xe1\xbf\x86-\xe1\xbf\x8c\xe1\xbf\x90-\xe1\xbf\x93\xe1\xbf\x96-\xe1\xbf\x9b\xe1\xbf\xa0-\xe1\xbf\xac"
    "\xe1\xbf\xb2-\xe1\xbf\xb4\xe1\xbf\xb6-\xe1\xbf\xbc\xe2\x84\x82\xe2\x84\x87\xe2\x84\x8a-\xe2\x84\x93\xe2\x84\x95\xe2\x84\x99-\xe2\x84\x9d"
    "\xe2\x84\xa4\xe2\x84\xa6\xe2\x84\xa8\xe2\x84\xaa-\xe2\x84\xad\xe2\x84\xaf-\xe2\x84\xb4\xe2\x84\xb9\xe2\x84\xbc-\xe2\x84\xbf"
    "\xe2\x85\x85-\xe2\x85\x89\xe2\x85\x8e\xe2\x86\x83\xe2\x86\x84\xe2\xb0\x80-\xe2\xb1\xbb\xe2\xb1\xbe-\xe2\xb3\xa4\xe2\xb3\xab-\xe2\xb3\xae"
    "\xe2\xb3\xb2\xe2\xb3\xb3\xea\x99\x80-\xea\x99\xad\xea\x9a\x80-\xea\x9a\x9b\xea\x9c\xa2-\xea\x9d\xaf\xea\x9d\xb1-\xea\x9e\x87"
    "\xea\x9e\x8b-\xea\x9e\x8e\xea\xad\xb0-\xea\xae\xbf\xef\xac\x80-\xef\xac\x86\xef\xac\x93-\xef\xac\x97\xef\xbc\xa1-\xef\xbc\xba"
    "\xef\xbd\x81-\xef\xbd\x9a\xf0\x90\x90\x80-\xf0\x90\x91\x8f\xf0\x90\x92\xb0-\xf0\x90\x93\x93\xf0\x90\x93\x98-\xf0\x90\x93\xbb"
    "\xf0\x90\xb2\x80-\xf0\x90\xb2\xb2\xf0\x90\xb3\x80-\xf0\x90\xb3\xb2\xf0\x91\xa2\xa0-\xf0\x91\xa3\x9f\xf0\x9e\xa4\x80-\xf0\x9e\xa5\x83]+",
    "\\s?[!-/:-~\xef\xbc\x81-\xef\xbc\x8f\xef\xbc\x9a-\xef\xbd\x9e\xe2\x80\x98-\xe2\x80\x9f\xe3\x80\x80-\xe3\x80\x82]+",
    "\\s+$",
    "[\xe4\xb8\x80-\xe9\xbe\xa5\xe0\xa0\x80-\xe4\xb8\x80\xea\xb0\x80-\xed\x9f\xbf]+",
    "\\p{N}+",
    NULL};
static const char *const pre_deepseek_coder[] = {
    "[\\r\\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[\xe4\xb8\x80-\xe9\xbe\xa5\xe0\xa0\x80-\xe4\xb8\x80\xea\xb0\x80-\xed\x9f\xbf]+",
    "\\p{N}", NULL};
static const char *const pre_falcon[] = {"[\\p{P}\\$\\+<=>\\^~\\|`]+", GPT2_RE, "[0-9][0-9][0-9]", NULL};
static const char *const pre_starcoder[] = {"\\p{N}", GPT2_RE, NULL};

static const struct {
    const char *name;
    const char *const *patterns;
} pretoks[] = {
    {"default", pre_default},        {"gpt-2", pre_gpt2},       {"gpt2", pre_gpt2},
    {"mpt", pre_gpt2},               {"olmo", pre_gpt2},        {"llama-bpe", pre_llama3},
    {"llama3", pre_llama3},          {"llama-v3", pre_llama3},  {"dbrx", pre_llama3},
    {"smaug-bpe", pre_llama3},       {"qwen2", pre_qwen2},      {"deepseek-r1-qwen", pre_qwen2},
    {"stablelm2", pre_qwen2},        {"deepseek-llm", pre_deepseek_llm},
    {"deepseek-coder", pre_deepseek_coder},                     {"falcon", pre_falcon},
    {"starcoder", pre_starcoder},    {"refact", pre_starcoder}, {"command-r", pre_starcoder},
    {"smollm", pre_starcoder},       {"codeshell", pre_starcoder},
};

const char *const *tok_pretok_patterns(const char *pre) {
    for (size_t i = 0; i < sizeof pretoks / sizeof pretoks[0]; i++)
        if (strcmp(pretoks[i].name, pre) == 0) return pretoks[i].patterns;
    return NULL;
}

hai_status tok_compile_regex(hai_tokenizer *t, const char *const *patterns, int n, hai_error *err) {
    if (n > TOK_MAX_REGEX) return hai_fail(err, HAI_ERR_UNSUPPORTED, "tokenizer: %d pre-tokenizer patterns (at most %d)", n, TOK_MAX_REGEX);
    for (int i = 0; i < n; i++) {
        int code;
        PCRE2_SIZE off;
        /* UTF + UCP: \p{..}, \s, \w follow Unicode; MATCH_INVALID_UTF: bytes that are not
         * UTF-8 never match (they end up in the gaps between matches, then as byte tokens) */
        pcre2_code *re = pcre2_compile((PCRE2_SPTR)patterns[i], PCRE2_ZERO_TERMINATED,
                                       PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &code, &off, NULL);
        if (!re) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(code, msg, sizeof msg);
            return hai_fail(err, HAI_ERR_FORMAT, "tokenizer: pre-tokenizer pattern %d: %s at offset %zu", i, (char *)msg,
                            (size_t)off);
        }
        pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* falls back to the interpreter if JIT is absent */
        t->regex[t->n_regex++] = re;
    }
    return HAI_OK;
}

void tok_free_regex(hai_tokenizer *t) {
    for (int i = 0; i < t->n_regex; i++) pcre2_code_free(t->regex[i]);
    t->n_regex = 0;
}

/* ---- splitting ------------------------------------------------------------------------------ */

typedef struct span {
    size_t off, len;
} span;

typedef struct spans {
    span *v;
    size_t n, cap;
} spans;

static bool spans_push(spans *s, size_t off, size_t len) {
    if (!len) return true;
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        span *v = realloc(s->v, cap * sizeof *v);
        if (!v) return false;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = (span){off, len};
    return true;
}

/* One piece of a span cut by a regex (a match, or inverted a gap, is a delimiter) added to out as
 * the behavior says, joined to the span's piece before it where the behavior asks: a delimiter to
 * the piece before (MergedWithPrevious) unless that is a delimiter too, a piece to the delimiter
 * before it (MergedWithNext), a delimiter to the delimiter before it (Contiguous). floor: the
 * first piece of this span in out; *prev_delim: whether the piece before was a delimiter. */
static bool cut(spans *out, size_t floor, tok_split how, size_t off, size_t len, bool delim, bool *prev_delim) {
    if (!len) return true;
    bool after = out->n > floor, was = *prev_delim;
    *prev_delim = delim;
    if (how == TOK_SPLIT_REMOVED && delim) return true;
    bool joins = after && ((how == TOK_SPLIT_MERGED_PREV && delim && !was) || (how == TOK_SPLIT_MERGED_NEXT && !delim && was) ||
                           (how == TOK_SPLIT_CONTIGUOUS && delim && was));
    if (joins) {
        out->v[out->n - 1].len = off + len - out->v[out->n - 1].off;
        return true;
    }
    return spans_push(out, off, len);
}

/* Splits each span by the matches of re, as the pre-tokenizer step's behavior says (tok_split;
 * inverted: the gaps are the delimiters). Each span is matched on its own, so anchors and
 * lookarounds see only it. */
static hai_status split(const pcre2_code *re, tok_split how, bool invert, const char *text, const spans *in, spans *out,
                        pcre2_match_data *md, hai_error *err) {
    out->n = 0;
    for (size_t i = 0; i < in->n; i++) {
        PCRE2_SPTR subj = (PCRE2_SPTR)(text + in->v[i].off);
        size_t len = in->v[i].len, pos = 0, last = 0, base = in->v[i].off, floor = out->n;
        bool open = false, ok = true;
        while (pos < len) {
            int rc = pcre2_match(re, subj, len, pos, 0, md, NULL);
            if (rc == PCRE2_ERROR_NOMATCH) break;
            if (rc < 0) {
                PCRE2_UCHAR msg[256];
                pcre2_get_error_message(rc, msg, sizeof msg);
                return hai_fail(err, HAI_ERR_INTERNAL, "tokenize: pre-tokenizer: %s", (char *)msg);
            }
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            size_t s = ov[0], e = ov[1];
            if (e == s) { /* empty match: no cut here; move on by one character */
                int l = hai_utf8_valid_len((const unsigned char *)subj + s, len - s, NULL);
                pos = s + (l ? (size_t)l : 1);
                continue;
            }
            ok = cut(out, floor, how, base + last, s - last, invert, &open) && cut(out, floor, how, base + s, e - s, !invert, &open);
            if (!ok) return hai_fail(err, HAI_ERR_NOMEM, "tokenize: out of memory");
            last = pos = e;
        }
        if (!cut(out, floor, how, base + last, len - last, invert, &open)) return hai_fail(err, HAI_ERR_NOMEM, "tokenize: out of memory");
    }
    return HAI_OK;
}

/* ---- merging --------------------------------------------------------------------------------- */

typedef struct bsym {
    int prev, next;
    int32_t id; /* token of the symbol's text, -1 when it is none */
    size_t off;
    uint32_t n; /* bytes of encoded text; 0 once merged away */
} bsym;

typedef struct bpair {
    int left, right;
    int32_t rank, result;
    uint32_t size;
} bpair;

typedef struct pheap {
    bpair *v;
    size_t n, cap;
} pheap;

static bool first(const bpair *a, const bpair *b) { return a->rank < b->rank || (a->rank == b->rank && a->left < b->left); }

static bool pheap_push(pheap *h, bpair x) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 64;
        bpair *v = realloc(h->v, cap * sizeof *v);
        if (!v) return false;
        h->v = v;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0 && first(&x, &h->v[(i - 1) / 2])) {
        h->v[i] = h->v[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->v[i] = x;
    return true;
}

static bpair pheap_pop(pheap *h) {
    bpair top = h->v[0], last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && first(&h->v[c + 1], &h->v[c])) c++;
        if (!first(&h->v[c], &last)) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n) h->v[i] = last;
    return top;
}

static bool add_pair(const hai_tokenizer *t, bsym *s, pheap *h, int l, int r) {
    if (l < 0 || r < 0) return true;
    int32_t result;
    int32_t rank = tok_merge_rank(t, s[l].id, s[r].id, &result);
    if (rank < 0) return true;
    return pheap_push(h, (bpair){l, r, rank, result, s[l].n + s[r].n});
}

/* Encodes one pre-token: its bytes as byte-level characters, then merges. */
static bool encode_word(const hai_tokenizer *t, const char *w, size_t wlen, char **enc, size_t *enc_cap, bsym **syms,
                        size_t *sym_cap, pheap *h, tok_vec *out) {
    if (*enc_cap < 2 * wlen) {
        char *p = realloc(*enc, 2 * wlen);
        if (!p) return false;
        *enc = p;
        *enc_cap = 2 * wlen;
    }
    if (*sym_cap < wlen) {
        bsym *p = realloc(*syms, wlen * sizeof *p);
        if (!p) return false;
        *syms = p;
        *sym_cap = wlen;
    }
    char *e = *enc;
    bsym *s = *syms;
    size_t elen = 0;
    int n = 0;
    if (t->bpe_chars) { /* characters as they are; one that is no token: its bytes' tokens, or <unk> */
        memcpy(e, w, wlen);
        elen = wlen;
        for (size_t i = 0; i < wlen;) {
            int l = hai_utf8_valid_len((const unsigned char *)w + i, wlen - i, NULL);
            if (!l) l = 1;
            int32_t id = tok_lookup(t, w + i, (size_t)l);
            bool bytes = id < 0 && t->byte_fallback;
            for (int k = 0; bytes && k < l; k++) bytes = t->byte_tok[(uint8_t)w[i + k]] >= 0;
            for (int k = 0; k < (bytes ? l : 1); k++, n++)
                s[n] = (bsym){n - 1, n + 1, bytes ? t->byte_tok[(uint8_t)w[i + k]] : id, i + (size_t)k, bytes ? 1u : (uint32_t)l};
            i += (size_t)l;
        }
        if (n) s[n - 1].next = -1;
    } else {
        for (size_t i = 0; i < wlen; i++) {
            const char *c = hai_bytelevel_char((uint8_t)w[i]);
            size_t cl = c[1] ? 2 : 1;
            memcpy(e + elen, c, cl);
            s[n] = (bsym){n - 1, i + 1 == wlen ? -1 : n + 1, t->byte_tok[(uint8_t)w[i]], elen, (uint32_t)cl};
            elen += cl;
            n++;
        }
    }
    if (t->ignore_merges) {
        int32_t whole = tok_lookup(t, e, elen);
        if (whole >= 0) {
            tok_vec_push(out, whole);
            return true;
        }
    }
    h->n = 0;
    for (int i = 1; i < n; i++)
        if (!add_pair(t, s, h, i - 1, i)) return false;
    while (h->n) {
        bpair p = pheap_pop(h);
        bsym *l = &s[p.left], *r = &s[p.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != p.size) continue; /* outdated */
        l->n += r->n;
        l->id = p.result;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) s[r->next].prev = p.left;
        if (!add_pair(t, s, h, l->prev, p.left) || !add_pair(t, s, h, p.left, l->next)) return false;
    }
    for (int i = 0, prev_unk = 0; i != -1; i = s[i].next) {
        if (s[i].id >= 0) {
            tok_vec_push(out, s[i].id);
        } else if (t->special[HAI_SPECIAL_UNK] >= 0 && !(t->fuse_unk && prev_unk)) { /* fuse_unk: one for a run */
            tok_vec_push(out, t->special[HAI_SPECIAL_UNK]);
        }
        prev_unk = s[i].id < 0;
    }
    return true;
}

hai_status tok_bpe_encode(const hai_tokenizer *t, const char *text, size_t len, tok_vec *out, hai_error *err) {
    if (len == 0) return HAI_OK;
    spans a = {0}, b = {0};
    pcre2_match_data *md = pcre2_match_data_create(4, NULL);
    char *enc = NULL;
    size_t enc_cap = 0, sym_cap = 0;
    bsym *syms = NULL;
    pheap h = {0};
    hai_status st = HAI_OK;
    if (!md || !spans_push(&a, 0, len)) {
        st = hai_fail(err, HAI_ERR_NOMEM, "tokenize: out of memory");
        goto done;
    }
    for (int r = 0; r < t->n_regex && !st; r++) {
        st = split(t->regex[r], (tok_split)t->regex_split[r], t->regex_invert[r], text, &a, &b, md, err);
        spans tmp = a;
        a = b;
        b = tmp;
    }
    for (size_t i = 0; i < a.n && !st; i++)
        if (!encode_word(t, text + a.v[i].off, a.v[i].len, &enc, &enc_cap, &syms, &sym_cap, &h, out))
            st = hai_fail(err, HAI_ERR_NOMEM, "tokenize: out of memory");
done:
    pcre2_match_data_free(md);
    free(a.v);
    free(b.v);
    free(enc);
    free(syms);
    free(h.v);
    return st;
}
