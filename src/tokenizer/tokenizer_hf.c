/* Import of a Hugging Face tokenizer.json (+ tokenizer_config.json) into a hai_tokenizer: BPE
 * models, byte-level or over characters with byte fallback (SentencePiece converted: Gemma,
 * Llama 2); normalizers (Sequence, NFC, NFKC, NFD, NFKD, Replace, Prepend, Strip);
 * pre-tokenizers (Split with every behavior, Metaspace, ByteLevel, Digits, Sequence); decoders
 * (ByteLevel, or Replace/ByteFallback/Fuse/Strip/Metaspace); added tokens, merges in either
 * format, BOS from the post-processor or the config, and the chat template. Anything else is a
 * clear error. Part of libhai_hf (it needs cJSON and utf8proc); the core library depends on
 * neither: the normalizer reaches it as a function (tokenizer.h). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "hai_hf.h"

#include "base/error.h"
#include "tokenizer.h"

#define GPT2_RE "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
#define MAX_JSON_SIZE (512u << 20)

static char *read_file(const char *path, size_t *len, hai_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        hai_fail(err, HAI_ERR_IO, "%s: cannot open", path);
        return NULL;
    }
    char *buf = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
    if (n < 0 || (unsigned long)n > MAX_JSON_SIZE || fseek(f, 0, SEEK_SET) != 0) {
        hai_fail(err, n < 0 ? HAI_ERR_IO : HAI_ERR_LIMIT, "%s: unreadable or larger than %u MiB", path, MAX_JSON_SIZE >> 20);
    } else if (!(buf = malloc((size_t)n + 1))) {
        hai_fail(err, HAI_ERR_NOMEM, "%s: out of memory", path);
    } else if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        hai_fail(err, HAI_ERR_IO, "%s: read failed", path);
        free(buf);
        buf = NULL;
    } else {
        buf[n] = '\0';
        *len = (size_t)n;
    }
    fclose(f);
    return buf;
}

static cJSON *parse_file(const char *path, hai_error *err) {
    size_t len;
    char *text = read_file(path, &len, err);
    if (!text) return NULL;
    cJSON *j = cJSON_ParseWithLength(text, len);
    free(text);
    if (!j) hai_fail(err, HAI_ERR_FORMAT, "%s: not valid JSON", path);
    return j;
}

static const char *jstr(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A token given as "text" or {"content": "text"} (tokenizer_config.json uses both). */
static const char *token_text(const cJSON *v) {
    if (cJSON_IsString(v)) return v->valuestring;
    if (cJSON_IsObject(v)) return jstr(v, "content");
    return NULL;
}

/* ---- normalizers ------------------------------------------------------------------------------ */

/* One step of the normalizer, run in order on each stretch of text between added tokens. The
 * pre-tokenizers that rewrite text before cutting it (Metaspace's replacement and prefix,
 * ByteLevel's prefix space) become steps too, after the normalizer's. */
typedef enum nkind {
    N_NFC, N_NFKC, N_NFD, N_NFKD,
    N_REPLACE,        /* every `from` by `to` */
    N_PREPEND,        /* `to` before a text that is not empty */
    N_PREFIX,         /* `to` before a text that does not start with it (first: only the input's first stretch) */
    N_STRIP,          /* whitespace off the left and/or right */
} nkind;

typedef struct nstep {
    nkind kind;
    char *from, *to;
    bool left, right, first;
} nstep;

#define MAX_NSTEPS 16

typedef struct hf_norm {
    nstep s[MAX_NSTEPS];
    int n;
} hf_norm;

static void norm_free(void *p) {
    hf_norm *nm = p;
    if (!nm) return;
    for (int i = 0; i < nm->n; i++) free(nm->s[i].from), free(nm->s[i].to);
    free(nm);
}

