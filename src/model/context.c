/* Contexts: creation (all memory for n_ctx positions and n_batch tokens allocated here), eval in
 * batches, logits, truncation. */
#include "context.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/error.h"
#include "base/memory.h"
#include "quant/quant.h"

hai_context_params hai_context_default_params(void) { return (hai_context_params){0}; }

const char *hai_kernels_name(void) { return hai_kernels_best()->name; }

/* What a context allocates, counted as it goes; a dry run (hai_context_plan_bytes) counts the
 * same sizes without allocating, so a plan and the real context cannot disagree. */
typedef struct sizer {
    uint64_t total;
    bool ok, dry;
} sizer;

/* n_ctx 0: the trained context up to 4096 */
static uint32_t default_n_ctx(const hai_hparams *hp) { return hp->n_ctx_train && hp->n_ctx_train < 4096 ? hp->n_ctx_train : 4096; }

static char dry_block[64] __attribute__((aligned(64))); /* what a dry run "allocates": never read or written */

static void *alloc_checked(uint64_t a, uint64_t b, sizer *z) {
    uint64_t n;
    if (!hai_mul_u64(a, b, &n) || n > SIZE_MAX) {
        z->ok = false;
        return NULL;
    }
    z->total += n;
    if (z->dry) return dry_block;
    /* cache-line aligned: the kernels load activation rows 64 bytes at a time, and a load that
     * straddles two lines costs two (malloc gives 16-byte alignment) */
    void *p = n <= SIZE_MAX - 64 ? aligned_alloc(64, n ? (size_t)(n + 63) / 64 * 64 : 64) : NULL;
    if (!p) z->ok = false;
    return p;
}

/* The KV cache: read whole for every token, as the weights are (memory.h). Freed with free(). */
static void *alloc_cache(uint64_t a, uint64_t b, sizer *z) {
    uint64_t n;
    if (!hai_mul_u64(a, b, &n) || n > SIZE_MAX) {
        z->ok = false;
        return NULL;
    }
    z->total += hai_huge_bytes((size_t)n); /* whole huge pages: resident whole once touched */
    if (z->dry) return dry_block;
    void *p = hai_alloc_huge((size_t)n);
    if (!p) z->ok = false;
    return p;
}

/* The rotary frequency of each dimension pair: base^(-2i/n_rot), divided by llama3's factors or
 * LongRoPE's (the long ones when the context is longer than the original one: per context, as
 * llama.cpp chooses; transformers chooses per sequence length, which changes a sequence's keys
 * as it grows); with
 * YaRN, between itself (the pairs that turn more than beta_fast times in the original context)
 * and itself / factor (fewer than beta_slow times), linearly over the pairs between. */
static void rope_frequencies(const hai_model *m, uint32_t n_ctx, double *inv) {
    const hai_hparams *hp = &m->hp;
    uint32_t half = hp->n_rot / 2;
    double lo = 0, hi = 0;
    if (hp->yarn) { /* the pair index at which a dimension turns `r` times in the original context */
        double n = hp->n_rot, lb = 2.0 * log((double)hp->rope_base);
        lo = floor(n * log(hp->yarn_orig_ctx / (hp->yarn_beta_fast * 2.0 * M_PI)) / lb);
        hi = ceil(n * log(hp->yarn_orig_ctx / (hp->yarn_beta_slow * 2.0 * M_PI)) / lb);
        lo = lo < 0 ? 0 : lo;
        hi = hi > n - 1 ? n - 1 : hi;
        if (hi == lo) hi += 0.001;
    }
    for (uint32_t i = 0; i < half; i++) {
        double f = pow((double)hp->rope_base, -2.0 * i / (double)hp->n_rot);
        if (m->rope_freq_factors) f /= m->rope_freq_factors[i];
        if (m->rope_long) f /= n_ctx > hp->rope_orig_ctx ? m->rope_long[i] : m->rope_short[i];
        if (hp->yarn) {
            double ramp = (i - lo) / (hi - lo), keep = 1.0 - (ramp < 0 ? 0 : ramp > 1 ? 1 : ramp);
            f = f / hp->yarn_factor * (1.0 - keep) + f * keep;
        }
        inv[i] = f;
    }
}

