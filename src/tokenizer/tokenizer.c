/* Tokenizer core: the vocabulary tables, loading from GGUF, splitting out special tokens,
 * and detokenization (whole and streaming). The merge algorithms live in tok_spm.c / tok_bpe.c. */
#include "tokenizer.h"

#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/unicode.h"

/* ---- tables -------------------------------------------------------------------------------- */

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static uint64_t hash_u64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

static uint64_t pow2_at_least(uint64_t n) {
    uint64_t c = 16;
    while (c < n) c <<= 1;
    return c;
}

hai_status tok_alloc(hai_tokenizer **out, tok_model model, int32_t n_vocab, hai_error *err) {
    *out = NULL;
    if (n_vocab <= 0) return hai_fail(err, HAI_ERR_FORMAT, "tokenizer: empty vocabulary");
    hai_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return hai_fail(err, HAI_ERR_NOMEM, "tokenizer: out of memory");
    t->model = model;
    t->n_vocab = n_vocab;
    t->tok = calloc((size_t)n_vocab, sizeof *t->tok);
    t->eog = calloc((size_t)n_vocab, 1);
    /* the pool exists from the start: a vocabulary of empty texts still points its tokens into
     * memory (memcmp and memcpy take no NULL, even for 0 bytes) */
    t->pool = malloc(t->pool_cap = 64);
    if (!t->tok || !t->eog || !t->pool) {
        hai_tokenizer_free(t);
        return hai_fail(err, HAI_ERR_NOMEM, "tokenizer: out of memory for %d tokens", n_vocab);
    }
    for (int i = 0; i < HAI_SPECIAL_COUNT; i++) t->special[i] = -1;
    t->add_space_prefix = model == TOK_SPM;
    t->add_bos = model == TOK_SPM;
    *out = t;
    return HAI_OK;
}

hai_status tok_set(hai_tokenizer *t, int32_t id, const char *text, size_t len, float score, int attr, hai_error *err) {
    if (id < 0 || id >= t->n_vocab) return hai_fail(err, HAI_ERR_FORMAT, "tokenizer: token id %d out of range", id);
    if (len > UINT32_MAX) return hai_fail(err, HAI_ERR_FORMAT, "tokenizer: token %d is too long", id);
    if (t->pool_cap - t->pool_size < len) {
        size_t cap = t->pool_cap ? t->pool_cap : 1 << 16;
        while (cap - t->pool_size < len) cap *= 2;
        char *p = realloc(t->pool, cap);
        if (!p) return hai_fail(err, HAI_ERR_NOMEM, "tokenizer: out of memory");
        t->pool = p;
        t->pool_cap = cap;
    }
    if (len) memcpy(t->pool + t->pool_size, text, len);
    if (score != score) score = -INFINITY; /* a NaN score would make the merge order depend on comparisons that are all false */
    t->tok[id] = (tok_entry){.off = t->pool_size, .len = (uint32_t)len, .score = score,
                             .attr = (uint8_t)(attr >= 1 && attr <= 6 ? attr : HAI_TOKEN_NORMAL)};
    t->pool_size += len;
    return HAI_OK;
}

static const char *tok_str(const hai_tokenizer *t, int32_t id) { return t->pool + t->tok[id].off; }

int32_t tok_lookup(const hai_tokenizer *t, const char *text, size_t len) {
    if (!t->map) return -1;
    for (uint64_t i = hash_bytes(text, len) & t->map_mask;; i = (i + 1) & t->map_mask) {
        int32_t id = t->map[i];
        if (id < 0) return -1;
        if (t->tok[id].len == len && memcmp(tok_str(t, id), text, len) == 0) return id;
    }
}

hai_status tok_build_map(hai_tokenizer *t, hai_error *err) {
    uint64_t cap = pow2_at_least(2 * (uint64_t)t->n_vocab);
    t->map = malloc(cap * sizeof *t->map);
    if (!t->map) return hai_fail(err, HAI_ERR_NOMEM, "tokenizer: out of memory");
    memset(t->map, 0xff, cap * sizeof *t->map);
    t->map_mask = cap - 1;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        const char *s = tok_str(t, id);
        uint32_t n = t->tok[id].len;
        uint64_t i = hash_bytes(s, n) & t->map_mask;
        /* a duplicate text keeps its first (lowest) id, as the reference loaders do */
        bool dup = false;
        for (; t->map[i] >= 0; i = (i + 1) & t->map_mask) {
            int32_t o = t->map[i];
            if (t->tok[o].len == n && memcmp(tok_str(t, o), s, n) == 0) {
                dup = true;
                break;
            }
        }
        if (!dup) t->map[i] = id;
    }
    return HAI_OK;
}

