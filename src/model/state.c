/* A sequence's state - its tokens and KV cache - saved and restored (hai.h), so an app that is
 * closed and opened again continues without reading its prompt again. The file is outside input
 * when it comes back: its size follows from its header, a checksum covers it, every field is
 * checked against the context it goes into, and a file that fails leaves the sequence empty.
 *
 * Layout (little-endian): "HAIS", version, (version 2: the KV cache's type), the model's
 * fingerprint, the positions held (n_past), the tokens; per layer the first position it keeps (0,
 * or for a sliding-window layer the start of what its ring holds) and, per KV head, the keys then
 * the values of its positions as rows of the cache's type (version 1: F16); then FNV-1a 64 of all
 * before it. A quantized cache's rows are saved as they are, so a restore is exact. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/error.h"
#include "base/text.h"
#include "context.h"
#include "kernels/kernels.h"

#define STATE_MAGIC "HAIS"
#define STATE_VERSION 1u   /* F16 caches */
#define STATE_VERSION_KV 2u /* quantized caches: the type follows the version */

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* Which model a state belongs to: its shape, and bytes sampled from up to 64 of its tensors in the
 * file (a fine-tune of the same shape differs there). */
static uint64_t fingerprint(const hai_model *m) {
    const hai_hparams *hp = &m->hp;
    uint64_t h = fnv(0xcbf29ce484222325ull, m->arch, strlen(m->arch));
    uint32_t shape[] = {hp->n_layer, hp->n_embd, hp->n_head, hp->n_head_kv, hp->head_dim, hp->head_dim_v, hp->n_vocab, hp->swa_window};
    h = fnv(h, shape, sizeof shape);
    int64_t n = hai_gguf_n_tensors(m->gguf), step = n > 64 ? n / 64 : 1;
    for (int64_t i = 0; i < n; i += step) {
        const hai_gguf_tensor *t = hai_gguf_tensor_at(m->gguf, i);
        h = fnv(h, t->data, t->size < 64 ? (size_t)t->size : 64);
    }
    return h;
}

/* The first position layer l keeps for a sequence of n_past positions (lo the sequence's). */
static uint32_t layer_lo(const hai_context *c, uint32_t l, uint32_t n_past, uint32_t lo) {
    if (c->kv_cap[l] >= c->n_ctx_kt) return 0;
    uint32_t ring_lo = n_past > c->kv_cap[l] ? n_past - c->kv_cap[l] : 0;
    return ring_lo > lo ? ring_lo : lo;
}

static bool put_u32(hai_text *t, uint32_t v) { return text_put(t, &v, 4); }

hai_status hai_state_save_buffer(const hai_context *c, int32_t seq, void **out, size_t *len, hai_error *err) {
    if (!c || !out || !len) return hai_fail(err, HAI_ERR_INVALID, "state: NULL argument");
    *out = NULL, *len = 0;
    if (seq < 0 || (uint32_t)seq >= c->n_seq) return hai_fail(err, HAI_ERR_INVALID, "state: no sequence %d", seq);
    const hai_hparams *hp = &c->m->hp;
    uint32_t n_past = c->seq_past[seq];
    bool quant = c->kv_type != HAI_TYPE_F16;
    hai_text t = {0};
    text_put(&t, STATE_MAGIC, 4);
    put_u32(&t, quant ? STATE_VERSION_KV : STATE_VERSION);
    if (quant) put_u32(&t, c->kv_type);
    uint64_t fp = fingerprint(c->m);
    text_put(&t, &fp, 8);
    put_u32(&t, n_past);
    text_put(&t, c->tokens + (size_t)seq * c->n_ctx, (size_t)n_past * sizeof *c->tokens);
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        uint32_t lo = layer_lo(c, l, n_past, c->seq_lo[seq]);
        put_u32(&t, lo);
        for (uint32_t g = 0; g < hp->n_head_kv; g++) {
            const uint16_t *k = hai_kv_keys(c, (uint32_t)seq, l, g), *v = hai_kv_values(c, (uint32_t)seq, l, g);
            for (uint32_t p = lo; p < n_past && quant; p++) { /* a key as a row of its type, out of its block's lanes */
                uint8_t row[HAI_KVQ_MAX_ROW];
                uint32_t slot = hai_kv_slot(c, l, p);
                hai_kvq_key_get(c->kv_type, hai_kvq_block(c, k, slot), slot % HAI_KT, row, (int)hp->head_dim);
                text_put(&t, row, (size_t)c->k_rowu * 2);
            }
            for (uint32_t p = lo; p < n_past && !quant; p++) {
                uint32_t s = hai_kv_slot(c, l, p);
                for (uint32_t d = 0; d < hp->head_dim; d++) text_put(&t, &k[hai_kt_index(s, d, hp->head_dim)], 2);
            }
            for (uint32_t p = lo; p < n_past; p++)
                text_put(&t, &v[(size_t)hai_kv_slot(c, l, p) * (quant ? c->v_rowu : hp->head_dim_v)], (size_t)(quant ? c->v_rowu : hp->head_dim_v) * 2);
        }
    }
    uint64_t sum = fnv(0xcbf29ce484222325ull, t.p, t.n);
    text_put(&t, &sum, 8);
    size_t n = t.n;
    if (!(*out = text_take(&t))) return hai_fail(err, HAI_ERR_NOMEM, "state: out of memory for %u positions", n_past);
    *len = n;
    return HAI_OK;
}