/* Each layer's share of the KV cache. A sliding-window layer needs the window before the first
 * token of a pass and the pass itself (n_batch), so it keeps that many positions as a ring: the
 * cache grows with the context only for the global layers (Gemma 3 1B at 32K: 5 of 26 layers). */
static void kv_plan(hai_context *c) {
    const hai_hparams *hp = &c->m->hp;
    uint64_t ring = 0;
    if (hp->swa_window) {
        ring = ((uint64_t)hp->swa_window - 1 + c->n_batch + HAI_KT - 1) / HAI_KT * HAI_KT;
        if (ring >= c->n_ctx_kt) ring = 0;
    }
    c->ring = (uint32_t)ring;
    c->k_seq = c->v_seq = 0;
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        c->kv_cap[l] = ring && c->m->layers[l].swa ? (uint32_t)ring : c->n_ctx_kt;
        c->k_off[l] = c->k_seq, c->v_off[l] = c->v_seq;
        c->k_seq += (size_t)hp->n_head_kv * c->kv_cap[l] * c->k_rowu;
        c->v_seq += (size_t)hp->n_head_kv * c->kv_cap[l] * c->v_rowu;
    }
}

/* Whether sequence seq's rings still hold what a token at position n needs (the window before it). */
static bool rings_hold(const hai_context *c, int32_t seq, uint32_t n) {
    uint32_t w = c->m->hp.swa_window;
    return !c->ring || (n >= w ? n - w + 1 : 0) >= c->seq_lo[seq];
}