hai_status tok_add_merge(hai_tokenizer *t, const char *a, size_t alen, const char *b, size_t blen, int32_t rank,
                         hai_error *err) {
    if (!t->merge_key) return hai_fail(err, HAI_ERR_INTERNAL, "tokenizer: merges added before the table");
    int32_t l = tok_lookup(t, a, alen), r = tok_lookup(t, b, blen);
    if (l < 0 || r < 0) return HAI_OK;
    char stack[256];
    char *ab = alen + blen <= sizeof stack ? stack : malloc(alen + blen);
    if (!ab) return hai_fail(err, HAI_ERR_NOMEM, "tokenizer: out of memory");
    memcpy(ab, a, alen);
    memcpy(ab + alen, b, blen);
    int32_t res = tok_lookup(t, ab, alen + blen);
    if (ab != stack) free(ab);
    if (res < 0) return HAI_OK;
    uint64_t key = (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
    uint64_t i = hash_u64(key) & t->merge_mask;
    for (; t->merge_key[i] != UINT64_MAX; i = (i + 1) & t->merge_mask)
        if (t->merge_key[i] == key) return HAI_OK; /* a repeated merge keeps its first rank */
    t->merge_key[i] = key;
    t->merge_rank[i] = rank;
    t->merge_result[i] = res;
    t->n_merges++;
    return HAI_OK;
}

hai_status tok_alloc_merges(hai_tokenizer *t, int64_t n, hai_error *err) {
    uint64_t cap = pow2_at_least(2 * (uint64_t)(n > 0 ? n : 1));
    t->merge_key = malloc(cap * sizeof *t->merge_key);
    t->merge_rank = malloc(cap * sizeof *t->merge_rank);
    t->merge_result = malloc(cap * sizeof *t->merge_result);
    if (!t->merge_key || !t->merge_rank || !t->merge_result)
        return hai_fail(err, HAI_ERR_NOMEM, "tokenizer: out of memory for %lld merges", (long long)n);
    memset(t->merge_key, 0xff, cap * sizeof *t->merge_key);
    t->merge_mask = cap - 1;
    return HAI_OK;
}

int32_t tok_merge_rank(const hai_tokenizer *t, int32_t left, int32_t right, int32_t *result) {
    if (!t->merge_key || left < 0 || right < 0) return -1;
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    for (uint64_t i = hash_u64(key) & t->merge_mask;; i = (i + 1) & t->merge_mask) {
        if (t->merge_key[i] == UINT64_MAX) return -1;
        if (t->merge_key[i] == key) {
            *result = t->merge_result[i];
            return t->merge_rank[i];
        }
    }
}

typedef struct len_id {
    uint32_t len;
    hai_token id;
} len_id;

static int cmp_len_id(const void *a, const void *b) {
    const len_id *x = a, *y = b;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Tokens that end a turn in the chat formats hai knows, besides EOS/EOT themselves. */
static const char *const eog_texts[] = {
    "<|eot_id|>", "<|eom_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
    "<|end_of_text|>", "<EOT>", ("<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"),
};

hai_status tok_finish(hai_tokenizer *t, const char *const *patterns, int n_patterns, hai_error *err) {
    hai_status st;
    if (!t->map && (st = tok_build_map(t, err))) return st;
    /* byte tokens */
    for (int b = 0; b < 256; b++) {
        if (t->model == TOK_SPM || t->bpe_chars) {
            char name[8];
            snprintf(name, sizeof name, "<0x%02X>", b);
            t->byte_tok[b] = tok_lookup(t, name, 6);
        } else {
            const char *c = hai_bytelevel_char((uint8_t)b);
            t->byte_tok[b] = tok_lookup(t, c, strlen(c));
        }
    }
    /* special tokens, longest first */
    len_id *order = malloc((size_t)t->n_vocab * sizeof *order);
    t->specials = malloc((size_t)t->n_vocab * sizeof *t->specials);
    if (!order || !t->specials) {
        free(order);
        return hai_fail(err, HAI_ERR_NOMEM, "tokenizer: out of memory");
    }
    t->n_specials = 0;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        uint8_t a = t->tok[id].attr;
        if ((a == HAI_TOKEN_CONTROL || a == HAI_TOKEN_USER_DEFINED || a == HAI_TOKEN_UNKNOWN) && t->tok[id].len)
            order[t->n_specials++] = (len_id){t->tok[id].len, id};
        size_t piece_max = t->tok[id].len * 2u + 4; /* generous: pieces never exceed this */
        if (piece_max > t->max_piece) t->max_piece = piece_max;
    }
    qsort(order, (size_t)t->n_specials, sizeof *order, cmp_len_id);
    for (int32_t i = 0; i < t->n_specials; i++) t->specials[i] = order[i].id;
    free(order);
    /* by first byte, longest first: all specials, and the user-defined ones alone */
    t->sp_all = malloc(((size_t)t->n_specials + 1) * sizeof *t->sp_all);
    t->sp_ud = malloc(((size_t)t->n_specials + 1) * sizeof *t->sp_ud);
    if (!t->sp_all || !t->sp_ud) return hai_fail(err, HAI_ERR_NOMEM, "tokenizer: out of memory");
    int32_t na = 0, nu = 0;
    for (int c = 0; c < 256; c++) {
        t->sp_start_all[c] = na;
        t->sp_start_ud[c] = nu;
        for (int32_t i = 0; i < t->n_specials; i++) {
            hai_token id = t->specials[i];
            if ((unsigned char)tok_str(t, id)[0] != c) continue;
            t->sp_all[na++] = id;
            if (t->tok[id].attr == HAI_TOKEN_USER_DEFINED) t->sp_ud[nu++] = id;
        }
    }
    t->sp_start_all[256] = na;
    t->sp_start_ud[256] = nu;
    /* SentencePiece: if no token has U+2581 after another character, merges never cross the
     * start of a space run, and the text can be encoded word by word (same result, far less work) */
    t->spm_split_words = t->model == TOK_SPM;
    for (int32_t id = 0; id < t->n_vocab && t->spm_split_words; id++)
        if (tok_spm_mark_after_text(tok_str(t, id), t->tok[id].len)) t->spm_split_words = false;
    /* end-of-generation set */
    for (int i = 0; i < HAI_SPECIAL_COUNT; i++)
        if ((i == HAI_SPECIAL_EOS || i == HAI_SPECIAL_EOT) && t->special[i] >= 0) t->eog[t->special[i]] = 1;
    for (size_t i = 0; i < sizeof eog_texts / sizeof eog_texts[0]; i++) {
        int32_t id = tok_lookup(t, eog_texts[i], strlen(eog_texts[i]));
        if (id >= 0 && (t->tok[id].attr == HAI_TOKEN_CONTROL || t->tok[id].attr == HAI_TOKEN_USER_DEFINED)) t->eog[id] = 1;
    }
    /* without an explicit EOT, the end-of-turn token of the chat format, if the vocabulary has one */
    static const char *const eot_texts[] = {"<|eot_id|>", "<|im_end|>", "<end_of_turn>", "<|end|>", "<EOT>"};
    for (size_t i = 0; i < 5 && t->special[HAI_SPECIAL_EOT] < 0; i++) {
        int32_t id = tok_lookup(t, eot_texts[i], strlen(eot_texts[i]));
        if (id >= 0 && t->eog[id]) t->special[HAI_SPECIAL_EOT] = id;
    }
    if (t->model == TOK_BPE) {
        const char *const *pats = patterns;
        int n = n_patterns;
        if (n == 0) {
            pats = tok_pretok_patterns(t->pre_name);
            if (!pats)
                return hai_fail(err, HAI_ERR_UNSUPPORTED, "tokenizer: unknown pre-tokenizer '%s'", t->pre_name);
            while (pats[n]) n++;
        }
        if ((st = tok_compile_regex(t, pats, n, err))) return st;
    }
    return HAI_OK;
}

void hai_tokenizer_free(hai_tokenizer *t) {
    if (!t) return;
    gtrie_free(t->gtrie);
    tok_free_regex(t);
    free(t->tok);
    free(t->pool);
    free(t->map);
    free(t->merge_key);
    free(t->merge_rank);
    free(t->merge_result);
    free(t->eog);
    free(t->specials);
    free(t->sp_all);
    free(t->sp_ud);
    free(t->chat_template);
    if (t->norm_free) t->norm_free(t->norm);
    free(t);
}

/* ---- loading from GGUF --------------------------------------------------------------------- */

static hai_token special_id(const hai_gguf *g, const char *key) {
    uint32_t v;
    return hai_gguf_get_u32(g, key, &v, NULL) == HAI_OK && v <= INT32_MAX ? (hai_token)v : -1;
}

hai_status hai_tokenizer_from_gguf(const hai_gguf *g, hai_tokenizer **out, hai_error *err) {
    if (!g || !out) return hai_fail(err, HAI_ERR_INVALID, "tokenizer: NULL argument");
    *out = NULL;
    hai_gguf_str model;
    hai_status st = hai_gguf_get_str(g, "tokenizer.ggml.model", &model, err);
    if (st) return st == HAI_ERR_NOT_FOUND ? hai_fail(err, HAI_ERR_FORMAT, "tokenizer: the file has no tokenizer (tokenizer.ggml.model)") : st;
    tok_model m;
    if (model.size == 5 && memcmp(model.data, "llama", 5) == 0) m = TOK_SPM;
    else if (model.size == 4 && memcmp(model.data, "gpt2", 4) == 0) m = TOK_BPE;
    else
        return hai_fail(err, HAI_ERR_UNSUPPORTED, "tokenizer: model '%.*s' is not supported (supported: llama, gpt2)",
                        (int)(model.size > 32 ? 32 : model.size), model.data);
    const hai_gguf_value *tokens, *scores = NULL, *types = NULL, *merges = NULL;
    if ((st = hai_gguf_get_arr(g, "tokenizer.ggml.tokens", HAI_GGUF_STRING, &tokens, err))) return st;
    if (tokens->arr.n == 0 || tokens->arr.n > INT32_MAX)
        return hai_fail(err, HAI_ERR_FORMAT, "tokenizer: vocabulary of %llu tokens", (unsigned long long)tokens->arr.n);
    (void)hai_gguf_get_arr(g, "tokenizer.ggml.scores", HAI_GGUF_FLOAT32, &scores, NULL);
    (void)hai_gguf_get_arr(g, "tokenizer.ggml.token_type", HAI_GGUF_INT32, &types, NULL);
    if (m == TOK_BPE && (st = hai_gguf_get_arr(g, "tokenizer.ggml.merges", HAI_GGUF_STRING, &merges, err)))
        return st == HAI_ERR_NOT_FOUND ? hai_fail(err, HAI_ERR_FORMAT, "tokenizer: a gpt2 vocabulary needs tokenizer.ggml.merges") : st;

    hai_tokenizer *t;
    if ((st = tok_alloc(&t, m, (int32_t)tokens->arr.n, err))) return st;
    for (int32_t i = 0; i < t->n_vocab && !st; i++) {
        const hai_gguf_str *s = &tokens->arr.strs[i];
        float score = scores && (uint64_t)i < scores->arr.n ? hai_gguf_arr_f32(scores, (uint64_t)i) : 0.0f;
        int attr = types && (uint64_t)i < types->arr.n ? hai_gguf_arr_i32(types, (uint64_t)i) : HAI_TOKEN_NORMAL;
        st = tok_set(t, i, s->data, s->size, score, attr, err);
    }
    hai_gguf_str pre = {"default", 7};
    (void)hai_gguf_get_str(g, "tokenizer.ggml.pre", &pre, NULL);
    snprintf(t->pre_name, sizeof t->pre_name, "%.*s", (int)(pre.size < 63 ? pre.size : 63), pre.data);
    if (!st) st = tok_build_map(t, err);
    if (!st && merges) {
        st = tok_alloc_merges(t, (int64_t)merges->arr.n, err);
        for (uint64_t i = 0; i < merges->arr.n && !st; i++) {
            const hai_gguf_str *s = &merges->arr.strs[i];
            /* "left right": byte-level tokens never contain a plain space */
            const char *sp = s->size > 1 ? memchr(s->data + 1, ' ', s->size - 1) : NULL;
            if (!sp) continue;
            size_t alen = (size_t)(sp - s->data);
            st = tok_add_merge(t, s->data, alen, sp + 1, s->size - alen - 1, (int32_t)i, err);
        }
    }
    t->special[HAI_SPECIAL_BOS] = special_id(g, "tokenizer.ggml.bos_token_id");
    t->special[HAI_SPECIAL_EOS] = special_id(g, "tokenizer.ggml.eos_token_id");
    t->special[HAI_SPECIAL_EOT] = special_id(g, "tokenizer.ggml.eot_token_id");
    t->special[HAI_SPECIAL_UNK] = special_id(g, "tokenizer.ggml.unknown_token_id");
    t->special[HAI_SPECIAL_PAD] = special_id(g, "tokenizer.ggml.padding_token_id");
    for (int i = 0; i < HAI_SPECIAL_COUNT; i++)
        if (t->special[i] >= t->n_vocab) t->special[i] = -1;
    bool b;
    if (hai_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b, NULL) == HAI_OK) t->add_bos = b;
    if (hai_gguf_get_bool(g, "tokenizer.ggml.add_eos_token", &b, NULL) == HAI_OK) t->add_eos = b;
    if (hai_gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &b, NULL) == HAI_OK) t->add_space_prefix = b;
    if (m == TOK_BPE) t->add_space_prefix = false;
    t->strip_leading_space = t->add_space_prefix; /* the space it adds, dropped again when decoding */
    /* Llama 3's tokenizer.json sets ignore_merges: a whole pre-token found in the vocabulary is
     * used as is. GGUF does not carry the flag; the llama3 pre-tokenizer implies it. */
    t->ignore_merges = strcmp(t->pre_name, "llama-bpe") == 0 || strcmp(t->pre_name, "llama3") == 0 ||
                       strcmp(t->pre_name, "llama-v3") == 0;
    hai_gguf_str tmpl;
    if (!st && hai_gguf_get_str(g, "tokenizer.chat_template", &tmpl, NULL) == HAI_OK) {
        t->chat_template = malloc(tmpl.size + 1);
        if (!t->chat_template) st = hai_fail(err, HAI_ERR_NOMEM, "tokenizer: out of memory");
        else {
            memcpy(t->chat_template, tmpl.data, tmpl.size);
            t->chat_template[tmpl.size] = '\0';
        }
    }
    /* Phi-3 marks its special tokens to swallow the whitespace after them (rstrip) */
    hai_gguf_str arch;
    if (!st && hai_gguf_get_str(g, "general.architecture", &arch, NULL) == HAI_OK && arch.size == 4 &&
        memcmp(arch.data, "phi3", 4) == 0) {
        for (int32_t i = 0; i < t->n_vocab; i++)
            if (t->tok[i].attr == HAI_TOKEN_CONTROL || (t->tok[i].attr == HAI_TOKEN_USER_DEFINED)) t->tok[i].flags |= TOK_RSTRIP;
        const char *keep[] = {"<unk>", "<s>", "<|endoftext|>"};
        for (int k = 0; k < 3; k++) {
            int32_t id = tok_lookup(t, keep[k], strlen(keep[k]));
            if (id >= 0) t->tok[id].flags &= (uint8_t)~TOK_RSTRIP;
        }
    }
    if (!st) st = tok_finish(t, NULL, 0, err);
    if (st) {
        hai_tokenizer_free(t);
        return st;
    }
    *out = t;
    return HAI_OK;
}