static hai_status add_step(hf_norm *nm, nkind k, const char *from, const char *to, hai_error *err) {
    if (nm->n == MAX_NSTEPS) return hai_fail(err, HAI_ERR_UNSUPPORTED, "tokenizer.json: more than %d normalizer steps", MAX_NSTEPS);
    nstep *st = &nm->s[nm->n];
    *st = (nstep){.kind = k};
    if ((from && !(st->from = strdup(from))) || (to && !(st->to = strdup(to)))) {
        free(st->from), free(st->to);
        return hai_fail(err, HAI_ERR_NOMEM, "tokenizer.json: out of memory");
    }
    nm->n++;
    return HAI_OK;
}

/* Rust's char::is_whitespace (HF's Strip) */
static bool is_ws(utf8proc_int32_t c) {
    return (c >= 9 && c <= 13) || c == 32 || c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
           c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* One step on buf[0..*n) (malloc'd, replaced by the result). */
static bool norm_step(const nstep *st, bool first, char **buf, size_t *n) {
    char *b = *buf, *r = NULL;
    size_t len = *n, rl = 0;
    switch (st->kind) {
    case N_NFC: case N_NFKC: case N_NFD: case N_NFKD: {
        int opt = UTF8PROC_STABLE | (st->kind == N_NFC || st->kind == N_NFKC ? UTF8PROC_COMPOSE : UTF8PROC_DECOMPOSE) |
                  (st->kind == N_NFKC || st->kind == N_NFKD ? UTF8PROC_COMPAT : 0);
        utf8proc_uint8_t *o = NULL;
        utf8proc_ssize_t k = len ? utf8proc_map((const utf8proc_uint8_t *)b, (utf8proc_ssize_t)len, &o, (utf8proc_option_t)opt) : 0;
        if (k == UTF8PROC_ERROR_NOMEM) return false;
        if (k < 0 || !o) { /* not UTF-8 (HF takes only strings): left as it is */
            free(o);
            return true;
        }
        r = (char *)o, rl = (size_t)k;
        break;
    }
    case N_REPLACE: {
        size_t fl = strlen(st->from), tl = strlen(st->to), hits = 0;
        if (!fl) return true;
        for (size_t i = 0; i + fl <= len;) {
            if (!memcmp(b + i, st->from, fl)) hits++, i += fl;
            else i++;
        }
        if (!hits) return true;
        if (!(r = malloc(len - hits * fl + hits * tl + 1))) return false;
        for (size_t i = 0; i < len;) {
            if (i + fl <= len && !memcmp(b + i, st->from, fl)) {
                memcpy(r + rl, st->to, tl);
                rl += tl, i += fl;
            } else {
                r[rl++] = b[i++];
            }
        }
        break;
    }
    case N_PREPEND: case N_PREFIX: {
        size_t tl = strlen(st->to);
        if (st->kind == N_PREPEND && !len) return true;
        if (st->kind == N_PREFIX && ((st->first && !first) || (len >= tl && !memcmp(b, st->to, tl)))) return true;
        if (!(r = malloc(len + tl + 1))) return false;
        memcpy(r, st->to, tl);
        memcpy(r + tl, b, len);
        rl = len + tl;
        break;
    }
    case N_STRIP: {
        size_t a = 0, e = len;
        utf8proc_int32_t c;
        utf8proc_ssize_t k;
        while (st->left && a < e && (k = utf8proc_iterate((const utf8proc_uint8_t *)b + a, (utf8proc_ssize_t)(e - a), &c)) > 0 && is_ws(c))
            a += (size_t)k;
        while (st->right && e > a) { /* back to the start of the last character */
            size_t s0 = e - 1;
            while (s0 > a && ((unsigned char)b[s0] & 0xC0) == 0x80) s0--;
            if (utf8proc_iterate((const utf8proc_uint8_t *)b + s0, (utf8proc_ssize_t)(e - s0), &c) <= 0 || !is_ws(c)) break;
            e = s0;
        }
        memmove(b, b + a, e - a);
        *n = e - a;
        return true;
    }
    }
    free(b);
    *buf = r, *n = rl;
    return true;
}

static hai_status hf_normalize(const void *p, const char *text, size_t len, bool first, char **out, size_t *out_len, hai_error *err) {
    const hf_norm *nm = p;
    char *b = malloc(len + 1);
    if (!b) return hai_fail(err, HAI_ERR_NOMEM, "tokenize: out of memory");
    memcpy(b, text, len);
    size_t n = len;
    for (int i = 0; i < nm->n; i++)
        if (!norm_step(&nm->s[i], first, &b, &n)) {
            free(b);
            return hai_fail(err, HAI_ERR_NOMEM, "tokenize: out of memory");
        }
    *out = b, *out_len = n;
    return HAI_OK;
}

static hai_status normalizer(const cJSON *nj, hf_norm *nm, hai_error *err) {
    const char *type = jstr(nj, "type");
    if (!type) return hai_fail(err, HAI_ERR_FORMAT, "tokenizer.json: normalizer without a type");
    if (!strcmp(type, "Sequence")) {
        const cJSON *e;
        hai_status st;
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(nj, "normalizers")) if ((st = normalizer(e, nm, err))) return st;
        return HAI_OK;
    }
    static const struct { const char *name; nkind k; } nf[] = {{"NFC", N_NFC}, {"NFKC", N_NFKC}, {"NFD", N_NFD}, {"NFKD", N_NFKD}};
    for (size_t i = 0; i < 4; i++)
        if (!strcmp(type, nf[i].name)) return add_step(nm, nf[i].k, NULL, NULL, err);
    if (!strcmp(type, "Replace")) {
        const char *from = jstr(cJSON_GetObjectItemCaseSensitive(nj, "pattern"), "String"), *to = jstr(nj, "content");
        if (!from || !to)
            return hai_fail(err, HAI_ERR_UNSUPPORTED, "tokenizer.json: Replace normalizer with a regex pattern is not supported (a string is)");
        return add_step(nm, N_REPLACE, from, to, err);
    }
    if (!strcmp(type, "Prepend")) {
        const char *to = jstr(nj, "prepend");
        if (!to) return hai_fail(err, HAI_ERR_FORMAT, "tokenizer.json: Prepend normalizer without a string");
        return add_step(nm, N_PREPEND, NULL, to, err);
    }
    if (!strcmp(type, "Strip")) {
        hai_status st = add_step(nm, N_STRIP, NULL, NULL, err);
        if (st) return st;
        nm->s[nm->n - 1].left = !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(nj, "strip_left"));
        nm->s[nm->n - 1].right = !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(nj, "strip_right"));
        return HAI_OK;
    }
    return hai_fail(err, HAI_ERR_UNSUPPORTED, "tokenizer.json: normalizer '%s' is not supported", type);
}