/* A reader over the file's bytes that stops at the end. */
typedef struct rd {
    const uint8_t *p;
    size_t n, at;
} rd;

static bool get(rd *r, void *dst, size_t n) {
    if (r->n - r->at < n) return false;
    memcpy(dst, r->p + r->at, n);
    r->at += n;
    return true;
}

static bool f16_finite(uint16_t h) { return (h & 0x7c00) != 0x7c00; }

/* A quantized row of `units` 16-bit units (n values) from the file into slot `at` of rows, unless
 * skip (a ring's position this context does not keep); HAI_ERR_FORMAT when a value is not finite. */
/* A saved row of a quantized cache into slot `at`: keys (c given) into their block's lanes, values
 * as rows. */
static hai_status quant_row(rd *r, const hai_context *c, const hai_type_traits *t, uint16_t *rows, uint32_t units, uint32_t n, uint32_t at,
                            bool skip) {
    uint16_t buf[2048];
    float x[1024];
    if (units > 2048 || n > 1024 || !get(r, buf, (size_t)units * 2)) return HAI_ERR_FORMAT;
    t->to_float(buf, x, n);
    for (uint32_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return HAI_ERR_FORMAT;
    if (skip)
        ;
    else if (c)
        hai_kvq_key_put(c->kv_type, hai_kvq_block(c, rows, at), at % HAI_KT, buf, (int)n);
    else
        memcpy(rows + (size_t)at * units, buf, (size_t)units * 2);
    return HAI_OK;
}

hai_status hai_state_load_buffer(hai_context *c, int32_t seq, const void *data, size_t len, hai_error *err) {
    if (!c || (!data && len)) return hai_fail(err, HAI_ERR_INVALID, "state: NULL argument");
    if (seq < 0 || (uint32_t)seq >= c->n_seq) return hai_fail(err, HAI_ERR_INVALID, "state: no sequence %d", seq);
    const hai_hparams *hp = &c->m->hp;
    hai_seq_truncate(c, seq, 0, NULL); /* whatever happens, the sequence holds the file's state or nothing */
    rd r = {data, len, 0};
    char magic[4];
    uint32_t version, n_past;
    uint64_t fp, sum;
    if (len < 28 || !get(&r, magic, 4) || memcmp(magic, STATE_MAGIC, 4))
        return hai_fail(err, HAI_ERR_FORMAT, "state: not a hai state file");
    get(&r, &version, 4);
    if (version != STATE_VERSION && version != STATE_VERSION_KV)
        return hai_fail(err, HAI_ERR_UNSUPPORTED, "state: version %u (this hai reads %u and %u)", version, STATE_VERSION, STATE_VERSION_KV);
    memcpy(&sum, (const uint8_t *)data + len - 8, 8);
    if (fnv(0xcbf29ce484222325ull, data, len - 8) != sum) return hai_fail(err, HAI_ERR_FORMAT, "state: the checksum does not match (the file is damaged)");
    uint32_t kv_type = HAI_TYPE_F16;
    if (version == STATE_VERSION_KV && (len < 32 || !get(&r, &kv_type, 4) || kv_type == HAI_TYPE_F16))
        return hai_fail(err, HAI_ERR_FORMAT, "state: version %u without a quantized cache's type", version);
    if (kv_type != c->kv_type)
        return hai_fail(err, HAI_ERR_INVALID, "state: saved from a %s KV cache; this context's is %s", hai_type_name(kv_type) ? hai_type_name(kv_type) : "?",
                        hai_type_name(c->kv_type));
    bool quant = kv_type != HAI_TYPE_F16;
    const hai_type_traits *kvt = quant ? hai_type_traits_get(kv_type) : NULL;
    uint32_t krow = quant ? c->k_rowu * 2 : hp->head_dim * 2, vrow = quant ? c->v_rowu * 2 : hp->head_dim_v * 2; /* bytes a position */
    get(&r, &fp, 8);
    if (fp != fingerprint(c->m)) return hai_fail(err, HAI_ERR_INVALID, "state: saved with another model than %s", c->m->desc);
    get(&r, &n_past, 4);
    if (n_past > c->n_ctx)
        return hai_fail(err, HAI_ERR_LIMIT, "state: %u positions; the context holds %u", n_past, c->n_ctx);
    /* the size the header implies, before anything is read into the context */
    uint64_t want = r.at + (uint64_t)n_past * 4 + 8, row = (uint64_t)hp->n_head_kv * (krow + vrow);
    size_t at = r.at + (size_t)n_past * 4;
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        uint32_t lo;
        if (len - 8 < at + 4) return hai_fail(err, HAI_ERR_FORMAT, "state: cut short at layer %u", l);
        memcpy(&lo, (const uint8_t *)data + at, 4);
        uint32_t w = hp->swa_window, need = n_past >= w ? n_past - w + 1 : 0; /* what a sliding layer's next token sees */
        if (lo > n_past || (lo && (!c->m->layers[l].swa || lo > need)))
            return hai_fail(err, HAI_ERR_FORMAT, "state: layer %u starts at position %u of %u", l, lo, n_past);
        uint64_t bytes = (uint64_t)(n_past - lo) * row;
        want += 4 + bytes;
        if (want > len) return hai_fail(err, HAI_ERR_FORMAT, "state: %zu bytes; its header says at least %llu", len, (unsigned long long)want);
        at += 4 + (size_t)bytes;
    }
    if (want != len) return hai_fail(err, HAI_ERR_FORMAT, "state: %zu bytes; its header says %llu", len, (unsigned long long)want);
    const int32_t *tok = (const int32_t *)((const uint8_t *)data + r.at);
    for (uint32_t i = 0; i < n_past; i++) {
        int32_t t;
        memcpy(&t, tok + i, 4);
        if (t < 0 || (uint32_t)t >= hp->n_vocab) return hai_fail(err, HAI_ERR_FORMAT, "state: token %d at %u is outside the vocabulary", t, i);
    }
    /* what this context's rings keep of it: the window the next token needs at least */
    uint32_t seq_lo = 0;
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        uint32_t keep = layer_lo(c, l, n_past, 0);
        if (keep > seq_lo) seq_lo = keep;
    }
    if (c->ring && seq_lo > (n_past >= hp->swa_window ? n_past - hp->swa_window + 1 : 0))
        return hai_fail(err, HAI_ERR_LIMIT, "state: this context's sliding-window cache is too small for it");
    /* checked: now into the sequence */
    r.at += (size_t)n_past * 4;
    memcpy(c->tokens + (size_t)seq * c->n_ctx, tok, (size_t)n_past * 4);
    hai_status st = HAI_OK;
    for (uint32_t l = 0; l < hp->n_layer && !st; l++) {
        uint32_t lo = 0;
        get(&r, &lo, 4); /* the sizes were checked: every get below succeeds */
        for (uint32_t g = 0; g < hp->n_head_kv && !st; g++) {
            uint16_t *k = hai_kv_keys(c, (uint32_t)seq, l, g), *v = hai_kv_values(c, (uint32_t)seq, l, g);
            if (quant) { /* rows as saved, each checked to be numbers (its scales) */
                for (uint32_t p = lo; p < n_past && !st; p++) st = quant_row(&r, c, kvt, k, c->k_rowu, hp->head_dim, hai_kv_slot(c, l, p), c->ring && p < seq_lo && c->kv_cap[l] < c->n_ctx_kt);
                for (uint32_t p = lo; p < n_past && !st; p++) st = quant_row(&r, NULL, kvt, v, c->v_rowu, hp->head_dim_v, hai_kv_slot(c, l, p), c->ring && p < seq_lo && c->kv_cap[l] < c->n_ctx_kt);
                continue;
            }
            for (uint32_t p = lo; p < n_past; p++)
                for (uint32_t d = 0; d < hp->head_dim; d++) {
                    uint16_t h = 0;
                    get(&r, &h, 2);
                    if (!f16_finite(h)) st = HAI_ERR_FORMAT;
                    if (p >= seq_lo || !c->ring || c->kv_cap[l] >= c->n_ctx_kt) k[hai_kt_index(hai_kv_slot(c, l, p), d, hp->head_dim)] = h;
                }
            for (uint32_t p = lo; p < n_past; p++)
                for (uint32_t d = 0; d < hp->head_dim_v; d++) {
                    uint16_t h = 0;
                    get(&r, &h, 2);
                    if (!f16_finite(h)) st = HAI_ERR_FORMAT;
                    if (p >= seq_lo || !c->ring || c->kv_cap[l] >= c->n_ctx_kt) v[(size_t)hai_kv_slot(c, l, p) * hp->head_dim_v + d] = h;
                }
        }
    }
    if (st) { /* a value that is not a number: the sequence stays empty */
        hai_seq_truncate(c, seq, 0, NULL);
        return hai_fail(err, HAI_ERR_FORMAT, "state: a key or value that is not a finite number");
    }
    c->seq_lo[seq] = c->ring ? seq_lo : 0;
    c->seq_past[seq] = n_past;
    return HAI_OK;
}