/* ---- tokenize ------------------------------------------------------------------------------ */

void tok_vec_push(tok_vec *o, hai_token id) {
    if (o->oom) return;
    if (o->n == o->cap) {
        size_t cap = o->cap ? 2 * o->cap : 64;
        hai_token *v = realloc(o->v, cap * sizeof *v);
        if (!v) {
            o->oom = true;
            return;
        }
        o->v = v;
        o->cap = cap;
    }
    o->v[o->n++] = id;
}

/* A piece of the input: raw text [off, off+len), or a special token (id >= 0). */
typedef struct frag {
    size_t off, len;
    hai_token id;
} frag;

typedef struct frag_vec {
    frag *v;
    size_t n, cap;
} frag_vec;

static bool frag_push(frag_vec *f, size_t off, size_t len, hai_token id) {
    if (f->n == f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 16;
        frag *v = realloc(f->v, cap * sizeof *v);
        if (!v) return false;
        f->v = v;
        f->cap = cap;
    }
    f->v[f->n++] = (frag){off, len, id};
    return true;
}

static bool is_ascii_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

/* Splits the special tokens out of the text, scanning left to right and taking the longest
 * special that starts at each position (leftmost-longest, as the reference tokenizers match
 * their added tokens). Controls only count when the caller asked for special parsing, and never
 * where they would touch a plain range (the caller's data inside a chat prompt); user-defined
 * tokens always do (they are ordinary text the vocabulary keeps whole). */