/* A context for m (dry: only its size, into *bytes, nothing allocated but the struct, freed again). */
static hai_status build(const hai_model *m, const hai_context_params *pp, bool dry, hai_context **out, uint64_t *bytes, hai_error *err) {
    if (!m || (!out && !dry)) return hai_fail(err, HAI_ERR_INVALID, "context: NULL argument");
    if (out) *out = NULL;
    hai_status kst = hai_kernels_check(err);
    if (kst) return kst;
    hai_context_params p = pp ? *pp : hai_context_default_params();
    const hai_hparams *hp = &m->hp;
    uint32_t n_ctx = p.n_ctx ? p.n_ctx : default_n_ctx(hp);
    if (n_ctx > (1u << 24)) return hai_fail(err, HAI_ERR_LIMIT, "context: n_ctx %u is above the limit of %u", n_ctx, 1u << 24);
    uint32_t n_batch = p.n_batch ? p.n_batch : 512;
    uint32_t n_seq = p.n_seq ? p.n_seq : 1;
    if (n_seq > 256) return hai_fail(err, HAI_ERR_LIMIT, "context: n_seq %u is above the limit of 256", n_seq);
    if (n_batch > n_ctx * n_seq) n_batch = n_ctx * n_seq;
    if (p.n_draft && (uint64_t)n_seq * (p.n_draft + 1ull) > n_batch)
        return hai_fail(err, HAI_ERR_INVALID, "context: n_draft %u for %u sequences needs n_batch of %llu or more (%u)", p.n_draft, n_seq,
                        (unsigned long long)n_seq * (p.n_draft + 1ull), n_batch);
    int n_threads = p.pool ? hai_pool_size((hai_pool *)p.pool) : p.n_threads > 0 ? p.n_threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (n_threads < 1) n_threads = 1;
    if (n_threads > 256) n_threads = 256;

    hai_context *c = calloc(1, sizeof *c);
    if (!c) return hai_fail(err, HAI_ERR_NOMEM, "context: out of memory");
    c->m = m;
    c->k = hai_kernels_best();
    c->n_ctx = n_ctx;
    c->n_batch = n_batch;
    c->n_seq = n_seq;
    c->logits_all = p.logits_all;
    uint64_t E = hp->n_embd, F = hp->n_ff, kdim = (uint64_t)hp->n_head_kv * hp->head_dim,
             vdim = (uint64_t)hp->n_head_kv * hp->head_dim_v, qdim = (uint64_t)hp->n_head * hp->head_dim,
             odim = (uint64_t)hp->n_head * hp->head_dim_v, cache;
    sizer z = {0, true, dry};
    c->n_ctx_kt = (n_ctx + HAI_KT - 1) / HAI_KT * HAI_KT;
    /* the KV cache's type: F16 (the default), or Q8_0 / Q4_0 rows (a row of head_dim in blocks of 32) */
    c->kv_type = p.kv_type ? p.kv_type : HAI_TYPE_F16;
    if (c->kv_type == HAI_TYPE_F16) {
        c->k_rowu = hp->head_dim, c->v_rowu = hp->head_dim_v;
    } else if ((c->kv_type == HAI_TYPE_Q8_0 || c->kv_type == HAI_TYPE_Q4_0) && hp->head_dim % 32 == 0 && hp->head_dim_v % 32 == 0 &&
               hp->head_dim <= HAI_KVQ_MAX_HD) {
        c->k_rowu = (uint32_t)(hai_row_bytes(c->kv_type, hp->head_dim) / 2), c->v_rowu = (uint32_t)(hai_row_bytes(c->kv_type, hp->head_dim_v) / 2);
    } else {
        uint32_t kt = c->kv_type;
        free(c);
        return hai_fail(err, HAI_ERR_UNSUPPORTED, "context: a KV cache of type %s (F16, Q8_0 or Q4_0; the quantized ones need head_dim a multiple of 32 up to 1024, here %u)",
                        hai_type_name(kt), hp->head_dim);
    }
    z.dry = false; /* the layers' table: real in a dry run too (kv_plan fills it; freed at its end) */
    c->kv_cap = alloc_checked(hp->n_layer, sizeof *c->kv_cap, &z);
    c->k_off = alloc_checked(hp->n_layer, sizeof *c->k_off, &z);
    c->v_off = alloc_checked(hp->n_layer, sizeof *c->v_off, &z);
    z.dry = dry;
    c->seq_lo = alloc_checked(n_seq, sizeof *c->seq_lo, &z);
    if (z.ok) kv_plan(c);
    z.ok = z.ok && hai_mul_u64(n_seq, c->k_seq, &cache);
    c->k_cache = z.ok ? alloc_cache(cache, 2, &z) : NULL;
    c->tokens = alloc_checked((uint64_t)n_seq * n_ctx, sizeof *c->tokens, &z);
    c->seq_past = alloc_checked(n_seq, sizeof *c->seq_past, &z);
    z.ok = z.ok && hai_mul_u64(n_seq, c->v_seq, &cache);
    c->v_cache = z.ok ? alloc_cache(cache, 2, &z) : NULL;
    c->b_seq = alloc_checked(n_batch, sizeof *c->b_seq, &z);
    c->b_pos = alloc_checked(n_batch, sizeof *c->b_pos, &z);
    c->b_rows = alloc_checked(n_batch, sizeof *c->b_rows, &z);
    c->all_logits = p.logits_all ? alloc_checked(n_batch, sizeof *c->all_logits, &z) : NULL;
    uint64_t widest = E > F ? E : F;
    if (odim > widest) widest = odim;
    c->x = alloc_checked(n_batch, E * 4, &z);
    c->xn = alloc_checked(n_batch, widest * 4, &z);
    c->q = alloc_checked(n_batch, qdim * 4, &z);
    c->kv_k = alloc_checked(n_batch, kdim * 4, &z);
    c->kv_v = alloc_checked(n_batch, vdim * 4, &z);
    c->attn = alloc_checked(n_batch, odim * 4, &z);
    c->gate = alloc_checked(n_batch, F * 4, &z);
    c->up = alloc_checked(n_batch, F * 4, &z);
    if (hp->n_expert) {
        uint64_t ne = hp->n_expert, k = hp->n_expert_used;
        c->moe_logits = alloc_checked(n_batch, ne * 4, &z);
        c->moe_sel = alloc_checked(n_batch, k * 4, &z);
        c->moe_selw = alloc_checked(n_batch, k * 4, &z);
        c->moe_tok = alloc_checked(n_batch, k * 4, &z);
        c->moe_w = alloc_checked(n_batch, k * 4, &z);
        c->moe_off = alloc_checked(ne + 1, 4, &z);
        c->moe_cur = alloc_checked(ne, 4, &z);
        c->moe_xg = alloc_checked(n_batch, E * 4, &z);
        c->moe_tmp = alloc_checked(n_batch, E * 4, &z);
    }
    /* the largest quantized activation row any matmul needs */
    c->act_row_bytes = hai_decode_row_bytes((int64_t)widest) + 64; /* the plain row, or the decode layout's longer one */
    c->act = alloc_checked(n_batch, c->act_row_bytes, &z);
    c->inv_freq = alloc_checked(hp->n_rot / 2 + 1, sizeof(double), &z);
    c->rope_cs = alloc_checked(n_batch, (uint64_t)hp->n_rot * 4 + 4, &z);
    if (hp->rope_base_swa > 0) {
        c->inv_freq_swa = alloc_checked(hp->n_rot / 2 + 1, sizeof(double), &z);
        c->rope_cs_swa = alloc_checked(n_batch, (uint64_t)hp->n_rot * 4 + 4, &z);
    }
    /* per thread, for the query heads of one KV group: a tile of scores, an accumulator, the
     * running maximum and sum, a block of keys as floats (64-float padding keeps threads off each
     * other's cache lines) */
    uint32_t group = hp->n_head / hp->n_head_kv;
    c->att_tile_stride = (size_t)group * (HAI_ATT_TILE + hp->head_dim_v + 2) + (size_t)hp->head_dim * HAI_KT + 64;
    c->att_tile = alloc_checked((uint64_t)n_threads, c->att_tile_stride * 4, &z);
    if (c->k->decode_prep) { /* the matmuls that do not take the matrix path */
        c->act_dec_rows = n_batch < HAI_FEW_TOKENS ? n_batch : HAI_FEW_TOKENS;
        c->act_dec = alloc_checked(c->act_dec_rows, c->act_row_bytes, &z);
        if (c->k->few_scratch_bytes) { /* several tokens a pass below the matrix path, and weights in panels (kernels.h) */
            c->few_scratch_stride = (c->k->few_scratch_bytes((int64_t)widest) + 127) / 64 * 64;
            c->few_scratch = alloc_checked((uint64_t)n_threads, c->few_scratch_stride, &z);
        }
    }
    c->gemm_min = c->k->gemm_min_tokens > 0 ? (uint32_t)c->k->gemm_min_tokens : HAI_GEMM_TOKENS;
    if (c->k->gemm_prep_bytes && n_batch >= c->gemm_min) { /* prefill (or all) on the matrix kernels */
        c->gemm_prep = alloc_checked(1, c->k->gemm_prep_bytes((int64_t)widest, n_batch), &z);
        c->gemm_scratch_stride = (c->k->gemm_scratch_bytes((int64_t)widest) + 127) / 64 * 64;
        c->gemm_scratch = alloc_checked((uint64_t)n_threads, c->gemm_scratch_stride, &z);
    }
    /* a decode step: the next token of every sequence and the drafts after it */
    c->n_logit_rows = p.logits_all ? n_batch : n_seq * (p.n_draft + 1);
    if (c->n_logit_rows < n_seq) c->n_logit_rows = n_seq;
    c->logits = alloc_checked(c->n_logit_rows, (uint64_t)hp->n_vocab * 4, &z);
    c->embd = alloc_checked(n_seq, (uint64_t)hp->n_embd * 4, &z);
    c->embd_rows = alloc_checked(n_seq, sizeof *c->embd_rows, &z);
    c->kept = alloc_checked(c->n_logit_rows, sizeof *c->kept, &z);
    if (dry) { /* the sizes are counted; nothing but the struct and the layers' table was allocated */
        free(c->kv_cap), free(c->k_off), free(c->v_off), free(c);
        if (!z.ok) return hai_fail(err, HAI_ERR_LIMIT, "context: n_ctx %u, n_batch %u, n_seq %u overflow the address space", n_ctx, n_batch, n_seq);
        *bytes = z.total;
        return HAI_OK;
    }
    if (z.ok && p.pool) {
        c->pool = (hai_pool *)p.pool;
        n_threads = hai_pool_size(c->pool);
    } else if (z.ok) {
        c->pool = hai_pool_create(n_threads);
        c->own_pool = true;
    }
    if (!z.ok || !c->pool) {
        hai_context_free(c);
        return hai_fail(err, HAI_ERR_NOMEM, "context: cannot allocate %.1f MiB for n_ctx %u, n_batch %u",
                        (double)z.total / (1 << 20), n_ctx, n_batch);
    }
    memset(c->act, 0, (size_t)n_batch * c->act_row_bytes);
    memset(c->seq_past, 0, (size_t)n_seq * sizeof *c->seq_past);
    memset(c->seq_lo, 0, (size_t)n_seq * sizeof *c->seq_lo);
    for (uint32_t i = 0; c->all_logits && i < n_batch; i++) c->all_logits[i] = true;
    rope_frequencies(m, n_ctx, c->inv_freq);
    for (uint32_t i = 0; c->inv_freq_swa && i < hp->n_rot / 2; i++) c->inv_freq_swa[i] = pow((double)hp->rope_base_swa, -2.0 * i / (double)hp->n_rot);
    c->bytes = z.total; /* set last: a context that failed half-way returns nothing to the budget */
    *out = c;
    return HAI_OK;
}

