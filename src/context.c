/* Contexts: creation (all memory for n_ctx positions and n_batch tokens allocated here), eval in
 * batches, logits, truncation. */
#include "context.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "memory.h"

hai_context_params hai_context_default_params(void) { return (hai_context_params){0}; }

const char *hai_kernels_name(void) { return hai_kernels_best()->name; }

static void *alloc_checked(uint64_t a, uint64_t b, uint64_t *total, bool *ok) {
    uint64_t n;
    if (!hai_mul_u64(a, b, &n) || n > SIZE_MAX) {
        *ok = false;
        return NULL;
    }
    /* cache-line aligned: the kernels load activation rows 64 bytes at a time, and a load that
     * straddles two lines costs two (malloc gives 16-byte alignment) */
    void *p = n <= SIZE_MAX - 64 ? aligned_alloc(64, n ? (size_t)(n + 63) / 64 * 64 : 64) : NULL;
    if (!p) *ok = false;
    *total += n;
    return p;
}

/* The KV cache: read whole for every token, as the weights are (memory.h). Freed with free(). */
static void *alloc_cache(uint64_t a, uint64_t b, uint64_t *total, bool *ok) {
    uint64_t n;
    if (!hai_mul_u64(a, b, &n) || n > SIZE_MAX) {
        *ok = false;
        return NULL;
    }
    void *p = hai_alloc_huge((size_t)n);
    if (!p) *ok = false;
    *total += n;
    return p;
}