static bool partition(const hai_tokenizer *t, const char *text, size_t len, bool parse_special, const size_t (*plain)[2],
                      size_t n_plain, frag_vec *out) {
    frag_vec a = {0};
    const int32_t *start = parse_special ? t->sp_start_all : t->sp_start_ud;
    const hai_token *list = parse_special ? t->sp_all : t->sp_ud;
    size_t raw = 0, i = 0, r = 0; /* raw text runs from raw to i; plain[r] is the next range not behind i */
    while (i < len) {
        unsigned char c = (unsigned char)text[i];
        hai_token hit = -1;
        while (r < n_plain && plain[r][1] <= i) r++;
        /* a control may reach up to the next plain range, no further */
        size_t room = r < n_plain ? (plain[r][0] > i ? plain[r][0] - i : 0) : len - i;
        for (int32_t k = start[c]; k < start[c + 1]; k++) {
            const tok_entry *e = &t->tok[list[k]];
            if (e->len <= len - i && (e->len <= room || e->attr == HAI_TOKEN_USER_DEFINED) &&
                memcmp(text + i, tok_str(t, list[k]), e->len) == 0) {
                hit = list[k];
                break;
            }
        }
        if (hit < 0) {
            i++;
            continue;
        }
        const tok_entry *e = &t->tok[hit];
        size_t left_end = i, right = i + e->len;
        if (e->flags & TOK_LSTRIP)
            while (left_end > raw && is_ascii_space(text[left_end - 1])) left_end--;
        if (left_end > raw && !frag_push(&a, raw, left_end - raw, -1)) goto oom;
        if (!frag_push(&a, i, e->len, hit)) goto oom;
        if (e->flags & TOK_RSTRIP)
            while (right < len && is_ascii_space(text[right])) right++;
        raw = i = right;
    }
    if (raw < len && !frag_push(&a, raw, len - raw, -1)) goto oom;
    *out = a;
    return true;
oom:
    free(a.v);
    return false;
}