void hai_context_free(hai_context *c) {
    if (!c) return;
    if (c->m->budget && c->bytes) { /* what it took goes back to the model's budget */
        pthread_mutex_lock(&c->m->budget->mu);
        c->m->budget->used -= c->bytes, c->m->budget->n_contexts--;
        pthread_mutex_unlock(&c->m->budget->mu);
    }
    if (c->own_pool) hai_pool_free(c->pool);
    free(c->k_cache), free(c->v_cache), free(c->kv_cap), free(c->k_off), free(c->v_off), free(c->seq_lo), free(c->x), free(c->xn), free(c->q), free(c->kv_k), free(c->kv_v);
    free(c->attn), free(c->gate), free(c->up), free(c->act), free(c->inv_freq), free(c->rope_cs), free(c->inv_freq_swa), free(c->rope_cs_swa), free(c->att_tile);
    free(c->gemm_prep), free(c->gemm_scratch), free(c->few_scratch), free(c->act_dec);
    free(c->moe_logits), free(c->moe_sel), free(c->moe_selw), free(c->moe_tok), free(c->moe_w), free(c->moe_off), free(c->moe_cur);
    free(c->moe_xg), free(c->moe_tmp);
    free(c->logits), free(c->kept), free(c->embd), free(c->embd_rows);
    free(c->tokens), free(c->seq_past), free(c->b_seq), free(c->b_pos), free(c->b_rows), free(c->all_logits);
    free(c);
}