/* ---- pre-tokenizers ------------------------------------------------------------------------- */

/* Collects the pre-tokenizer's regex patterns (owned copies) and their behaviors. */
typedef struct pats {
    char *p[TOK_MAX_REGEX];
    uint8_t how[TOK_MAX_REGEX];
    bool invert[TOK_MAX_REGEX];
    int n;
} pats;

static hai_status add_pat_how(pats *ps, const char *p, tok_split how, bool invert, hai_error *err) {
    if (ps->n == TOK_MAX_REGEX) return hai_fail(err, HAI_ERR_UNSUPPORTED, "tokenizer.json: more than %d pre-tokenizer steps", TOK_MAX_REGEX);
    if (!(ps->p[ps->n] = strdup(p))) return hai_fail(err, HAI_ERR_NOMEM, "tokenizer.json: out of memory");
    ps->how[ps->n] = (uint8_t)how;
    ps->invert[ps->n] = invert;
    ps->n++;
    return HAI_OK;
}

static hai_status add_pat(pats *ps, const char *p, hai_error *err) { return add_pat_how(ps, p, TOK_SPLIT_ISOLATED, false, err); }

/* A literal string as a regex: every non-alphanumeric ASCII character escaped. */
static char *quote_regex(const char *s) {
    char *q = malloc(2 * strlen(s) + 1), *w = q;
    if (!q) return NULL;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x80 && !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) *w++ = '\\';
        *w++ = (char)c;
    }
    *w = '\0';
    return q;
}