hai_status hai_context_create(const hai_model *m, const hai_context_params *pp, hai_context **out, hai_error *err) {
    if (!m || !out) return hai_fail(err, HAI_ERR_INVALID, "context: NULL argument");
    *out = NULL;
    hai_status kst = hai_kernels_check(err);
    if (kst) return kst;
    hai_context_params p = pp ? *pp : hai_context_default_params();
    const hai_hparams *hp = &m->hp;
    uint32_t n_ctx = p.n_ctx ? p.n_ctx : (hp->n_ctx_train && hp->n_ctx_train < 4096 ? hp->n_ctx_train : 4096);
    if (n_ctx > (1u << 24)) return hai_fail(err, HAI_ERR_LIMIT, "context: n_ctx %u is above the limit of %u", n_ctx, 1u << 24);
    uint32_t n_batch = p.n_batch ? p.n_batch : 512;
    if (n_batch > n_ctx) n_batch = n_ctx;
    int n_threads = p.pool ? hai_pool_size((hai_pool *)p.pool) : p.n_threads > 0 ? p.n_threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (n_threads < 1) n_threads = 1;
    if (n_threads > 256) n_threads = 256;

    hai_context *c = calloc(1, sizeof *c);
    if (!c) return hai_fail(err, HAI_ERR_NOMEM, "context: out of memory");
    c->m = m;
    c->k = hai_kernels_best();
    c->n_ctx = n_ctx;
    c->n_batch = n_batch;
    c->logits_all = p.logits_all;
    uint64_t E = hp->n_embd, F = hp->n_ff, kdim = (uint64_t)hp->n_head_kv * hp->head_dim,
             vdim = (uint64_t)hp->n_head_kv * hp->head_dim_v, qdim = (uint64_t)hp->n_head * hp->head_dim,
             odim = (uint64_t)hp->n_head * hp->head_dim_v, total = 0, cache;
    c->n_ctx_kt = (n_ctx + HAI_KT - 1) / HAI_KT * HAI_KT;
    bool ok = hai_mul_u64((uint64_t)hp->n_layer * c->n_ctx_kt, kdim, &cache);
    c->k_cache = ok ? alloc_cache(cache, 2, &total, &ok) : NULL;
    c->tokens = alloc_checked(n_ctx, sizeof *c->tokens, &total, &ok);
    ok = ok && hai_mul_u64((uint64_t)hp->n_layer * n_ctx, vdim, &cache);
    c->v_cache = ok ? alloc_cache(cache, 2, &total, &ok) : NULL;
    uint64_t widest = E > F ? E : F;
    if (odim > widest) widest = odim;
    c->x = alloc_checked(n_batch, E * 4, &total, &ok);
    c->xn = alloc_checked(n_batch, widest * 4, &total, &ok);
    c->q = alloc_checked(n_batch, qdim * 4, &total, &ok);
    c->kv_k = alloc_checked(n_batch, kdim * 4, &total, &ok);
    c->kv_v = alloc_checked(n_batch, vdim * 4, &total, &ok);
    c->attn = alloc_checked(n_batch, odim * 4, &total, &ok);
    c->gate = alloc_checked(n_batch, F * 4, &total, &ok);
    c->up = alloc_checked(n_batch, F * 4, &total, &ok);
    /* the largest quantized activation row any matmul needs */
    c->act_row_bytes = hai_act_row_bytes(HAI_ACT_Q16, (int64_t)widest) + 64;
    c->act = alloc_checked(n_batch, c->act_row_bytes, &total, &ok);
    c->inv_freq = alloc_checked(hp->n_rot / 2 + 1, sizeof(double), &total, &ok);
    c->rope_cs = alloc_checked(n_batch, (uint64_t)hp->n_rot * 4 + 4, &total, &ok);
    /* per thread, for the query heads of one KV group: a tile of scores, an accumulator, the
     * running maximum and sum, a block of keys as floats (64-float padding keeps threads off each
     * other's cache lines) */
    uint32_t group = hp->n_head / hp->n_head_kv;
    c->att_tile_stride = (size_t)group * (HAI_ATT_TILE + hp->head_dim_v + 2) + (size_t)hp->head_dim * HAI_KT + 64;
    c->att_tile = alloc_checked((uint64_t)n_threads, c->att_tile_stride * 4, &total, &ok);
    if (c->k->decode_prep) { /* the matmuls that do not take the matrix path */
        c->act_dec_rows = n_batch < HAI_GEMM_TOKENS ? n_batch : HAI_GEMM_TOKENS;
        c->act_dec = alloc_checked(c->act_dec_rows, c->act_row_bytes, &total, &ok);
    }
    c->gemm_min = c->k->gemm_min_tokens > 0 ? (uint32_t)c->k->gemm_min_tokens : HAI_GEMM_TOKENS;
    if (c->k->gemm_prep_bytes && n_batch >= c->gemm_min) { /* prefill (or all) on the matrix kernels */
        c->gemm_prep = alloc_checked(1, c->k->gemm_prep_bytes((int64_t)widest, n_batch), &total, &ok);
        c->gemm_scratch_stride = (c->k->gemm_scratch_bytes((int64_t)widest) + 127) / 64 * 64;
        c->gemm_scratch = alloc_checked((uint64_t)n_threads, c->gemm_scratch_stride, &total, &ok);
    }
    c->n_logit_rows = p.logits_all ? n_batch : 1;
    c->logits = alloc_checked(c->n_logit_rows, (uint64_t)hp->n_vocab * 4, &total, &ok);
    if (ok && p.pool) {
        c->pool = (hai_pool *)p.pool;
        n_threads = hai_pool_size(c->pool);
    } else if (ok) {
        c->pool = hai_pool_create(n_threads);
        c->own_pool = true;
    }
    if (!ok || !c->pool) {
        hai_context_free(c);
        return hai_fail(err, HAI_ERR_NOMEM, "context: cannot allocate %.1f MiB for n_ctx %u, n_batch %u",
                        (double)total / (1 << 20), n_ctx, n_batch);
    }
    memset(c->act, 0, (size_t)n_batch * c->act_row_bytes);
    for (uint32_t i = 0; i < hp->n_rot / 2; i++) {
        double f = pow((double)hp->rope_base, -2.0 * i / (double)hp->n_rot);
        if (m->rope_freq_factors) f /= m->rope_freq_factors[i];
        c->inv_freq[i] = f;
    }
    *out = c;
    return HAI_OK;
}

void hai_context_free(hai_context *c) {
    if (!c) return;
    if (c->own_pool) hai_pool_free(c->pool);
    free(c->k_cache), free(c->v_cache), free(c->x), free(c->xn), free(c->q), free(c->kv_k), free(c->kv_v);
    free(c->attn), free(c->gate), free(c->up), free(c->act), free(c->inv_freq), free(c->rope_cs), free(c->att_tile);
    free(c->gemm_prep), free(c->gemm_scratch), free(c->act_dec);
    free(c->logits);
    free(c->tokens);
    free(c);
}