uint32_t hai_context_n_ctx(const hai_context *c) { return c->n_ctx; }
const hai_model *hai_context_model(const hai_context *c) { return c->m; }
uint32_t hai_context_n_past(const hai_context *c) { return c->seq_past[0]; }
uint32_t hai_context_n_seq(const hai_context *c) { return c->n_seq; }

const hai_token *hai_context_tokens(const hai_context *c, uint32_t *n) { return hai_seq_tokens(c, 0, n); }

uint32_t hai_seq_n_past(const hai_context *c, int32_t seq) {
    return c && seq >= 0 && (uint32_t)seq < c->n_seq ? c->seq_past[seq] : 0;
}

const hai_token *hai_seq_tokens(const hai_context *c, int32_t seq, uint32_t *n) {
    if (!c || seq < 0 || (uint32_t)seq >= c->n_seq) {
        if (n) *n = 0;
        return NULL;
    }
    if (n) *n = c->seq_past[seq];
    return c->tokens + (size_t)seq * c->n_ctx;
}

uint64_t hai_context_memory_bytes(const hai_context *c) { return c->bytes; }

uint64_t hai_context_plan_bytes(const hai_model *m, const hai_context_params *p) {
    uint64_t bytes = 0;
    return m && !build(m, p, true, NULL, &bytes, NULL) ? bytes : 0;
}

/* What contexts of q for m and (when not NULL) the draft beside it take together; 0: they cannot be made. */
static uint64_t plan_pair(const hai_model *m, const hai_model *draft, const hai_context_params *q) {
    uint64_t a = hai_context_plan_bytes(m, q), b = 0;
    if (a && draft && !(b = hai_context_plan_bytes(draft, q))) return 0;
    return a + b;
}