hai_status hai_tokenize(const hai_tokenizer *t, const char *text, size_t len, uint32_t flags, hai_token *ids,
                        size_t cap, size_t *n_ids, hai_error *err) {
    return tok_tokenize_marked(t, text, len, flags, NULL, 0, ids, cap, n_ids, err);
}

hai_status hai_tokenize_alloc(const hai_tokenizer *t, const char *text, size_t len, uint32_t flags, hai_token **ids, size_t *n_ids,
                              hai_error *err) {
    return tok_tokenize_marked_alloc(t, text, len, flags, NULL, 0, 0, ids, n_ids, err);
}

static hai_status tokenize_vec(const hai_tokenizer *t, const char *text, size_t len, uint32_t flags, const size_t (*plain)[2],
                               size_t n_plain, tok_vec *outv, hai_error *err);

hai_status tok_tokenize_marked(const hai_tokenizer *t, const char *text, size_t len, uint32_t flags, const size_t (*plain)[2],
                               size_t n_plain, hai_token *ids, size_t cap, size_t *n_ids, hai_error *err) {
    if (!t || (!text && len) || !n_ids || (!ids && cap) || (!plain && n_plain))
        return hai_fail(err, HAI_ERR_INVALID, "tokenize: NULL argument");
    *n_ids = 0;
    tok_vec out = {0};
    hai_status st = tokenize_vec(t, text, len, flags, plain, n_plain, &out, err);
    if (!st) {
        *n_ids = out.n;
        if (out.n > cap) st = hai_fail(err, HAI_ERR_LIMIT, "tokenize: %zu tokens do not fit in %zu", out.n, cap);
        else if (out.n) memcpy(ids, out.v, out.n * sizeof *ids);
    }
    free(out.v);
    return st;
}