uint32_t hai_context_n_ctx(const hai_context *c) { return c->n_ctx; }
uint32_t hai_context_n_past(const hai_context *c) { return c->n_past; }

const hai_token *hai_context_tokens(const hai_context *c, uint32_t *n) {
    if (n) *n = c->n_past;
    return c->tokens;
}

uint64_t hai_context_memory_bytes(const hai_context *c) {
    const hai_hparams *hp = &c->m->hp;
    uint64_t kv = (uint64_t)hp->n_layer * c->n_ctx * hp->n_head_kv * (hp->head_dim + hp->head_dim_v) * 2;
    uint64_t E = hp->n_embd, F = hp->n_ff, widest = E > F ? E : F;
    uint64_t rows = 4 * (E + widest + (uint64_t)hp->n_head * (hp->head_dim + hp->head_dim_v) +
                         (uint64_t)hp->n_head_kv * (hp->head_dim + hp->head_dim_v) + 2 * F) + c->act_row_bytes;
    uint64_t gemm = c->gemm_prep ? c->k->gemm_prep_bytes((int64_t)widest, c->n_batch) + (uint64_t)hai_pool_size(c->pool) * c->gemm_scratch_stride : 0;
    return kv + c->n_batch * rows + (uint64_t)c->n_logit_rows * hp->n_vocab * 4 + gemm + (uint64_t)c->act_dec_rows * c->act_row_bytes;
}

void hai_context_set_abort(hai_context *c, bool (*fn)(void *), void *user) {
    c->should_abort = fn;
    c->abort_user = user;
}

hai_status hai_eval(hai_context *c, const hai_token *tokens, size_t n, hai_error *err) {
    if (!c || (!tokens && n)) return hai_fail(err, HAI_ERR_INVALID, "eval: NULL argument");
    if (n == 0) return hai_fail(err, HAI_ERR_INVALID, "eval: no tokens");
    if (n > c->n_ctx - c->n_past)
        return hai_fail(err, HAI_ERR_LIMIT, "eval: %zu tokens after %u do not fit in the context of %u", n, c->n_past, c->n_ctx);
    for (size_t i = 0; i < n; i++)
        if (tokens[i] < 0 || (uint32_t)tokens[i] >= c->m->hp.n_vocab)
            return hai_fail(err, HAI_ERR_INVALID, "eval: token %d at %zu is outside the vocabulary of %u", tokens[i], i,
                            c->m->hp.n_vocab);
    c->n_out = 0;
    c->n_last = 0;
    if (c->logits_all && n > c->n_batch)
        return hai_fail(err, HAI_ERR_LIMIT, "eval: with logits_all, at most n_batch = %u tokens per call (got %zu)", c->n_batch, n);
    for (size_t done = 0; done < n;) {
        uint32_t k = (uint32_t)(n - done < c->n_batch ? n - done : c->n_batch);
        hai_status st = hai_forward(c, tokens + done, k, err);
        if (st) return st;
        memcpy(c->tokens + c->n_past, tokens + done, k * sizeof *tokens);
        c->n_past += k;
        done += k;
    }
    c->n_last = (int32_t)n;
    return HAI_OK;
}

const float *hai_logits(const hai_context *c, int32_t i) {
    if (!c || c->n_last == 0) return NULL;
    if (i < 0) i = c->n_last - 1;
    if (i >= c->n_last) return NULL;
    int32_t first = c->n_last - c->n_out; /* rows kept: the last n_out tokens */
    if (i < first) return NULL;
    return c->logits + (size_t)(i - first) * c->m->hp.n_vocab;
}

hai_status hai_context_truncate(hai_context *c, uint32_t n_past, hai_error *err) {
    if (!c) return hai_fail(err, HAI_ERR_INVALID, "truncate: NULL context");
    if (n_past > c->n_past) return hai_fail(err, HAI_ERR_INVALID, "truncate: %u is beyond the %u positions held", n_past, c->n_past);
    c->n_past = n_past;
    c->n_last = 0;
    return HAI_OK;
}