/* The largest n_ctx up to q's (or the default) whose pair of contexts fits in bytes, rounded. */
static uint32_t fit_pair(const hai_model *m, const hai_model *draft, hai_context_params q, uint64_t bytes) {
    uint32_t hi = q.n_ctx ? q.n_ctx : default_n_ctx(&m->hp), lo = 0;
    while (lo < hi) { /* the plan grows with n_ctx: the largest that fits */
        uint32_t mid = lo + (hi - lo + 1) / 2;
        q.n_ctx = mid;
        uint64_t need = plan_pair(m, draft, &q);
        if (need && need <= bytes) lo = mid;
        else hi = mid - 1;
    }
    return lo >= 512 ? lo / 256 * 256 : lo >= 64 ? lo / 16 * 16 : lo; /* a round number where there is room for one */
}

uint32_t hai_context_fit(const hai_model *m, const hai_context_params *p, uint64_t bytes) {
    return m ? fit_pair(m, NULL, p ? *p : hai_context_default_params(), bytes) : 0;
}

uint32_t hai_context_fit_kv(const hai_model *m, const hai_model *draft, hai_context_params *p, uint64_t bytes, uint32_t *f16_n_ctx) {
    if (f16_n_ctx) *f16_n_ctx = 0;
    if (!m || !p) return 0;
    static const uint32_t types[] = {HAI_TYPE_F16, HAI_TYPE_Q8_0, HAI_TYPE_Q4_0}; /* the more exact first */
    uint32_t want = p->n_ctx ? p->n_ctx : default_n_ctx(&m->hp), best = 0, best_type = p->kv_type ? p->kv_type : HAI_TYPE_F16;
    for (size_t i = 0; i < sizeof types / sizeof *types; i++) {
        if (p->kv_type && types[i] != p->kv_type) continue; /* the caller's type only */
        hai_context_params q = *p;
        q.kv_type = types[i], q.n_ctx = want;
        uint64_t need = plan_pair(m, draft, &q);
        if (!need) continue; /* a type this model's heads cannot take (head_dim no multiple of 32) */
        uint32_t n = need <= bytes ? want : fit_pair(m, draft, q, bytes); /* the wanted context itself, not rounded */
        if (types[i] == HAI_TYPE_F16 && f16_n_ctx) *f16_n_ctx = n;
        if (n > best) best = n, best_type = types[i];
        if (n >= want) break;
    }
    p->kv_type = best_type, p->n_ctx = best;
    return best;
}

hai_status hai_context_create(const hai_model *m, const hai_context_params *p, hai_context **out, hai_error *err) {
    if (!m || !out) return hai_fail(err, HAI_ERR_INVALID, "context: NULL argument");
    *out = NULL;
    hai_budget *b = m->budget;
    if (!b) return build(m, p, false, out, NULL, err);
    uint64_t need;
    hai_status st = build(m, p, true, NULL, &need, err);
    if (st) return st;
    pthread_mutex_lock(&b->mu);
    uint64_t used = b->used, limit = b->limit;
    uint32_t others = b->n_contexts;
    bool fits = need <= limit - used;
    if (fits) b->used += need, b->n_contexts++; /* reserved before a byte is allocated */
    pthread_mutex_unlock(&b->mu);
    if (!fits) {
        uint32_t n_ctx = hai_context_fit(m, p, limit - used);
        return hai_fail(err, HAI_ERR_LIMIT,
                        "context: it needs %.1f MiB (KV cache and scratch); the memory budget of %.1f MiB has %.1f MiB left after the "
                        "weights (%.1f MiB)%s%.0u%s; %s%.0u",
                        need / 1048576.0, limit / 1048576.0, (limit - used) / 1048576.0, m->weights_bytes / 1048576.0,
                        others ? " and " : "", others, others ? (others == 1 ? " other context" : " other contexts") : "",
                        n_ctx ? "a context of n_ctx " : "no context fits", n_ctx);
    }
    st = build(m, p, false, out, NULL, err);
    if (st) {
        pthread_mutex_lock(&b->mu);
        b->used -= need, b->n_contexts--;
        pthread_mutex_unlock(&b->mu);
    }
    return st;
}

void hai_context_set_abort(hai_context *c, bool (*fn)(void *), void *user) {
    c->should_abort = fn;
    c->abort_user = user;
}

/* The checks of a batch: tokens in the vocabulary, sequences in range, each sequence's tokens
 * within its context, the logits asked for within what the context keeps. last[s] gets the
 * index of sequence s's last token (-1: none), for the default choice of logits. */