/* The pre-tokenizer: regex cuts into ps; the steps that rewrite text (Metaspace, ByteLevel's
 * prefix space) into nm, allowed only before any cut (they then act on the whole stretch, as
 * they do on the one piece HF gives them). */
static hai_status pretok(const cJSON *pt, pats *ps, hf_norm *nm, bool *byte_level, hai_error *err) {
    const char *type = jstr(pt, "type");
    if (!type) return hai_fail(err, HAI_ERR_FORMAT, "tokenizer.json: pre_tokenizer without a type");
    if (!strcmp(type, "Sequence")) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(pt, "pretokenizers"), *e;
        hai_status st;
        cJSON_ArrayForEach(e, list) if ((st = pretok(e, ps, nm, byte_level, err))) return st;
        return HAI_OK;
    }
    if (!strcmp(type, "ByteLevel")) {
        *byte_level = true;
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(pt, "add_prefix_space"))) {
            if (ps->n) return hai_fail(err, HAI_ERR_UNSUPPORTED, "tokenizer.json: ByteLevel with add_prefix_space after a Split is not supported");
            hai_status st = add_step(nm, N_PREFIX, NULL, " ", err);
            if (st) return st;
        }
        const cJSON *ur = cJSON_GetObjectItemCaseSensitive(pt, "use_regex");
        if (!cJSON_IsFalse(ur)) return add_pat(ps, GPT2_RE, err); /* use_regex defaults to true */
        return HAI_OK;
    }
    if (!strcmp(type, "Metaspace")) { /* spaces as the replacement, a prefix, cut before each replacement */
        const char *rp = jstr(pt, "replacement"), *scheme = jstr(pt, "prepend_scheme");
        if (!rp) rp = "\xe2\x96\x81";
        if (ps->n) return hai_fail(err, HAI_ERR_UNSUPPORTED, "tokenizer.json: Metaspace after a Split is not supported");
        const cJSON *aps = cJSON_GetObjectItemCaseSensitive(pt, "add_prefix_space"); /* older files: a bool instead of a scheme */
        bool prefix = scheme ? strcmp(scheme, "never") != 0 : !cJSON_IsFalse(aps);
        hai_status st = add_step(nm, N_REPLACE, " ", rp, err);
        if (!st && prefix && !(st = add_step(nm, N_PREFIX, NULL, rp, err))) nm->s[nm->n - 1].first = scheme && !strcmp(scheme, "first");
        if (!st && !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(pt, "split"))) {
            char *q = quote_regex(rp);
            if (!q) return hai_fail(err, HAI_ERR_NOMEM, "tokenizer.json: out of memory");
            st = add_pat_how(ps, q, TOK_SPLIT_MERGED_NEXT, false, err);
            free(q);
        }
        return st;
    }
    if (!strcmp(type, "Digits")) {
        bool single = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(pt, "individual_digits"));
        return add_pat(ps, single ? "\\p{N}" : "\\p{N}+", err);
    }
    if (!strcmp(type, "Split")) {
        static const struct { const char *name; tok_split how; } behaviors[] = {
            {"Isolated", TOK_SPLIT_ISOLATED}, {"Removed", TOK_SPLIT_REMOVED}, {"MergedWithPrevious", TOK_SPLIT_MERGED_PREV},
            {"MergedWithNext", TOK_SPLIT_MERGED_NEXT}, {"Contiguous", TOK_SPLIT_CONTIGUOUS}};
        const char *behavior = jstr(pt, "behavior");
        int how = -1;
        for (size_t i = 0; behavior && i < sizeof behaviors / sizeof *behaviors; i++)
            if (!strcmp(behavior, behaviors[i].name)) how = (int)behaviors[i].how;
        if (how < 0)
            return hai_fail(err, HAI_ERR_UNSUPPORTED, "tokenizer.json: Split with behavior '%s' is not supported", behavior ? behavior : "?");
        bool invert = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(pt, "invert"));
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(pt, "pattern");
        const char *re = jstr(pat, "Regex");
        if (re) return add_pat_how(ps, re, (tok_split)how, invert, err);
        const char *lit = jstr(pat, "String");
        if (!lit) return hai_fail(err, HAI_ERR_FORMAT, "tokenizer.json: Split without a pattern");
        char *q = quote_regex(lit);
        if (!q) return hai_fail(err, HAI_ERR_NOMEM, "tokenizer.json: out of memory");
        hai_status st = add_pat_how(ps, q, (tok_split)how, invert, err);
        free(q);
        return st;
    }
    return hai_fail(err, HAI_ERR_UNSUPPORTED, "tokenizer.json: pre-tokenizer '%s' is not supported", type);
}

