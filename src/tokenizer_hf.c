/* Import of a Hugging Face tokenizer.json (+ tokenizer_config.json) into a hai_tokenizer:
 * byte-level BPE models with Split/ByteLevel/Digits pre-tokenizers, added tokens, merges in
 * either format, BOS from the post-processor or the config, and the chat template.
 * Part of libhai_hf (it needs cJSON); the core library does not depend on it. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
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

/* Collects the pre-tokenizer's regex patterns (owned copies) from its JSON description. */
typedef struct pats {
    char *p[TOK_MAX_REGEX];
    int n;
} pats;

static hai_status add_pat(pats *ps, const char *p, hai_error *err) {
    if (ps->n == TOK_MAX_REGEX) return hai_fail(err, HAI_ERR_UNSUPPORTED, "tokenizer.json: more than %d pre-tokenizer steps", TOK_MAX_REGEX);
    if (!(ps->p[ps->n] = strdup(p))) return hai_fail(err, HAI_ERR_NOMEM, "tokenizer.json: out of memory");
    ps->n++;
    return HAI_OK;
}

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

static hai_status pretok(const cJSON *pt, pats *ps, bool *byte_level, hai_error *err) {
    const char *type = jstr(pt, "type");
    if (!type) return hai_fail(err, HAI_ERR_FORMAT, "tokenizer.json: pre_tokenizer without a type");
    if (!strcmp(type, "Sequence")) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(pt, "pretokenizers"), *e;
        hai_status st;
        cJSON_ArrayForEach(e, list) if ((st = pretok(e, ps, byte_level, err))) return st;
        return HAI_OK;
    }
    if (!strcmp(type, "ByteLevel")) {
        *byte_level = true;
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(pt, "add_prefix_space")))
            return hai_fail(err, HAI_ERR_UNSUPPORTED, "tokenizer.json: ByteLevel with add_prefix_space is not supported");
        const cJSON *ur = cJSON_GetObjectItemCaseSensitive(pt, "use_regex");
        if (!cJSON_IsFalse(ur)) return add_pat(ps, GPT2_RE, err); /* use_regex defaults to true */
        return HAI_OK;
    }
    if (!strcmp(type, "Digits")) {
        bool single = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(pt, "individual_digits"));
        return add_pat(ps, single ? "\\p{N}" : "\\p{N}+", err);
    }
    if (!strcmp(type, "Split")) {
        const char *behavior = jstr(pt, "behavior");
        if (!behavior || strcmp(behavior, "Isolated") || cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(pt, "invert")))
            return hai_fail(err, HAI_ERR_UNSUPPORTED, "tokenizer.json: Split with behavior '%s' is not supported (only Isolated)",
                            behavior ? behavior : "?");
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(pt, "pattern");
        const char *re = jstr(pat, "Regex");
        if (re) return add_pat(ps, re, err);
        const char *lit = jstr(pat, "String");
        if (!lit) return hai_fail(err, HAI_ERR_FORMAT, "tokenizer.json: Split without a pattern");
        char *q = quote_regex(lit);
        if (!q) return hai_fail(err, HAI_ERR_NOMEM, "tokenizer.json: out of memory");
        hai_status st = add_pat(ps, q, err);
        free(q);
        return st;
    }
    return hai_fail(err, HAI_ERR_UNSUPPORTED, "tokenizer.json: pre-tokenizer '%s' is not supported", type);
}

static hai_status load(const cJSON *j, const cJSON *cfg, hai_tokenizer **out, hai_error *err) {
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(j, "model");
    const char *mtype = jstr(model, "type");
    if (!mtype || strcmp(mtype, "BPE"))
        return hai_fail(err, HAI_ERR_UNSUPPORTED, "tokenizer.json: model type '%s' is not supported (only byte-level BPE)",
                        mtype ? mtype : "?");
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(model, "byte_fallback")))
        return hai_fail(err, HAI_ERR_UNSUPPORTED, "tokenizer.json: byte_fallback BPE (SentencePiece converted) is not supported; use the GGUF vocabulary");
    const char *csp = jstr(model, "continuing_subword_prefix"), *ews = jstr(model, "end_of_word_suffix");
    if ((csp && *csp) || (ews && *ews))
        return hai_fail(err, HAI_ERR_UNSUPPORTED, "tokenizer.json: subword prefixes/suffixes are not supported");
    const char *norm_type = jstr(cJSON_GetObjectItemCaseSensitive(j, "normalizer"), "type");
    if (norm_type && strcmp(norm_type, "NFC"))
        return hai_fail(err, HAI_ERR_UNSUPPORTED, "tokenizer.json: normalizer '%s' is not supported", norm_type);

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
    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(j, "pre_tokenizer");
    if (!st && cJSON_IsObject(pt)) st = pretok(pt, &ps, &byte_level, err);
    if (!st && !byte_level) st = hai_fail(err, HAI_ERR_UNSUPPORTED, "tokenizer.json: only byte-level BPE is supported");
    if (!st && ps.n == 0) st = add_pat(&ps, "[\\s\\S]+", err); /* no splitting at all */

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
                const char *nm = jstr(e, "name");
                if (nm && !strcmp(nm, "default")) tmpl = jstr(e, "template");
            }
        }
        if (tmpl && !st && !(t->chat_template = strdup(tmpl))) st = hai_fail(err, HAI_ERR_NOMEM, "tokenizer.json: out of memory");
    }
    if (!st) st = tok_finish(t, (const char *const *)ps.p, ps.n, err);
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