hai_status tok_tokenize_marked_alloc(const hai_tokenizer *t, const char *text, size_t len, uint32_t flags, const size_t (*plain)[2],
                                     size_t n_plain, size_t room, hai_token **ids, size_t *n_ids, hai_error *err) {
    if (!t || (!text && len) || !n_ids || !ids || (!plain && n_plain) || room > 16)
        return hai_fail(err, HAI_ERR_INVALID, "tokenize: NULL argument");
    *ids = NULL, *n_ids = 0;
    tok_vec out = {0};
    for (size_t i = 0; i < room; i++) tok_vec_push(&out, -1);
    hai_status st = tokenize_vec(t, text, len, flags, plain, n_plain, &out, err);
    if (!st && !out.n) return HAI_OK;
    if (st) {
        free(out.v);
        return st;
    }
    *ids = out.v, *n_ids = out.n - room;
    return HAI_OK;
}

/* Text -> ids appended to *outv (which the caller frees, whatever the status). */
static hai_status tokenize_vec(const hai_tokenizer *t, const char *text, size_t len, uint32_t flags, const size_t (*plain)[2],
                               size_t n_plain, tok_vec *outv, hai_error *err) {
    if (!t || (!text && len) || (!plain && n_plain)) return hai_fail(err, HAI_ERR_INVALID, "tokenize: NULL argument");
    tok_vec out = *outv;
    frag_vec frags = {0};
    hai_status st = HAI_OK;
    bool add = flags & HAI_TOKENIZE_ADD_SPECIAL;
    if (add && t->add_bos && t->special[HAI_SPECIAL_BOS] >= 0) tok_vec_push(&out, t->special[HAI_SPECIAL_BOS]);
    if (!partition(t, text, len, flags & HAI_TOKENIZE_PARSE_SPECIAL, plain, n_plain, &frags)) {
        st = hai_fail(err, HAI_ERR_NOMEM, "tokenize: out of memory");
        goto done;
    }
    /* SentencePiece puts a space before text that starts the input or follows a special token */
    bool prev_special = true;
    for (size_t i = 0; i < frags.n && !st; i++) {
        frag f = frags.v[i];
        if (f.id >= 0) {
            tok_vec_push(&out, f.id);
            prev_special = true;
            continue;
        }
        char *normed = NULL;
        size_t nlen = 0;
        if (t->normalize) { /* tokenizer.json: each stretch between added tokens on its own */
            if ((st = t->normalize(t->norm, text + f.off, f.len, i == 0, &normed, &nlen, err))) break;
            f.off = 0, f.len = nlen;
        }
        const char *src = normed ? normed : text;
        if (t->model == TOK_SPM) {
            if (t->add_space_prefix && prev_special) {
                char *buf = malloc(f.len + 1);
                if (!buf) {
                    st = hai_fail(err, HAI_ERR_NOMEM, "tokenize: out of memory");
                    break;
                }
                buf[0] = ' ';
                memcpy(buf + 1, src + f.off, f.len);
                tok_spm_encode(t, buf, f.len + 1, &out);
                free(buf);
            } else {
                tok_spm_encode(t, src + f.off, f.len, &out);
            }
        } else {
            st = tok_bpe_encode(t, src + f.off, f.len, &out, err);
        }
        free(normed);
        prev_special = false;
    }
    if (!st && add && t->add_eos && t->special[HAI_SPECIAL_EOS] >= 0) tok_vec_push(&out, t->special[HAI_SPECIAL_EOS]);
    if (!st && out.oom) st = hai_fail(err, HAI_ERR_NOMEM, "tokenize: out of memory");
done:
    *outv = out;
    free(frags.v);
    return st;
}

/* ---- detokenize ---------------------------------------------------------------------------- */

/* Appends the bytes token id stands for to buf (room for t->max_piece bytes); returns the count. */
static size_t piece(const hai_tokenizer *t, hai_token id, uint32_t flags, char *buf) {
    const tok_entry *e = &t->tok[id];
    const char *s = tok_str(t, id);
    switch (e->attr) {
    case HAI_TOKEN_CONTROL:
    case HAI_TOKEN_UNKNOWN:
        if (!(flags & HAI_DETOK_SPECIAL)) return 0;
        memcpy(buf, s, e->len);
        return e->len;
    case HAI_TOKEN_USER_DEFINED:
        if (t->bpe_chars) break; /* tokenizer.json's decoder takes added tokens too: Gemma's "▁▁" is two spaces */
        memcpy(buf, s, e->len);
        return e->len;
    case HAI_TOKEN_BYTE:
        if ((t->model == TOK_SPM || t->bpe_chars) && e->len == 6) {
            unsigned v;
            if (sscanf(s, "<0x%2X>", &v) == 1) {
                buf[0] = (char)v;
                return 1;
            }
        }
        break;
    case HAI_TOKEN_UNUSED:
        return 0;
    default:
        break;
    }
    size_t n = 0;
    if (t->model == TOK_SPM || t->bpe_chars) {
        /* U+2581 (E2 96 81) is SentencePiece's space */
        for (uint32_t i = 0; i < e->len;) {
            if (i + 3 <= e->len && (unsigned char)s[i] == 0xE2 && (unsigned char)s[i + 1] == 0x96 &&
                (unsigned char)s[i + 2] == 0x81) {
                buf[n++] = ' ';
                i += 3;
            } else {
                buf[n++] = s[i++];
            }
        }
        return n;
    }
    /* byte-level BPE: every character stands for one byte */
    for (uint32_t i = 0; i < e->len;) {
        uint32_t cp;
        int l = hai_utf8_valid_len((const unsigned char *)s + i, e->len - i, &cp);
        int byte = l ? hai_bytelevel_byte(cp) : -1;
        if (byte >= 0) {
            buf[n++] = (char)byte;
            i += (uint32_t)l;
        } else { /* not a byte character: keep the text as written */
            int k = l ? l : 1;
            memcpy(buf + n, s + i, (size_t)k);
            n += (size_t)k;
            i += (uint32_t)k;
        }
    }
    return n;
}