static hai_status check_batch(const hai_context *c, const hai_batch *b, int64_t *last, hai_error *err) {
    uint32_t count[256] = {0}, want = 0;
    for (uint32_t s = 0; s < c->n_seq; s++) last[s] = -1;
    for (size_t i = 0; i < b->n; i++) {
        hai_token t = b->tokens[i];
        int32_t s = b->seq ? b->seq[i] : 0;
        if (t < 0 || (uint32_t)t >= c->m->hp.n_vocab)
            return hai_fail(err, HAI_ERR_INVALID, "eval: token %d at %zu is outside the vocabulary of %u", t, i, c->m->hp.n_vocab);
        if (s < 0 || (uint32_t)s >= c->n_seq) return hai_fail(err, HAI_ERR_INVALID, "eval: sequence %d at %zu (the context has %u)", s, i, c->n_seq);
        if (++count[s] > c->n_ctx - c->seq_past[s])
            return hai_fail(err, HAI_ERR_LIMIT, "eval: the tokens of sequence %d do not fit after its %u of %u positions", s, c->seq_past[s],
                            c->n_ctx);
        last[s] = (int64_t)i;
        if (b->logits) want += b->logits[i];
    }
    for (uint32_t s = 0; !b->logits && s < c->n_seq; s++) want += count[s] > 0;
    if (want > c->n_logit_rows)
        return hai_fail(err, HAI_ERR_LIMIT, "eval: logits of %u tokens asked for; the context keeps %u (max(n_seq, n_batch with logits_all))", want,
                        c->n_logit_rows);
    return HAI_OK;
}

hai_status hai_decode(hai_context *c, const hai_batch *b, hai_error *err) {
    if (!c || !b || (!b->tokens && b->n)) return hai_fail(err, HAI_ERR_INVALID, "eval: NULL argument");
    if (b->n == 0) return hai_fail(err, HAI_ERR_INVALID, "eval: no tokens");
    c->n_kept = 0;
    c->n_last = 0;
    int64_t last[256];
    hai_status st = check_batch(c, b, last, err);
    if (st) return st;
    for (size_t done = 0; done < b->n;) { /* passes of n_batch tokens */
        uint32_t k = (uint32_t)(b->n - done < c->n_batch ? b->n - done : c->n_batch), rows = 0, row0 = c->n_kept;
        for (uint32_t i = 0; i < k; i++) {
            size_t bi = done + i;
            int32_t s = b->seq ? b->seq[bi] : 0;
            c->b_seq[i] = s;
            if (b->logits ? b->logits[bi] : last[s] == (int64_t)bi) {
                c->b_rows[rows++] = (int32_t)i;
                c->kept[c->n_kept++] = bi;
            }
        }
        /* a sequence's tokens at its next positions, in order */
        uint32_t next[256];
        for (uint32_t i = 0; i < k; i++) next[c->b_seq[i]] = c->seq_past[c->b_seq[i]];
        for (uint32_t i = 0; i < k; i++) {
            c->b_pos[i] = (int32_t)next[c->b_seq[i]]++;
            if (c->ring && (uint32_t)c->b_pos[i] + 1 > c->ring + c->seq_lo[c->b_seq[i]]) /* its slot held that position */
                c->seq_lo[c->b_seq[i]] = (uint32_t)c->b_pos[i] + 1 - c->ring;
        }
        st = hai_forward(c, b->tokens + done, k, rows, row0, err);
        if (st) {
            c->n_kept = 0;
            return st;
        }
        for (uint32_t i = 0; i < k; i++) {
            int32_t s = c->b_seq[i];
            c->tokens[(size_t)s * c->n_ctx + c->seq_past[s]++] = b->tokens[done + i];
        }
        done += k;
    }
    c->n_last = b->n;
    return HAI_OK;
}

const float *hai_batch_logits(const hai_context *c, size_t i) {
    if (!c || i >= c->n_last) return NULL;
    uint32_t lo = 0, hi = c->n_kept; /* kept is ascending */
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (c->kept[mid] < i) lo = mid + 1;
        else hi = mid;
    }
    return lo < c->n_kept && c->kept[lo] == i ? c->logits + (size_t)lo * c->m->hp.n_vocab : NULL;
}