hai_status hai_state_save(const hai_context *c, int32_t seq, const char *path, hai_error *err) {
    if (!path) return hai_fail(err, HAI_ERR_INVALID, "state: NULL path");
    void *buf;
    size_t len;
    hai_status st = hai_state_save_buffer(c, seq, &buf, &len, err);
    if (st) return st;
    /* written beside, then renamed over: a failed write never leaves half a state at path */
    hai_text tmp = {0};
    text_printf(&tmp, "%s.tmp", path);
    char *tp = text_take(&tmp);
    FILE *f = tp ? fopen(tp, "wb") : NULL;
    bool ok = f && fwrite(buf, 1, len, f) == len;
    if (f && fclose(f)) ok = false;
    if (ok && rename(tp, path)) ok = false;
    if (!ok && tp) unlink(tp);
    free(tp);
    free(buf);
    return ok ? HAI_OK : hai_fail(err, HAI_ERR_IO, "state: cannot write %s", path);
}

hai_status hai_state_load(hai_context *c, int32_t seq, const char *path, hai_error *err) {
    if (!path) return hai_fail(err, HAI_ERR_INVALID, "state: NULL path");
    FILE *f = fopen(path, "rb");
    if (!f) return hai_fail(err, HAI_ERR_IO, "state: cannot open %s", path);
    hai_text t = {0};
    char chunk[1 << 16];
    size_t k;
    /* at most what a full context of this model could hold, plus the header */
    const hai_hparams *hp = &c->m->hp;
    uint64_t most = 64 + (uint64_t)c->n_ctx * (4 + (uint64_t)hp->n_layer * hp->n_head_kv * (hp->head_dim + hp->head_dim_v) * 2) + 4ull * hp->n_layer;
    while ((k = fread(chunk, 1, sizeof chunk, f)) > 0 && t.n <= most) text_put(&t, chunk, k);
    bool bad = ferror(f);
    fclose(f);
    hai_status st;
    if (bad) st = hai_fail(err, HAI_ERR_IO, "state: cannot read %s", path);
    else if (t.oom) st = hai_fail(err, HAI_ERR_NOMEM, "state: out of memory reading %s", path);
    else if (t.n > most) st = hai_fail(err, HAI_ERR_LIMIT, "state: %s is larger than this context could hold", path);
    else st = hai_state_load_buffer(c, seq, t.p, t.n, err);
    if (st) hai_error_prefix(err, "%s", path);
    text_free(&t);
    return st;
}