/* ---- decoders -------------------------------------------------------------------------------- */

typedef struct dec_info {
    bool byte_level; /* ByteLevel */
    bool spm;        /* the SentencePiece chain: U+2581 as a space, <0xXX> as bytes */
    bool strip;      /* the leading space of the text dropped */
} dec_info;

static hai_status decoder(const cJSON *d, dec_info *di, hai_error *err) {
    const char *type = jstr(d, "type");
    if (!type) return hai_fail(err, HAI_ERR_FORMAT, "tokenizer.json: decoder without a type");
    if (!strcmp(type, "Sequence")) {
        const cJSON *e;
        hai_status st;
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(d, "decoders")) if ((st = decoder(e, di, err))) return st;
        return HAI_OK;
    }
    if (!strcmp(type, "ByteLevel")) di->byte_level = true;
    else if (!strcmp(type, "ByteFallback") || !strcmp(type, "Fuse")) di->spm = true;
    else if (!strcmp(type, "Replace")) {
        const char *from = jstr(cJSON_GetObjectItemCaseSensitive(d, "pattern"), "String"), *to = jstr(d, "content");
        if (!from || !to || strcmp(from, "\xe2\x96\x81") || strcmp(to, " "))
            return hai_fail(err, HAI_ERR_UNSUPPORTED, "tokenizer.json: Replace decoder other than U+2581 -> space is not supported");
        di->spm = true;
    } else if (!strcmp(type, "Strip")) {
        const char *c = jstr(d, "content");
        const cJSON *start = cJSON_GetObjectItemCaseSensitive(d, "start"), *stop = cJSON_GetObjectItemCaseSensitive(d, "stop");
        if (!c || strcmp(c, " ") || !cJSON_IsNumber(start) || start->valuedouble != 1 || (cJSON_IsNumber(stop) && stop->valuedouble != 0))
            return hai_fail(err, HAI_ERR_UNSUPPORTED, "tokenizer.json: Strip decoder other than one leading space is not supported");
        di->strip = true;
    } else if (!strcmp(type, "Metaspace")) {
        const char *scheme = jstr(d, "prepend_scheme");
        di->spm = true;
        di->strip = scheme ? strcmp(scheme, "never") != 0 : !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(d, "add_prefix_space"));
    } else {
        return hai_fail(err, HAI_ERR_UNSUPPORTED, "tokenizer.json: decoder '%s' is not supported", type);
    }
    return HAI_OK;
}