hai_status hai_token_to_piece(const hai_tokenizer *t, hai_token id, uint32_t flags, char *buf, size_t cap, size_t *len,
                              hai_error *err) {
    if (!t || !len || (!buf && cap)) return hai_fail(err, HAI_ERR_INVALID, "token_to_piece: NULL argument");
    if (id < 0 || id >= t->n_vocab)
        return hai_fail(err, HAI_ERR_INVALID, "token_to_piece: token id %d is outside the vocabulary of %d", id, t->n_vocab);
    char *tmp = malloc(t->max_piece);
    if (!tmp) return hai_fail(err, HAI_ERR_NOMEM, "token_to_piece: out of memory");
    size_t n = piece(t, id, flags, tmp);
    *len = n;
    hai_status st = HAI_OK;
    if (n > cap) st = hai_fail(err, HAI_ERR_LIMIT, "token_to_piece: %zu bytes do not fit in %zu", n, cap);
    else if (n) memcpy(buf, tmp, n);
    free(tmp);
    return st;
}

hai_status hai_detokenize(const hai_tokenizer *t, const hai_token *ids, size_t n, uint32_t flags, char *buf,
                          size_t cap, size_t *len, hai_error *err) {
    if (!t || (!ids && n) || !len || (!buf && cap)) return hai_fail(err, HAI_ERR_INVALID, "detokenize: NULL argument");
    *len = 0;
    char *tmp = malloc(t->max_piece);
    if (!tmp) return hai_fail(err, HAI_ERR_NOMEM, "detokenize: out of memory");
    size_t total = 0;
    bool first_text = true;
    hai_status st = HAI_OK;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_vocab) {
            st = hai_fail(err, HAI_ERR_INVALID, "detokenize: token id %d is outside the vocabulary of %d", ids[i], t->n_vocab);
            break;
        }
        size_t k = piece(t, ids[i], flags, tmp);
        const char *p = tmp;
        /* drop the space SentencePiece added in front of the text */
        if (first_text && k > 0) {
            if (t->strip_leading_space && !(flags & HAI_DETOK_KEEP_LEADING_SPACE) && t->tok[ids[i]].attr == HAI_TOKEN_NORMAL &&
                p[0] == ' ') {
                p++;
                k--;
            }
            first_text = false;
        }
        if (total + k <= cap) memcpy(buf + total, p, k);
        total += k;
    }
    free(tmp);
    if (st) return st;
    *len = total;
    if (total > cap) return hai_fail(err, HAI_ERR_LIMIT, "detokenize: %zu bytes do not fit in %zu", total, cap);
    return HAI_OK;
}

/* ---- streaming ------------------------------------------------------------------------------- */

void hai_detok_stream_init(hai_detok_stream *s, uint32_t flags) {
    memset(s, 0, sizeof *s);
    s->flags = flags;
}

static const char replacement[3] = {(char)0xEF, (char)0xBF, (char)0xBD};

/* Length of the maximal prefix of s that is a valid start of a UTF-8 sequence (a "maximal
 * subpart" in Unicode's terms); at least 1. */
static int maximal_subpart(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    int need = hai_utf8_lead_len(c);
    if (need == 1) return 1;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c == 0xE0) lo = 0xA0;
    else if (c == 0xED) hi = 0x9F;
    else if (c == 0xF0) lo = 0x90;
    else if (c == 0xF4) hi = 0x8F;
    int k = 1;
    while (k < need && (size_t)k < n) {
        unsigned char lo_k = k == 1 ? lo : 0x80, hi_k = k == 1 ? hi : 0xBF;
        if (s[k] < lo_k || s[k] > hi_k) break;
        k++;
    }
    return k;
}

/* Emits the complete characters of in[0..n) into out, replacing invalid bytes with U+FFFD;
 * returns the count of trailing bytes that may still become a character (kept pending). */