hai_status hai_eval(hai_context *c, const hai_token *tokens, size_t n, hai_error *err) {
    if (!c || (!tokens && n)) return hai_fail(err, HAI_ERR_INVALID, "eval: NULL argument");
    if (n == 0) return hai_fail(err, HAI_ERR_INVALID, "eval: no tokens");
    if (n > c->n_ctx - c->seq_past[0])
        return hai_fail(err, HAI_ERR_LIMIT, "eval: %zu tokens after %u do not fit in the context of %u", n, c->seq_past[0], c->n_ctx);
    if (c->logits_all && n > c->n_batch)
        return hai_fail(err, HAI_ERR_LIMIT, "eval: with logits_all, at most n_batch = %u tokens per call (got %zu)", c->n_batch, n);
    hai_batch b = {.n = n, .tokens = tokens, .logits = c->logits_all ? c->all_logits : NULL};
    return hai_decode(c, &b, err);
}

const float *hai_logits(const hai_context *c, int32_t i) {
    if (!c || c->n_last == 0) return NULL;
    if (i < 0) i = (int32_t)c->n_last - 1;
    return hai_batch_logits(c, (size_t)i);
}

hai_status hai_seq_truncate(hai_context *c, int32_t seq, uint32_t n_past, hai_error *err) {
    if (!c || seq < 0 || (uint32_t)seq >= c->n_seq) return hai_fail(err, HAI_ERR_INVALID, "truncate: no sequence %d", seq);
    if (n_past > c->seq_past[seq])
        return hai_fail(err, HAI_ERR_INVALID, "truncate: %u is beyond the %u positions sequence %d holds", n_past, c->seq_past[seq], seq);
    if (!rings_hold(c, seq, n_past)) n_past = 0; /* the window before n_past is overwritten: start over */
    if (n_past == 0) c->seq_lo[seq] = 0;
    c->seq_past[seq] = n_past; /* the last decode's logits stay: they belong to tokens, not to the cache */
    return HAI_OK;
}

hai_status hai_context_truncate(hai_context *c, uint32_t n_past, hai_error *err) {
    if (!c) return hai_fail(err, HAI_ERR_INVALID, "truncate: NULL context");
    return hai_seq_truncate(c, 0, n_past, err);
}

hai_status hai_seq_copy(hai_context *c, int32_t src, int32_t dst, uint32_t n, hai_error *err) {
    if (!c || src < 0 || dst < 0 || (uint32_t)src >= c->n_seq || (uint32_t)dst >= c->n_seq)
        return hai_fail(err, HAI_ERR_INVALID, "copy: no sequence %d or %d", src, dst);
    if (n > c->seq_past[src]) return hai_fail(err, HAI_ERR_INVALID, "copy: %u positions asked, sequence %d holds %u", n, src, c->seq_past[src]);
    if (n && !rings_hold(c, src, n))
        return hai_fail(err, HAI_ERR_INVALID, "copy: the sliding-window layers of sequence %d no longer hold the window before position %u", src, n);
    if (src != dst) {
        const hai_hparams *hp = &c->m->hp;
        for (uint32_t l = 0; l < hp->n_layer; l++) {
            /* whole blocks of transposed keys; a ring whole */
            uint32_t m = c->kv_cap[l] < c->n_ctx_kt ? c->kv_cap[l] : (n + HAI_KT - 1) / HAI_KT * HAI_KT;
            for (uint32_t g = 0; g < hp->n_head_kv; g++) {
                memcpy(hai_kv_keys(c, (uint32_t)dst, l, g), hai_kv_keys(c, (uint32_t)src, l, g), (size_t)m * c->k_rowu * sizeof(uint16_t));
                memcpy(hai_kv_values(c, (uint32_t)dst, l, g), hai_kv_values(c, (uint32_t)src, l, g), (size_t)m * c->v_rowu * sizeof(uint16_t));
            }
        }
        memcpy(c->tokens + (size_t)dst * c->n_ctx, c->tokens + (size_t)src * c->n_ctx, (size_t)n * sizeof *c->tokens);
        c->seq_lo[dst] = n ? c->seq_lo[src] : 0;
    }
    c->seq_past[dst] = n;
    return HAI_OK;
}