static hai_status load(const cJSON *j, const cJSON *cfg, hai_tokenizer **out, hai_error *err) {
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(j, "model");
    const char *mtype = jstr(model, "type");
    if (!mtype || strcmp(mtype, "BPE"))
        return hai_fail(err, HAI_ERR_UNSUPPORTED, "tokenizer.json: model type '%s' is not supported (only BPE)", mtype ? mtype : "?");
    bool byte_fallback = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(model, "byte_fallback"));
    const char *csp = jstr(model, "continuing_subword_prefix"), *ews = jstr(model, "end_of_word_suffix");
    if ((csp && *csp) || (ews && *ews))
        return hai_fail(err, HAI_ERR_UNSUPPORTED, "tokenizer.json: subword prefixes/suffixes are not supported");

    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(j, "added_tokens");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    if (!cJSON_IsObject(vocab) || !cJSON_IsArray(merges)) return hai_fail(err, HAI_ERR_FORMAT, "tokenizer.json: model.vocab or model.merges missing");
    double max_id = -1;
    const cJSON *e;
    cJSON_ArrayForEach(e, vocab) {
        if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble > INT32_MAX - 1)
            return hai_fail(err, HAI_ERR_FORMAT, "tokenizer.json: bad id for token '%s'", e->string ? e->string : "?");
        if (e->valuedouble > max_id) max_id = e->valuedouble;
    }
    cJSON_ArrayForEach(e, added) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
        if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble > INT32_MAX - 1 || !jstr(e, "content"))
            return hai_fail(err, HAI_ERR_FORMAT, "tokenizer.json: bad added token");
        if (id->valuedouble > max_id) max_id = id->valuedouble;
    }
    if (max_id < 0) return hai_fail(err, HAI_ERR_FORMAT, "tokenizer.json: empty vocabulary");
    if (max_id > 16 * 1024 * 1024) return hai_fail(err, HAI_ERR_LIMIT, "tokenizer.json: token ids up to %.0f", max_id);
    /* ids are dense in real files; a few bytes naming id 16,000,000 must not make hai allocate and
     * fill sixteen million entries */
    double entries = (double)cJSON_GetArraySize(vocab) + (double)cJSON_GetArraySize(added);
    if (max_id >= entries + 65536)
        return hai_fail(err, HAI_ERR_FORMAT, "tokenizer.json: token ids up to %.0f for %.0f tokens (more than 65536 unused ids)", max_id, entries);

    hai_tokenizer *t;
    hai_status st = tok_alloc(&t, TOK_BPE, (int32_t)max_id + 1, err);
    if (st) return st;
    t->add_bos = false;
    t->add_space_prefix = false;
    snprintf(t->pre_name, sizeof t->pre_name, "tokenizer.json");
    for (int32_t i = 0; i < t->n_vocab && !st; i++) st = tok_set(t, i, "", 0, 0, HAI_TOKEN_UNUSED, err); /* holes */
    cJSON_ArrayForEach(e, vocab) {
        if (st) break;
        st = tok_set(t, (int32_t)e->valuedouble, e->string, strlen(e->string), 0, HAI_TOKEN_NORMAL, err);
    }
    cJSON_ArrayForEach(e, added) {
        if (st) break;
        int32_t id = (int32_t)cJSON_GetObjectItemCaseSensitive(e, "id")->valuedouble;
        const char *c = jstr(e, "content");
        bool special = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "special"));
        st = tok_set(t, id, c, strlen(c), 0, special ? HAI_TOKEN_CONTROL : HAI_TOKEN_USER_DEFINED, err);
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "lstrip"))) t->tok[id].flags |= TOK_LSTRIP;
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "rstrip"))) t->tok[id].flags |= TOK_RSTRIP;
    }
    if (!st) st = tok_build_map(t, err);
    if (!st) st = tok_alloc_merges(t, cJSON_GetArraySize(merges), err);
    int32_t rank = 0;
    cJSON_ArrayForEach(e, merges) {
        if (st) break;
        if (cJSON_IsString(e)) { /* "left right" */
            const char *s = e->valuestring, *sp = *s ? strchr(s + 1, ' ') : NULL;
            if (sp) st = tok_add_merge(t, s, (size_t)(sp - s), sp + 1, strlen(sp + 1), rank, err);
        } else if (cJSON_IsArray(e) && cJSON_GetArraySize(e) == 2) { /* ["left", "right"] */
            const cJSON *a = cJSON_GetArrayItem(e, 0), *b = cJSON_GetArrayItem(e, 1);
            if (cJSON_IsString(a) && cJSON_IsString(b))
                st = tok_add_merge(t, a->valuestring, strlen(a->valuestring), b->valuestring, strlen(b->valuestring), rank, err);
        }
        rank++;
    }
    t->ignore_merges = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(model, "ignore_merges"));

    pats ps = {0};
    bool byte_level = false;
    dec_info di = {0};
    hf_norm *nm = calloc(1, sizeof *nm);
    if (!st && !nm) st = hai_fail(err, HAI_ERR_NOMEM, "tokenizer.json: out of memory");
    const cJSON *nj = cJSON_GetObjectItemCaseSensitive(j, "normalizer"), *pt = cJSON_GetObjectItemCaseSensitive(j, "pre_tokenizer");
    const cJSON *dj = cJSON_GetObjectItemCaseSensitive(j, "decoder");
    if (!st && cJSON_IsObject(nj)) st = normalizer(nj, nm, err);
    if (!st && cJSON_IsObject(pt)) st = pretok(pt, &ps, nm, &byte_level, err);
    if (!st && cJSON_IsObject(dj)) st = decoder(dj, &di, err);
    if (!st && ps.n == 0) st = add_pat(&ps, "[\\s\\S]+", err); /* no splitting at all */
    /* bytes mapped to characters (GPT-2's byte level), or the characters themselves with byte
     * fallback (SentencePiece converted); the decoder must be the model's */
    if (!st && (byte_level ? di.spm : di.byte_level))
        st = hai_fail(err, HAI_ERR_UNSUPPORTED, "tokenizer.json: a %s model with a %s decoder is not supported", byte_level ? "byte-level" : "character",
                      byte_level ? "SentencePiece" : "ByteLevel");
    if (!st && byte_level && byte_fallback) st = hai_fail(err, HAI_ERR_UNSUPPORTED, "tokenizer.json: byte-level BPE with byte_fallback is not supported");
    if (!st && !byte_level) {
        t->bpe_chars = true;
        t->byte_fallback = byte_fallback;
        t->fuse_unk = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(model, "fuse_unk"));
        const char *unk = jstr(model, "unk_token");
        if (unk) t->special[HAI_SPECIAL_UNK] = tok_lookup(t, unk, strlen(unk));
        for (int b = 0; b < 256 && byte_fallback; b++) { /* <0xXX>: decoded as the byte */
            char name[8];
            snprintf(name, sizeof name, "<0x%02X>", b);
            int32_t id = tok_lookup(t, name, 6);
            if (id >= 0 && t->tok[id].attr == HAI_TOKEN_NORMAL) t->tok[id].attr = HAI_TOKEN_BYTE;
        }
    }
    t->strip_leading_space = di.strip;
    if (!st && nm->n) {
        t->normalize = hf_normalize, t->norm = nm, t->norm_free = norm_free;
        nm = NULL;
    }
    norm_free(nm);

    /* special tokens: the config names them; the post-processor says whether BOS is added */
    const char *names[HAI_SPECIAL_COUNT] = {0};
    if (cfg) {
        names[HAI_SPECIAL_BOS] = token_text(cJSON_GetObjectItemCaseSensitive(cfg, "bos_token"));
        names[HAI_SPECIAL_EOS] = token_text(cJSON_GetObjectItemCaseSensitive(cfg, "eos_token"));
        names[HAI_SPECIAL_UNK] = token_text(cJSON_GetObjectItemCaseSensitive(cfg, "unk_token"));
        names[HAI_SPECIAL_PAD] = token_text(cJSON_GetObjectItemCaseSensitive(cfg, "pad_token"));
    }
    for (int i = 0; i < HAI_SPECIAL_COUNT && !st; i++)
        if (names[i]) t->special[i] = tok_lookup(t, names[i], strlen(names[i]));
    const cJSON *pp = cJSON_GetObjectItemCaseSensitive(j, "post_processor");
    const char *pp_type = jstr(pp, "type");
    if (pp_type && !strcmp(pp_type, "TemplateProcessing")) {
        const cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(pp, "single"), 0);
        const char *sid = jstr(cJSON_GetObjectItemCaseSensitive(first, "SpecialToken"), "id");
        if (sid) {
            int32_t id = tok_lookup(t, sid, strlen(sid));
            if (id >= 0) {
                t->special[HAI_SPECIAL_BOS] = id;
                t->add_bos = true;
            }
        }
    }
    if (cfg) {
        const cJSON *ab = cJSON_GetObjectItemCaseSensitive(cfg, "add_bos_token");
        if (cJSON_IsBool(ab)) t->add_bos = cJSON_IsTrue(ab);
        const cJSON *ae = cJSON_GetObjectItemCaseSensitive(cfg, "add_eos_token");
        if (cJSON_IsBool(ae)) t->add_eos = cJSON_IsTrue(ae);
        const cJSON *ct = cJSON_GetObjectItemCaseSensitive(cfg, "chat_template");
        const char *tmpl = cJSON_IsString(ct) ? ct->valuestring : NULL;
        if (cJSON_IsArray(ct)) { /* [{"name": "default", "template": ...}, ...] */
            cJSON_ArrayForEach(e, ct) {
                const char *tname = jstr(e, "name");
                if (tname && !strcmp(tname, "default")) tmpl = jstr(e, "template");
            }
        }
        if (tmpl && !st && !(t->chat_template = strdup(tmpl))) st = hai_fail(err, HAI_ERR_NOMEM, "tokenizer.json: out of memory");
    }
    if (!st) st = tok_finish(t, (const char *const *)ps.p, ps.n, err);
    for (int i = 0; !st && i < ps.n; i++) t->regex_split[i] = ps.how[i], t->regex_invert[i] = ps.invert[i];
    for (int i = 0; i < ps.n; i++) free(ps.p[i]);
    if (st) {
        hai_tokenizer_free(t);
        return st;
    }
    *out = t;
    return HAI_OK;
}