static size_t emit_valid(const unsigned char *in, size_t n, char *out, size_t *w, bool final) {
    size_t i = 0;
    while (i < n) {
        int l = hai_utf8_valid_len(in + i, n - i, NULL);
        if (l) {
            memcpy(out + *w, in + i, (size_t)l);
            *w += (size_t)l;
            i += (size_t)l;
            continue;
        }
        int sub = maximal_subpart(in + i, n - i);
        if (!final && i + (size_t)sub == n && sub < hai_utf8_lead_len(in[i])) return n - i; /* wait for more */
        memcpy(out + *w, replacement, 3);
        *w += 3;
        i += (size_t)sub;
    }
    return 0;
}

hai_status hai_detok_stream_push(const hai_tokenizer *t, hai_detok_stream *s, hai_token id, char *out, size_t cap,
                                 size_t *len, hai_error *err) {
    if (!t || !s || !out || !len) return hai_fail(err, HAI_ERR_INVALID, "detok_stream: NULL argument");
    *len = 0;
    if (id < 0 || id >= t->n_vocab)
        return hai_fail(err, HAI_ERR_INVALID, "detok_stream: token id %d is outside the vocabulary of %d", id, t->n_vocab);
    /* pending (<4) + piece; invalid bytes may grow to 3 bytes each on output */
    size_t room = 3 * (t->max_piece + 4);
    if (cap < t->max_piece + 16) return hai_fail(err, HAI_ERR_INVALID, "detok_stream: buffer of %zu bytes is too small", cap);
    unsigned char *tmp = malloc(t->max_piece + 4);
    char *o = malloc(room);
    if (!tmp || !o) {
        free(tmp);
        free(o);
        return hai_fail(err, HAI_ERR_NOMEM, "detok_stream: out of memory");
    }
    memcpy(tmp, s->pending, (size_t)s->n_pending);
    size_t k = piece(t, id, s->flags, (char *)tmp + s->n_pending);
    unsigned char *p = tmp + s->n_pending;
    if (!s->started && k > 0) {
        if (t->strip_leading_space && !(s->flags & HAI_DETOK_KEEP_LEADING_SPACE) && t->tok[id].attr == HAI_TOKEN_NORMAL &&
            p[0] == ' ') {
            memmove(p, p + 1, k - 1);
            k--;
        }
        s->started = true;
    }
    size_t n = (size_t)s->n_pending + k, w = 0;
    size_t keep = emit_valid(tmp, n, o, &w, false);
    memcpy(s->pending, tmp + n - keep, keep);
    s->n_pending = (int)keep;
    hai_status st = HAI_OK;
    if (w > cap) st = hai_fail(err, HAI_ERR_LIMIT, "detok_stream: %zu bytes do not fit in %zu", w, cap);
    else {
        memcpy(out, o, w);
        *len = w;
    }
    free(tmp);
    free(o);
    return st;
}

size_t hai_detok_stream_flush(hai_detok_stream *s, char *out) {
    size_t w = 0;
    emit_valid(s->pending, (size_t)s->n_pending, out, &w, true);
    s->n_pending = 0;
    return w;
}

/* ---- accessors ------------------------------------------------------------------------------ */

int32_t hai_tokenizer_n_vocab(const hai_tokenizer *t) { return t->n_vocab; }
const char *hai_tokenizer_model(const hai_tokenizer *t) { return t->model == TOK_SPM ? "llama" : "gpt2"; }
const char *hai_tokenizer_pre(const hai_tokenizer *t) { return t->pre_name; }
hai_token hai_tokenizer_special(const hai_tokenizer *t, hai_special_token w) {
    return (unsigned)w < HAI_SPECIAL_COUNT ? t->special[w] : -1;
}
bool hai_tokenizer_add_bos(const hai_tokenizer *t) { return t->add_bos; }
bool hai_tokenizer_is_eog(const hai_tokenizer *t, hai_token id) { return id >= 0 && id < t->n_vocab && t->eog[id]; }
hai_token_attr hai_tokenizer_attr(const hai_tokenizer *t, hai_token id) {
    return id >= 0 && id < t->n_vocab ? (hai_token_attr)t->tok[id].attr : HAI_TOKEN_UNUSED;
}
const char *hai_tokenizer_text(const hai_tokenizer *t, hai_token id, size_t *len) {
    if (id < 0 || id >= t->n_vocab) return NULL;
    if (len) *len = t->tok[id].len;
    return tok_str(t, id);
}
hai_token hai_tokenizer_find(const hai_tokenizer *t, const char *text, size_t len) { return tok_lookup(t, text, len); }
const char *hai_tokenizer_chat_template(const hai_tokenizer *t) { return t->chat_template; }
size_t hai_tokenizer_max_piece(const hai_tokenizer *t) { return t->max_piece; }

size_t tok_memory_bytes(const hai_tokenizer *t) {
    size_t n = sizeof *t + (size_t)t->n_vocab * (sizeof *t->tok + 1) + t->pool_cap + (t->map ? (size_t)(t->map_mask + 1) * sizeof *t->map : 0);
    if (t->merge_key) n += (size_t)(t->merge_mask + 1) * (sizeof *t->merge_key + sizeof *t->merge_rank + sizeof *t->merge_result);
    n += (size_t)t->n_specials * 3 * sizeof(hai_token);
    if (t->chat_template) n += strlen(t->chat_template) + 1;
    return n;
}