hai_status hai_tokenizer_from_hf_text(const char *json, size_t len, const char *config, size_t config_len, hai_tokenizer **out,
                                      hai_error *err) {
    if (!json || !out) return hai_fail(err, HAI_ERR_INVALID, "tokenizer.json: NULL argument");
    *out = NULL;
    if (len > MAX_JSON_SIZE || config_len > MAX_JSON_SIZE)
        return hai_fail(err, HAI_ERR_LIMIT, "tokenizer.json: larger than %u MiB", MAX_JSON_SIZE >> 20);
    cJSON *j = cJSON_ParseWithLength(json, len), *cfg = NULL;
    if (!j) return hai_fail(err, HAI_ERR_FORMAT, "tokenizer.json: not valid JSON");
    if (config && !(cfg = cJSON_ParseWithLength(config, config_len))) {
        cJSON_Delete(j);
        return hai_fail(err, HAI_ERR_FORMAT, "tokenizer_config.json: not valid JSON");
    }
    hai_status st = load(j, cfg, out, err);
    cJSON_Delete(j);
    cJSON_Delete(cfg);
    return st;
}

hai_status hai_tokenizer_from_hf(const char *tokenizer_json, const char *config_json, hai_tokenizer **out, hai_error *err) {
    if (!tokenizer_json || !out) return hai_fail(err, HAI_ERR_INVALID, "tokenizer.json: NULL argument");
    *out = NULL;
    cJSON *j = parse_file(tokenizer_json, err), *cfg = NULL;
    if (!j) return err ? err->status : HAI_ERR_FORMAT;
    if (config_json && !(cfg = parse_file(config_json, err))) {
        cJSON_Delete(j);
        return err ? err->status : HAI_ERR_FORMAT;
    }
    hai_status st = load(j, cfg, out, err);
    if (st) hai_error_prefix(err, "%s", tokenizer_json);
    cJSON_Delete(j);
    cJSON_Delete(cfg);
    return st;
}
