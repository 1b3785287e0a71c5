/* The forward pass of the decoder-only transformer family (llama, qwen2, qwen3): one function,
 * parameterised by the model's data (biases, q/k norms, RoPE style, head sizes, tied output).
 * Each step runs on the context's thread pool; nothing is allocated here. */
#include <math.h>
#include <string.h>

#include "context.h"
#include "model/stream.h"
#include "quant/quant.h"
#include "base/error.h"
#include "quant/fp16.h"

/* Splits [0, n) into nth nearly equal parts; part ith is [*a, *b). */
static inline void split_range(int64_t n, int ith, int nth, int64_t *a, int64_t *b) {
    int64_t per = n / nth, rem = n % nth;
    *a = ith * per + (ith < rem ? ith : rem);
    *b = *a + per + (ith < rem ? 1 : 0);
}

/* ---- norms and activation quantization ------------------------------------------------------- */

static void rmsnorm(const float *x, const float *w, float *y, int64_t n, float eps) {
    /* eight running sums: one is a chain of n dependent adds, ~8k cycles a row of 2048 */
    double s8[8] = {0};
    int64_t i8 = n / 8 * 8;
    for (int64_t i = 0; i < i8; i += 8)
        for (int u = 0; u < 8; u++) s8[u] += (double)x[i + u] * x[i + u];
    double ss = ((s8[0] + s8[1]) + (s8[2] + s8[3])) + ((s8[4] + s8[5]) + (s8[6] + s8[7]));
    for (int64_t i = i8; i < n; i++) ss += (double)x[i] * x[i];
    float scale = (float)(1.0 / sqrt(ss / (double)n + eps));
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * scale * w[i];
}

static void quantize_row(const hai_kernels *k, hai_act_type a, const float *x, void *y, int64_t n) {
    if (a == HAI_ACT_Q16) k->quantize_act(x, y, n);
}

typedef struct norm_job {
    hai_context *c;
    const float *in;  /* [n][in_stride] */
    size_t in_stride;
    const float *w;   /* norm weight, or NULL for no norm (input copied as is) */
    float *out;       /* [n][dim] */
    int64_t dim;
    uint32_t n;
    hai_act_type act; /* quantize out rows into c->act when not F32 */
    const int32_t *rows; /* out row r from input row rows[r]; NULL = r */
} norm_job;

static void norm_task(void *arg, int ith, int nth) {
    norm_job *j = arg;
    hai_context *c = j->c;
    int64_t a, b;
    split_range(j->n, ith, nth, &a, &b);
    for (int64_t i = a; i < b; i++) {
        float *y = j->out + i * j->dim;
        const float *x = j->in + (size_t)(j->rows ? j->rows[i] : i) * j->in_stride;
        if (j->w) rmsnorm(x, j->w, y, j->dim, c->m->hp.rms_eps);
        else if (y != x) memcpy(y, x, (size_t)j->dim * sizeof *y);
        if (j->act != HAI_ACT_F32) quantize_row(c->k, j->act, y, (uint8_t *)c->act + (size_t)i * c->act_row_bytes, j->dim);
    }
}

static void norm_quant(hai_context *c, const float *in, size_t in_stride, const float *w, float *out, int64_t dim,
                       uint32_t n, hai_act_type act) {
    norm_job j = {c, in, in_stride, w, out, dim, n, act, NULL};
    hai_pool_run(c->pool, norm_task, &j);
}

/* ---- matmuls: out[i][r] (+)= W[r] . in[i] over several weights sharing one input ----------------- */

typedef struct mm_out {
    const hai_weight *w;
    float *out;  /* [n][w->n_out] */
    bool add;    /* accumulate into out (residual connections) */
    uint32_t row; /* one-token jobs: the activation row that is this weight's input (a decode step's experts) */
} mm_out;

#define MM_MAX_OUT 16 /* weights a job takes at once: Q, K, V; or a decode step's experts' gates and ups */

typedef struct mm_job {
    hai_context *c;
    const float *in; /* [n][n_in] float input (for F32 activations) */
    uint32_t n;
    mm_out o[MM_MAX_OUT];
    int n_o;
    int64_t total_rows;
    bool dec; /* the activation rows are also in c->act_dec (the kernels' decode layout) */
} mm_job;

#define MM_CHUNK 16 /* weight rows per work item: reused from cache across the batch */

/* One token's rows r0..r1 of a weight: results gathered per cache line of outputs (16 rows) and
 * written a line at a time (hai_store_line). */
static void mm_rows_one(hai_vec_dot_fn dot, const hai_weight *w, int64_t r0, int64_t r1, const void *act, float *out, bool add) {
    float line[16];
    for (int64_t g = r0, row = r0; row < r1; row++) {
        float v = dot(w->n_in, w->data + (size_t)row * w->row_bytes, act);
        line[row - g] = add ? out[row] + v : v;
        if (row + 1 == r1 || (row + 1) % 16 == 0) {
            hai_store_line(out + g, line, row + 1 - g);
            g = row + 1;
        }
    }
}

/* Each thread takes an equal share of the 16-row chunks of all the weights in turn; what is the
 * same for a weight's rows (its dot, its activation rows) is looked up once per weight, not per
 * row (decode rows take ~80 ns: a call per row was measurable). */
static void mm_task(void *arg, int ith, int nth) {
    mm_job *j = arg;
    const hai_kernels *k = j->c->k;
    int64_t n_chunks = (j->total_rows + MM_CHUNK - 1) / MM_CHUNK, ca, cb;
    split_range(n_chunks, ith, nth, &ca, &cb);
    int64_t r = ca * MM_CHUNK, r_end = cb * MM_CHUNK < j->total_rows ? cb * MM_CHUNK : j->total_rows;
    for (int64_t oi = 0, base = 0; oi < j->n_o && r < r_end; base += j->o[oi++].w->n_out) {
        const hai_weight *w = j->o[oi].w;
        int64_t end = r_end < base + w->n_out ? r_end : base + w->n_out;
        if (r >= end) continue;
        hai_act_type at = hai_act_type_for(w->type);
        hai_vec_dot_fn dot = k->vec_dot[w->type];
        const uint8_t *acts = j->c->act;
        if (j->dec && k->decode_dot[w->type]) dot = k->decode_dot[w->type], acts = j->c->act_dec;
        float *out = j->o[oi].out;
        bool add = j->o[oi].add;
        if (j->n == 1) {
            uint32_t in_row = j->o[oi].row;
            mm_rows_one(dot, w, r - base, end - base,
                        at == HAI_ACT_F32 ? (const void *)(j->in + (size_t)in_row * w->n_in) : (const void *)(acts + (size_t)in_row * j->c->act_row_bytes),
                        out, add);
            r = end;
            continue;
        }
        if (k->rows_float[w->type] && at == HAI_ACT_F32) { /* each row converted once for a block of tokens */
            k->rows_float[w->type](w->n_in, w->data, w->row_bytes, r - base, end - base, j->in, (size_t)w->n_in, j->n, out, (size_t)w->n_out, add);
            r = end;
            continue;
        }
        for (int64_t row = r - base; row < end - base; row++) { /* rows outer: a row is read once for all tokens */
            const uint8_t *wr = w->data + (size_t)row * w->row_bytes;
            for (uint32_t i = 0; i < j->n; i++) {
                const void *act = at == HAI_ACT_F32 ? (const void *)(j->in + (size_t)i * w->n_in) : (const void *)(acts + (size_t)i * j->c->act_row_bytes);
                float v = dot(w->n_in, wr, act);
                float *dst = out + (size_t)i * w->n_out + row;
                *dst = add ? *dst + v : v;
            }
        }
        r = end;
    }
    hai_store_fence();
}

/* Prefill on the matrix kernels: the activations go into their layout (token panels split across
 * threads), then each thread multiplies a share of the 16-row panels of every weight. */
static void prep_task(void *arg, int ith, int nth) {
    mm_job *j = arg;
    hai_context *c = j->c;
    int64_t panels = (j->n + HAI_GEMM_TOKENS - 1) / HAI_GEMM_TOKENS, a, b;
    split_range(panels, ith, nth, &a, &b);
    if (a < b)
        c->k->gemm_prep(j->o[0].w->n_in, c->act, c->act_row_bytes, a * HAI_GEMM_TOKENS,
                        b * HAI_GEMM_TOKENS < j->n ? b * HAI_GEMM_TOKENS : j->n, c->gemm_prep);
}

/* Each thread a share of the 16-row panels of every weight in the job, on the matrix kernels
 * (few = false: the activations in gemm_prep) or the few-token ones (the decode layout). */
static void panels_task(mm_job *j, int ith, int nth, bool few) {
    hai_context *c = j->c;
    int64_t panels = 0, a, b;
    for (int i = 0; i < j->n_o; i++) panels += (j->o[i].w->n_out + 15) / 16;
    split_range(panels, ith, nth, &a, &b);
    for (int i = 0, base = 0; i < j->n_o && a < b; i++) {
        const hai_weight *w = j->o[i].w;
        int64_t np = (w->n_out + 15) / 16, lo = a > base ? a - base : 0, hi = b - base < np ? b - base : np;
        int64_t r0 = 16 * lo, r1 = 16 * hi < w->n_out ? 16 * hi : w->n_out;
        size_t in_off = (size_t)j->o[i].row * c->act_row_bytes; /* one-token jobs: the weight's own input row */
        if (lo < hi && few && j->n == 1 && !hai_wtype_panels(w->type)) /* one token beside a panel layout: its rows' dots */
            mm_rows_one(c->k->decode_dot[w->type] ? c->k->decode_dot[w->type] : c->k->vec_dot[w->type], w, r0, r1,
                        (const uint8_t *)(c->k->decode_dot[w->type] ? c->act_dec : c->act) + in_off, j->o[i].out, j->o[i].add);
        else if (lo < hi && few)
            c->k->few[w->type](w->n_in, w->data, w->row_bytes, r0, r1, (const uint8_t *)c->act_dec + in_off, c->act_row_bytes, j->n, j->o[i].out,
                               (size_t)w->n_out, j->o[i].add, c->few_scratch + (size_t)ith * c->few_scratch_stride);
        else if (lo < hi)
            c->k->gemm[w->type](w->n_in, w->data, w->row_bytes, r0, r1, c->gemm_prep, j->n, j->o[i].out, (size_t)w->n_out,
                                j->o[i].add, c->gemm_scratch + (size_t)ith * c->gemm_scratch_stride);
        base += (int)np;
    }
}

static void gemm_task(void *arg, int ith, int nth) { panels_task(arg, ith, nth, false); }

/* A few tokens on the kernels that take them all at once, split as the matrix path splits. */
static void few_task(void *arg, int ith, int nth) { panels_task(arg, ith, nth, true); }

static hai_act_type act_of(const hai_weight *w);

/* All weights in o[] take the same input `in` ([n][n_in]), already quantized into c->act for
 * their activation type (they must share it). */
static void matmul(hai_context *c, const float *in, uint32_t n, mm_out *o, int n_o) {
    mm_job j = {c, in, n, {{0}}, n_o, 0, false};
    bool gemm = c->gemm_prep && n >= c->gemm_min;
    uint32_t rows = n; /* activation rows read: one-token jobs may give each weight its own */
    for (int i = 0; i < n_o; i++)
        if (n == 1 && o[i].row + 1 > rows) rows = o[i].row + 1;
    for (int i = 0; i < n_o; i++) {
        j.o[i] = o[i];
        j.total_rows += o[i].w->n_out;
        gemm = gemm && c->k->gemm[o[i].w->type] && hai_act_type_for(o[i].w->type) == HAI_ACT_Q16;
    }
    if (gemm) {
        hai_pool_run(c->pool, prep_task, &j);
        hai_pool_run(c->pool, gemm_task, &j);
        return;
    }
    if (c->act_dec && rows <= c->act_dec_rows && act_of(o[0].w) == HAI_ACT_Q16) { /* a few rows: split here, no pool round */
        for (uint32_t i = 0; i < rows; i++)
            c->k->decode_prep(o[0].w->n_in, (const uint8_t *)c->act + (size_t)i * c->act_row_bytes,
                              (uint8_t *)c->act_dec + (size_t)i * c->act_row_bytes);
        j.dec = true;
        /* several tokens on the few-token kernels, and one where a weight is in panels (no row of
         * those can be read alone) */
        bool few = c->few_scratch, panels = false;
        for (int i = 0; i < n_o; i++) few = few && c->k->few[o[i].w->type], panels = panels || hai_wtype_panels(o[i].w->type);
        if (few && (n > 1 || panels)) {
            hai_pool_run(c->pool, few_task, &j);
            return;
        }
    }
    hai_pool_run(c->pool, mm_task, &j);
}

/* The activation format a set of weights needs; callers keep weights of one format together. */
static hai_act_type act_of(const hai_weight *w) { return hai_act_type_for(w->type); }

/* ---- RoPE, q/k norms, biases, KV cache write ---------------------------------------------------- */

typedef struct qk_job {
    hai_context *c;
    const hai_layer *L;
    uint32_t layer, n;
} qk_job;

static void rope_apply(const hai_hparams *hp, const float *cs, float *x) {
    uint32_t half = hp->n_rot / 2;
    for (uint32_t i = 0; i < half; i++) {
        float co = cs[2 * i], si = cs[2 * i + 1];
        uint32_t a = hp->rope == ROPE_NEOX ? i : 2 * i, b = hp->rope == ROPE_NEOX ? i + half : 2 * i + 1;
        float x0 = x[a], x1 = x[b];
        x[a] = x0 * co - x1 * si;
        x[b] = x0 * si + x1 * co;
    }
}

static void qk_task(void *arg, int ith, int nth) {
    qk_job *j = arg;
    hai_context *c = j->c;
    const hai_hparams *hp = &c->m->hp;
    const hai_layer *L = j->L;
    uint32_t hd = hp->head_dim, nq = hp->n_head, nk = hp->n_head_kv;
    size_t kdim = (size_t)nk * hd, qdim = (size_t)nq * hd;
    /* work items: (token, head) over query and key heads */
    int64_t per_tok = nq + nk, total = (int64_t)j->n * per_tok, a, b;
    split_range(total, ith, nth, &a, &b);
    for (int64_t w = a; w < b; w++) {
        uint32_t i = (uint32_t)(w / per_tok), h = (uint32_t)(w % per_tok);
        const float *cs = (L->swa && c->rope_cs_swa ? c->rope_cs_swa : c->rope_cs) + (size_t)i * hp->n_rot;
        float *x;
        const float *bias, *norm;
        if (h < nq) {
            x = c->q + i * qdim + (size_t)h * hd;
            bias = L->bq ? L->bq + (size_t)h * hd : NULL;
            norm = L->q_norm;
        } else {
            x = c->kv_k + i * kdim + (size_t)(h - nq) * hd;
            bias = L->bk ? L->bk + (size_t)(h - nq) * hd : NULL;
            norm = L->k_norm;
        }
        if (bias)
            for (uint32_t d = 0; d < hd; d++) x[d] += bias[d];
        if (norm) rmsnorm(x, norm, x, hd, hp->rms_eps);
        if (!hp->nope_step || (j->layer + 1) % hp->nope_step) rope_apply(hp, cs, x);
    }
}

typedef struct store_job {
    hai_context *c;
    const hai_layer *L;
    uint32_t layer, n;
} store_job;

/* Work items are (token, KV group), so both threads store a decode step's keys. The lines written
 * are cold (the weights stream through between two tokens) and a transposed key touches one line
 * per two dimensions, so an item's lines are prefetched for writing before it stores into them. */
static void store_task(void *arg, int ith, int nth) {
    store_job *j = arg;
    hai_context *c = j->c;
    const hai_hparams *hp = &c->m->hp;
    uint32_t hd = hp->head_dim, hdv = hp->head_dim_v, nkv = hp->n_head_kv;
    size_t kdim = (size_t)nkv * hd, vdim = (size_t)nkv * hdv;
    int64_t a, b;
    split_range((int64_t)j->n * nkv, ith, nth, &a, &b);
    for (int64_t w = a; w < b; w++) {
        uint32_t i = (uint32_t)(w / nkv), g = (uint32_t)(w % nkv);
        size_t pos = (size_t)c->b_pos[i]; /* head-major: [seq][layer][kv head][position][...] */
        pos = hai_kv_slot(c, j->layer, (uint32_t)pos); /* a ring's slot (sliding-window layers) */
        if (c->kv_type != HAI_TYPE_F16) { /* quantized rows: the key and the value quantized where they go */
            const hai_type_traits *tr = hai_type_traits_get(c->kv_type);
            float *vq = c->kv_v + i * vdim + (size_t)g * hdv;
            if (j->L->bv)
                for (uint32_t d = 0; d < hdv; d++) vq[d] += j->L->bv[(size_t)g * hdv + d];
            uint8_t row[HAI_KVQ_MAX_ROW]; /* the key as a row of the type, then into its block's lanes */
            tr->from_float(c->kv_k + i * kdim + (size_t)g * hd, row, hd);
            hai_kvq_key_put(c->kv_type, hai_kvq_block(c, hai_kv_keys(c, (uint32_t)c->b_seq[i], j->layer, g), (uint32_t)pos), (uint32_t)(pos % HAI_KT), row, (int)hd);
            tr->from_float(vq, hai_kv_values(c, (uint32_t)c->b_seq[i], j->layer, g) + pos * c->v_rowu, hdv);
            continue;
        }
        uint16_t *kg = hai_kv_keys(c, (uint32_t)c->b_seq[i], j->layer, g); /* keys: the group's blocks of positions, transposed */
        uint16_t *vd = hai_kv_values(c, (uint32_t)c->b_seq[i], j->layer, g) + pos * hdv;
        for (uint32_t d = 0; d < hd; d += 2) __builtin_prefetch(kg + hai_kt_index((int64_t)pos, d, hd), 1, 3);
        for (uint32_t d = 0; d < hdv; d += 32) __builtin_prefetch(vd + d, 1, 3);
        float *v = c->kv_v + i * vdim + (size_t)g * hdv;
        if (j->L->bv)
            for (uint32_t d = 0; d < hdv; d++) v[d] += j->L->bv[(size_t)g * hdv + d];
        const float *kr = c->kv_k + i * kdim + (size_t)g * hd;
        uint16_t kh[256]; /* the key converted by the kernel (vector), then put in its column */
        for (uint32_t d0 = 0; d0 < hd; d0 += 256) {
            uint32_t nd = hd - d0 < 256 ? hd - d0 : 256;
            c->k->f32_to_f16((int64_t)nd, kr + d0, kh);
            for (uint32_t d = 0; d < nd; d++) kg[hai_kt_index((int64_t)pos, d0 + d, hd)] = kh[d];
        }
        c->k->f32_to_f16((int64_t)hdv, v, vd);
    }
}

/* ---- attention: causal, tiled over keys with an online softmax ------------------------------------ */

typedef struct att_job {
    hai_context *c;
    const hai_layer *L;
    uint32_t layer, n;
} att_job;

/* The online softmax over a tile's scores [group][HAI_ATT_TILE] (tn of them): each head's running
 * maximum and sum updated, what it accumulated rescaled, the scores turned into weights. */
static void softmax_tile(const hai_kernels *k, uint32_t group, uint32_t tn, uint32_t hdv, float *scores, float *mx, float *sum, float *acc) {
    for (uint32_t h = 0; h < group; h++) {
        float *sc = scores + h * HAI_ATT_TILE, tmax = mx[h];
        if (k->logits_max) {
            float tm = k->logits_max((int64_t)tn, sc);
            tmax = tm > tmax ? tm : tmax;
        } else {
            for (uint32_t t = 0; t < tn; t++) tmax = sc[t] > tmax ? sc[t] : tmax;
        }
        float corr = expf(mx[h] - tmax); /* rescales what was accumulated under the old maximum */
        float l = sum[h] * corr;
        if (k->logits_exp) { /* the sampler's vector exp: sc[t] = exp(sc[t] - tmax), in place */
            l += (float)k->logits_exp((int64_t)tn, sc, tmax, 1.0f, sc, NULL);
        } else {
            for (uint32_t t = 0; t < tn; t++) {
                sc[t] = expf(sc[t] - tmax);
                l += sc[t];
            }
        }
        sum[h] = l, mx[h] = tmax;
        if (corr != 1.0f)
            for (uint32_t d = 0; d < hdv; d++) acc[(size_t)h * hdv + d] *= corr;
    }
}

/* A quantized cache's keys and values read as they are: a block of 16 keys scored against the
 * group's queries (kernels' kvq_dots16: the keys transposed, one load a dimension for all the
 * heads), each value row added into their sums, its blocks turned to floats once for all the
 * group's heads (kvq_axpys). Keys [first, n_keys). */
static void att_quantized(hai_context *c, const att_job *j, const float *q, const uint16_t *Kg, const uint16_t *Vg, uint32_t first,
                          uint32_t n_keys, float *scores, float *mx, float *sum, float *acc) {
    const hai_hparams *hp = &c->m->hp;
    uint32_t hd = hp->head_dim, hdv = hp->head_dim_v, group = hp->n_head / hp->n_head_kv;
    const hai_kernels *ref = hai_kernels_ref();
    void (*dots)(uint32_t, const void *, int, int, const float *, float *) = c->k->kvq_dots16 ? c->k->kvq_dots16 : ref->kvq_dots16;
    void (*axpys)(uint32_t, const void *, int, int, const float *, size_t, float *) = c->k->kvq_axpys ? c->k->kvq_axpys : ref->kvq_axpys;
    float scale = hp->attn_scale, out[KVQ_HEADS_AT_ONCE * HAI_KT];
    for (uint32_t t0 = first, tn; t0 < n_keys; t0 += tn) {
        uint32_t p0 = hai_kv_slot(c, j->layer, t0), room = c->kv_cap[j->layer] - p0; /* a ring: a tile stops at its end */
        tn = n_keys - t0 < HAI_ATT_TILE ? n_keys - t0 : HAI_ATT_TILE;
        tn = room < tn ? room : tn;
        for (uint32_t t = 0, nj; t < tn; t += nj) { /* the blocks the tile's slots are in */
            uint32_t j0 = (p0 + t) % HAI_KT;
            nj = HAI_KT - j0 < tn - t ? HAI_KT - j0 : tn - t;
            const uint8_t *blk = hai_kvq_block(c, Kg, p0 + t);
            for (uint32_t h0 = 0; h0 < group; h0 += KVQ_HEADS_AT_ONCE) {
                uint32_t hn = group - h0 < KVQ_HEADS_AT_ONCE ? group - h0 : KVQ_HEADS_AT_ONCE;
                dots(c->kv_type, blk, (int)hd, (int)hn, q + (size_t)h0 * hd, out);
                for (uint32_t h = 0; h < hn; h++)
                    for (uint32_t k = 0; k < nj; k++) {
                        float x = out[h * HAI_KT + j0 + k] * scale;
                        scores[(h0 + h) * HAI_ATT_TILE + t + k] = hp->attn_softcap ? hp->attn_softcap * tanhf(x / hp->attn_softcap) : x;
                    }
            }
        }
        softmax_tile(c->k, group, tn, hdv, scores, mx, sum, acc);
        for (uint32_t t = 0; t < tn; t++) axpys(c->kv_type, Vg + (size_t)(p0 + t) * c->v_rowu, (int)hdv, (int)group, scores + t, HAI_ATT_TILE, acc);
    }
}

/* Work items are (token, KV group): each key and value row is read once for all the query heads
 * that share it (GQA), not once per head. */
static void att_task(void *arg, int ith, int nth) {
    att_job *j = arg;
    hai_context *c = j->c;
    const hai_kernels *k = c->k;
    const hai_hparams *hp = &c->m->hp;
    uint32_t hd = hp->head_dim, hdv = hp->head_dim_v, nq = hp->n_head, nkv = hp->n_head_kv, group = nq / nkv;
    float *scores = c->att_tile + (size_t)ith * c->att_tile_stride; /* [group][HAI_ATT_TILE] */
    float *acc = scores + (size_t)group * HAI_ATT_TILE;                  /* [group][hdv] */
    float *mx = acc + (size_t)group * hdv, *sum = mx + group;        /* [group] each */
    float *kblk = sum + group;                                        /* [hd][16]: a block of keys as floats (no attn_tile) */
    bool kvt = c->kv_type != HAI_TYPE_F16; /* a quantized cache: read as it is (att_quantized) */
    float scale = c->m->hp.attn_scale;
    int64_t total = (int64_t)j->n * nkv, a, b;
    split_range(total, ith, nth, &a, &b);
    for (int64_t w = a; w < b; w++) {
        uint32_t i = (uint32_t)(w / nkv), g = (uint32_t)(w % nkv);
        const float *q = c->q + (size_t)i * nq * hd + (size_t)g * group * hd; /* the group's heads, adjacent */
        uint32_t n_keys = (uint32_t)c->b_pos[i] + 1; /* causal: keys 0 .. own position, of its own sequence */
        /* a sliding-window layer sees keys from `first` on: the block of keys that holds it goes
         * the scalar way with the keys before it masked (the kernel takes whole blocks), then
         * tiles from the next block */
        uint32_t first = j->L->swa && n_keys > hp->swa_window ? n_keys - hp->swa_window : 0;
        const uint16_t *Kg = hai_kv_keys(c, (uint32_t)c->b_seq[i], j->layer, g); /* the group's keys, contiguous */
        const uint16_t *Vg = hai_kv_values(c, (uint32_t)c->b_seq[i], j->layer, g);
        for (uint32_t h = 0; h < group; h++) mx[h] = -INFINITY, sum[h] = 0;
        memset(acc, 0, (size_t)group * hdv * sizeof *acc);
        if (kvt) att_quantized(c, j, q, Kg, Vg, first, n_keys, scores, mx, sum, acc);
        for (uint32_t t0 = first / HAI_KT * HAI_KT, tn; !kvt && t0 < n_keys; t0 += tn) {
            bool masked = t0 < first;
            uint32_t p0 = hai_kv_slot(c, j->layer, t0), room = c->kv_cap[j->layer] - p0; /* a ring: a tile stops at its end */
            tn = masked ? HAI_KT : HAI_ATT_TILE;
            tn = n_keys - t0 < tn ? n_keys - t0 : tn;
            tn = room < tn ? room : tn;
            const uint16_t *Kt = Kg + (size_t)p0 * hd, *Vt = Vg + (size_t)p0 * hdv; /* the tile's keys and values */
            if (k->attn_tile && !masked) {
                k->attn_tile((int)group, (int)hd, (int)hdv, q, Kt, Vt, hdv, (int)tn, scale, hp->attn_softcap, mx, sum, acc, scores);
                continue;
            }
            for (uint32_t tb = 0; tb < tn; tb += HAI_KT) { /* a block of keys, converted once for the group's heads */
                const uint16_t *kb = Kt + (size_t)tb * hd;
                uint32_t nb = tn - tb < HAI_KT ? tn - tb : HAI_KT;
                for (size_t e = 0; e < (size_t)hd * HAI_KT; e++) kblk[e] = hai_f16_to_f32(kb[e]);
                for (uint32_t h = 0; h < group; h++) {
                    float s[HAI_KT] = {0};
                    for (uint32_t d = 0; d < hd; d++)
                        for (uint32_t u = 0; u < HAI_KT; u++) s[u] += q[(size_t)h * hd + d] * kblk[d * HAI_KT + u];
                    for (uint32_t u = 0; u < nb; u++) scores[h * HAI_ATT_TILE + tb + u] = s[u] * scale;
                    if (hp->attn_softcap)
                        for (uint32_t u = 0; u < nb; u++)
                            scores[h * HAI_ATT_TILE + tb + u] = hp->attn_softcap * tanhf(scores[h * HAI_ATT_TILE + tb + u] / hp->attn_softcap);
                    for (uint32_t u = 0; u < nb && t0 + tb + u < first; u++) scores[h * HAI_ATT_TILE + tb + u] = -INFINITY;
                }
            }
            softmax_tile(k, group, tn, hdv, scores, mx, sum, acc);
            for (uint32_t t = 0; t < tn; t++) {
                const uint16_t *vr = Vt + (size_t)t * hdv;
                for (uint32_t h = 0; h < group; h++) k->scale_axpy_f16(hdv, 1.0f, scores[h * HAI_ATT_TILE + t], vr, acc + (size_t)h * hdv);
            }
        }
        for (uint32_t h = 0; h < group; h++) {
            float *out = c->attn + (size_t)i * nq * hdv + (size_t)(g * group + h) * hdv, inv = 1.0f / sum[h];
            for (uint32_t d = 0; d < hdv; d++) out[d] = acc[(size_t)h * hdv + d] * inv;
        }
    }
}

/* ---- the rest --------------------------------------------------------------------------------- */

typedef struct embd_job {
    hai_context *c;
    const hai_token *tokens;
    uint32_t n;
} embd_job;

static void embd_task(void *arg, int ith, int nth) {
    embd_job *j = arg;
    const hai_weight *e = &j->c->m->tok_embd;
    int64_t a, b;
    split_range(j->n, ith, nth, &a, &b);
    for (int64_t i = a; i < b; i++)
        if (e->type >= HAI_TYPE_COUNT) /* the output matrix's layout (tied) */
            hai_repacked_row(e->type, e->data, e->n_in, j->tokens[i], j->c->x + i * e->n_in);
        else
            hai_dequantize(e->type, e->data + (size_t)j->tokens[i] * e->row_bytes, j->c->x + i * e->n_in, e->n_in, NULL);
    float s = j->c->m->hp.embd_scale;
    if (s != 1.0f)
        for (int64_t i = a * e->n_in; i < b * e->n_in; i++) j->c->x[i] *= s;
}

/* A block's output added to the residual stream: by the matmul itself, or (a multiplier, granite)
 * into `tmp` first and then scaled. */
static void add_residual(hai_context *c, const hai_weight *w, const float *in, uint32_t n, float *tmp, const float *post_norm) {
    float s = c->m->hp.resid_scale;
    bool direct = s == 1.0f && !post_norm;
    mm_out o = {w, direct ? c->x : tmp, direct, 0};
    matmul(c, in, n, &o, 1);
    if (direct) return;
    for (uint32_t r = 0; r < n; r++) {
        float *t = tmp + (size_t)r * w->n_out, *x = c->x + (size_t)r * w->n_out;
        if (post_norm) rmsnorm(t, post_norm, t, w->n_out, c->m->hp.rms_eps); /* gemma: normed before it is added */
        for (int64_t i = 0; i < w->n_out; i++) x[i] += s * t[i];
    }
}

typedef struct swiglu_job {
    hai_context *c;
    uint32_t n;
    hai_act_type act;
    int64_t f; /* the width: n_ff, or an expert's */
} swiglu_job;

static void swiglu_task(void *arg, int ith, int nth) {
    swiglu_job *j = arg;
    hai_context *c = j->c;
    int64_t f = j->f, a, b;
    split_range(j->n, ith, nth, &a, &b);
    for (int64_t i = a; i < b; i++) {
        float *g = c->gate + i * f, *u = c->up + i * f;
        if (c->m->hp.geglu && c->k->geglu) c->k->geglu(f, g, u);
        else if (c->m->hp.geglu) /* gelu, tanh form (gemma's gelu_pytorch_tanh) as x sigmoid(2z): 1 + tanh z cancels */
            for (int64_t d = 0; d < f; d++) g[d] = g[d] / (1.0f + expf(-g[d] * (1.5957691216f + 0.0713548163f * g[d] * g[d]))) * u[d];
        else if (c->k->swiglu) c->k->swiglu(f, g, u);
        else
            for (int64_t d = 0; d < f; d++) g[d] = g[d] / (1.0f + expf(-g[d])) * u[d];
        if (j->act != HAI_ACT_F32) quantize_row(c->k, j->act, g, (uint8_t *)c->act + (size_t)i * c->act_row_bytes, f);
    }
}

/* ---- mixture of experts ------------------------------------------------------------------------ */

/* Each token's experts: the router's softmax, the n_expert_used largest (ties: the lower index),
 * their weights renormalised over the chosen when the family does; then the (token, weight)
 * pairs grouped by expert, so that each expert's weights are read once for all its tokens. */
static void moe_route(hai_context *c, uint32_t n) {
    const hai_hparams *hp = &c->m->hp;
    uint32_t ne = hp->n_expert, k = hp->n_expert_used;
    memset(c->moe_off, 0, (ne + 1) * sizeof *c->moe_off);
    for (uint32_t i = 0; i < n; i++) {
        const float *lg = c->moe_logits + (size_t)i * ne;
        int32_t *sel = c->moe_sel + (size_t)i * k;
        float *w = c->moe_selw + (size_t)i * k, mx = lg[0];
        for (uint32_t e = 1; e < ne; e++) mx = lg[e] > mx ? lg[e] : mx;
        double sum = 0, kept = 0;
        for (uint32_t e = 0; e < ne; e++) sum += exp((double)lg[e] - mx);
        for (uint32_t s = 0; s < k; s++) { /* k is small: a pass over the logits for each */
            int32_t best = -1;
            for (uint32_t e = 0; e < ne; e++) {
                bool taken = false;
                for (uint32_t t = 0; t < s && !taken; t++) taken = sel[t] == (int32_t)e;
                if (!taken && (best < 0 || lg[e] > lg[best])) best = (int32_t)e;
            }
            sel[s] = best;
            w[s] = (float)(exp((double)lg[best] - mx) / sum);
            kept += w[s];
            c->moe_off[best + 1]++;
        }
        if (hp->expert_norm)
            for (uint32_t s = 0; s < k; s++) w[s] = (float)(w[s] / kept);
    }
    for (uint32_t e = 0; e < ne; e++) c->moe_off[e + 1] += c->moe_off[e], c->moe_cur[e] = c->moe_off[e];
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t s = 0; s < k; s++) {
            uint32_t at = c->moe_cur[c->moe_sel[(size_t)i * k + s]]++;
            c->moe_tok[at] = (int32_t)i;
            c->moe_w[at] = c->moe_selw[(size_t)i * k + s];
        }
}

typedef struct scatter_job {
    hai_context *c;
    const int32_t *rows; /* the residual row each result row goes to (distinct) */
    const float *w;      /* its weight, or NULL: per-token gates of the shared expert */
    uint32_t n;
    const float *gate;   /* the shared expert's gate vector [n_embd], or NULL */
} scatter_job;

/* x[rows[r]] += scale * tmp[r]: the scale an expert's routing weight, or the shared expert's
 * sigmoid gate of the normed input, times the residual multiplier. */
static void scatter_task(void *arg, int ith, int nth) {
    scatter_job *j = arg;
    hai_context *c = j->c;
    int64_t E = c->m->hp.n_embd, a, b;
    split_range(j->n, ith, nth, &a, &b);
    for (int64_t r = a; r < b; r++) {
        int64_t row = j->rows ? j->rows[r] : r;
        float s = c->m->hp.resid_scale * (j->w ? j->w[r] : 1.0f);
        if (j->gate) {
            double d = 0;
            for (int64_t i = 0; i < E; i++) d += (double)c->xn[row * E + i] * j->gate[i];
            s *= (float)(1.0 / (1.0 + exp(-d)));
        }
        float *x = c->x + row * E;
        const float *t = c->moe_tmp + r * E;
        for (int64_t i = 0; i < E; i++) x[i] += s * t[i];
    }
}

/* A gated FFN's first half on rows `in` [n][n_in] (quantized for the gate): gate and up into
 * c->gate and c->up (one job when they take the same activations, else `in` quantized again for
 * the up), then the gated activation into c->gate, quantized for `down`. */
static void gate_up(hai_context *c, const hai_weight *gate, const hai_weight *up, const hai_weight *down, const float *in, uint32_t n) {
    mm_out o[2] = {{gate, c->gate, false, 0}, {up, c->up, false, 0}};
    matmul(c, in, n, o, act_of(up) == act_of(gate) ? 2 : 1);
    if (act_of(up) != act_of(gate)) {
        norm_quant(c, in, (size_t)gate->n_in, NULL, (float *)in, gate->n_in, n, act_of(up));
        matmul(c, in, n, &o[1], 1);
    }
    swiglu_job gj = {c, n, act_of(down), gate->n_out};
    hai_pool_run(c->pool, swiglu_task, &gj);
}

/* One expert (or the shared one) on rows `in` [n][n_embd], the result into moe_tmp. */
static void expert_ffn(hai_context *c, const hai_weight *gate, const hai_weight *up, const hai_weight *down, const float *in, uint32_t n) {
    gate_up(c, gate, up, down, in, n);
    mm_out d = {down, c->moe_tmp, false, 0};
    matmul(c, c->gate, n, &d, 1);
}

typedef struct combine_job {
    hai_context *c;
    uint32_t k;
} combine_job;

/* One token: x += resid_scale * sum over its experts of weight * result, split over dimensions. */
static void combine_task(void *arg, int ith, int nth) {
    combine_job *j = arg;
    hai_context *c = j->c;
    int64_t E = c->m->hp.n_embd, a, b;
    split_range(E, ith, nth, &a, &b);
    for (uint32_t s = 0; s < j->k; s++) {
        float w = c->m->hp.resid_scale * c->moe_selw[s];
        const float *t = c->moe_tmp + (size_t)s * E;
        for (int64_t i = a; i < b; i++) c->x[i] += w * t[i];
    }
}

/* A decode step's experts together: their gates and ups in one job on the one quantized row,
 * the activations of all in one pass, the downs in one job each reading its own row; four pool
 * rounds instead of five an expert. v[s]: the s-th chosen expert's gate, up, down. False when
 * they do not fit that way (mixed formats, more experts than a job or the scratch rows take). */
static bool moe_one_token(hai_context *c, const hai_weight *const (*v)[3], int held) {
    const hai_hparams *hp = &c->m->hp;
    uint32_t k = hp->n_expert_used;
    int64_t E = hp->n_embd, X = hp->n_ff_exp;
    if (2 * k > MM_MAX_OUT || k > c->n_batch || (c->act_dec && k > c->act_dec_rows)) return false;
    mm_out gu[MM_MAX_OUT], dn[MM_MAX_OUT];
    for (uint32_t s = 0; s < k; s++) {
        const hai_weight *g = v[s][0], *u = v[s][1], *d = v[s][2];
        if (act_of(g) != act_of(v[0][0]) || act_of(u) != act_of(g) || act_of(d) != act_of(v[0][2])) return false;
        gu[2 * s] = (mm_out){g, c->gate + (size_t)s * X, false, 0};
        gu[2 * s + 1] = (mm_out){u, c->up + (size_t)s * X, false, 0};
        dn[s] = (mm_out){d, c->moe_tmp + (size_t)s * E, false, s};
    }
    if (held != (int)act_of(gu[0].w)) /* xn not yet in the activations these experts take */
        norm_quant(c, c->xn, (size_t)E, NULL, c->xn, E, 1, act_of(gu[0].w));
    matmul(c, c->xn, 1, gu, (int)(2 * k));
    swiglu_job gj = {c, k, act_of(dn[0].w), X};
    hai_pool_run(c->pool, swiglu_task, &gj);
    matmul(c, c->gate, 1, dn, (int)k);
    combine_job cj = {c, k};
    hai_pool_run(c->pool, combine_task, &cj);
    return true;
}

/* ---- experts streamed from the file (stream.h) --------------------------------------------------- */

#define MOE_PINNED_MAX 32 /* a decode step's experts pinned together (more: one at a time) */

/* Expert e of layer l: its gate, up and down, the model's views or (streamed) the cache slot it
 * was read into, pinned until expert_put. An error when the file could not be read. */
static hai_status expert_get(hai_context *c, const hai_layer *L, uint32_t l, uint32_t e, const hai_weight *v[3], hai_error *err) {
    hai_stream *s = c->m->stream;
    uint32_t ne = c->m->hp.n_expert;
    if (stream_mode(s) != STREAM_EXPERTS) {
        v[0] = &L->exps[e], v[1] = &L->exps[ne + e], v[2] = &L->exps[2 * ne + e];
        return HAI_OK;
    }
    const hai_weight *w = stream_take(s, l * ne + e);
    hai_status st = HAI_OK;
    if (!w) {
        hai_pool_rest(c->pool); /* the readers get the CPUs while this waits */
        st = stream_acquire(s, l * ne + e, &w, err);
    }
    if (!st) v[0] = &w[0], v[1] = &w[1], v[2] = &w[2];
    return st;
}

static void expert_put(hai_context *c, uint32_t l, uint32_t e) {
    if (stream_mode(c->m->stream) == STREAM_EXPERTS) stream_release(c->m->stream, l * c->m->hp.n_expert + e);
}

/* Reads ahead the experts the next layer will likely choose: its router on this layer's input
 * (the residual stream changes little between layers), while this layer computes. Only a router
 * in floats (as files keep it), which reads xn as it is; one token. */
static void moe_predict(hai_context *c, uint32_t l) {
    const hai_model *m = c->m;
    uint32_t ne = m->hp.n_expert, k = m->hp.n_expert_used;
    if (l + 1 >= m->hp.n_layer || act_of(&m->layers[l + 1].router) != HAI_ACT_F32) return;
    if (stream_group_slots(m->stream) >= ne) return; /* every expert stays once read: guesses would help only the first tokens */
    mm_out r = {&m->layers[l + 1].router, c->moe_logits, false, 0}; /* this layer's routing is done with them */
    matmul(c, c->xn, 1, &r, 1);
    for (uint32_t s = 0; s < k; s++) { /* the k largest: each taken marked -inf */
        uint32_t best = 0;
        for (uint32_t e = 1; e < ne; e++)
            if (c->moe_logits[e] > c->moe_logits[best]) best = e;
        c->moe_logits[best] = -INFINITY;
        stream_prefetch(m->stream, (l + 1) * ne + best, true);
    }
}

/* The feed-forward block of a mixture-of-experts layer (qwen2moe, qwen3moe): the router, the
 * shared expert on every token, then each chosen expert on its tokens only. */
static hai_status moe_block(hai_context *c, const hai_layer *L, uint32_t l, uint32_t n, hai_error *err) {
    const hai_hparams *hp = &c->m->hp;
    int64_t E = hp->n_embd;
    uint32_t ne = hp->n_expert, k = hp->n_expert_used;
    /* a router in floats reads xn as floats: the same pass quantizes xn for the experts (a decode
     * step's pool round fewer) */
    int held = (int)(act_of(&L->router) != HAI_ACT_F32 ? act_of(&L->router) : act_of(&L->exps[0])); /* what c->act holds of xn; -1: none */
    norm_quant(c, c->x, (size_t)E, L->ffn_norm, c->xn, E, n, (hai_act_type)held);
    mm_out r = {&L->router, c->moe_logits, false, 0};
    matmul(c, c->xn, n, &r, 1);
    moe_route(c, n);
    if (L->gate.data) {
        if (held != (int)act_of(&L->gate)) norm_quant(c, c->xn, (size_t)E, NULL, c->xn, E, n, act_of(&L->gate));
        expert_ffn(c, &L->gate, &L->up, &L->down, c->xn, n);
        held = -1; /* the shared expert's activations took its place */
        scatter_job sj = {c, NULL, NULL, n, L->shexp_gate};
        hai_pool_run(c->pool, scatter_task, &sj);
    }
    hai_stream *s = stream_mode(c->m->stream) == STREAM_EXPERTS ? c->m->stream : NULL;
    hai_status st = HAI_OK;
    if (s) stream_turn(s, l);
    if (n == 1 && k <= MOE_PINNED_MAX) { /* all k pinned at once: read together, then one pass */
        const hai_weight *v[MOE_PINNED_MAX][3];
        uint32_t got = 0;
        for (uint32_t i = 0; s && i < k; i++) stream_want(s, l * ne + (uint32_t)c->moe_sel[i]);
        if (s) moe_predict(c, l);
        while (got < k && !(st = expert_get(c, L, l, (uint32_t)c->moe_sel[got], v[got], err))) got++;
        if (st)
            ;
        else if (!moe_one_token(c, (const hai_weight *const (*)[3])v, held))
            for (uint32_t i = 0; i < k; i++) { /* one at a time (c->moe_off groups them by expert; one token: each once) */
                norm_job gather = {c, c->xn, (size_t)E, NULL, c->moe_xg, E, 1, act_of(v[i][0]), c->moe_tok + c->moe_off[c->moe_sel[i]]};
                hai_pool_run(c->pool, norm_task, &gather);
                expert_ffn(c, v[i][0], v[i][1], v[i][2], c->moe_xg, 1);
                scatter_job sj = {c, c->moe_tok + c->moe_off[c->moe_sel[i]], c->moe_w + c->moe_off[c->moe_sel[i]], 1, NULL};
                hai_pool_run(c->pool, scatter_task, &sj);
            }
        for (uint32_t i = 0; i < got; i++) expert_put(c, l, (uint32_t)c->moe_sel[i]);
        if (s) stream_turn_end(s, l);
        return st;
    }
    uint32_t ahead = s ? stream_group_slots(s) - 1 : 0; /* experts read ahead while one computes */
    for (uint32_t e = 0; e < ne && !st; e++) {
        uint32_t off = c->moe_off[e], cnt = c->moe_off[e + 1] - off;
        if (!cnt) continue;
        if (s) {
            stream_want(s, l * ne + e);
            for (uint32_t f = e + 1, w = 0; f < ne && w < ahead; f++)
                if (c->moe_off[f + 1] > c->moe_off[f]) stream_prefetch(s, l * ne + f, false), w++;
        }
        const hai_weight *v[3];
        if ((st = expert_get(c, L, l, e, v, err))) break;
        norm_job gather = {c, c->xn, (size_t)E, NULL, c->moe_xg, E, cnt, act_of(v[0]), c->moe_tok + off};
        hai_pool_run(c->pool, norm_task, &gather);
        expert_ffn(c, v[0], v[1], v[2], c->moe_xg, cnt);
        scatter_job sj = {c, c->moe_tok + off, c->moe_w + off, cnt, NULL};
        hai_pool_run(c->pool, scatter_task, &sj);
        expert_put(c, l, e);
    }
    if (s) stream_turn_end(s, l);
    return st;
}

/* ---- layers streamed from the file (stream.h) ---------------------------------------------------- */

/* A streamed layer: *out is L with its matrices in the slot they were read into (pinned until
 * layer_put), the next layers read ahead into the ring's other slots. */
static hai_status layer_get(hai_context *c, const hai_layer *L, hai_layer *out, hai_error *err) {
    hai_stream *s = c->m->stream;
    uint32_t u = L->stream_unit, n = stream_units(s);
    stream_turn(s, 0);
    stream_want(s, u);
    for (uint32_t r = 1; r < stream_group_slots(s); r++) stream_prefetch(s, (u + r) % n, false); /* past the last: the next token's first */
    const hai_weight *w = stream_take(s, u);
    hai_status st = HAI_OK;
    if (!w) {
        hai_pool_rest(c->pool);
        st = stream_acquire(s, u, &w, err);
    }
    if (st) {
        stream_turn_end(s, 0);
        return st;
    }
    *out = *L;
    out->wq = w[0], out->wk = w[1], out->wv = w[2], out->wo = w[3], out->gate = w[4], out->up = w[5], out->down = w[6];
    return HAI_OK;
}

static void layer_put(hai_context *c, const hai_layer *L) {
    stream_release(c->m->stream, L->stream_unit);
    stream_turn_end(c->m->stream, 0);
}

static void rope_table(hai_context *c, uint32_t n) {
    const hai_hparams *hp = &c->m->hp;
    uint32_t half = hp->n_rot / 2;
    for (uint32_t i = 0; i < n; i++) {
        double pos = (double)c->b_pos[i] * hp->rope_pos_scale;
        float *cs = c->rope_cs + (size_t)i * hp->n_rot;
        for (uint32_t d = 0; d < half; d++) {
            double ang = pos * c->inv_freq[d];
            cs[2 * d] = (float)(cos(ang) * hp->rope_mscale);
            cs[2 * d + 1] = (float)(sin(ang) * hp->rope_mscale);
        }
        if (!c->rope_cs_swa) continue;
        cs = c->rope_cs_swa + (size_t)i * hp->n_rot; /* the sliding layers' own base, unscaled */
        for (uint32_t d = 0; d < half; d++) {
            double ang = (double)c->b_pos[i] * c->inv_freq_swa[d];
            cs[2 * d] = (float)cos(ang);
            cs[2 * d + 1] = (float)sin(ang);
        }
    }
}

hai_status hai_forward(hai_context *c, const hai_token *tokens, uint32_t n, uint32_t n_rows, uint32_t row0, hai_error *err) {
    const hai_model *m = c->m;
    const hai_hparams *hp = &m->hp;
    int64_t E = hp->n_embd;
    size_t odim = (size_t)hp->n_head * hp->head_dim_v;
    embd_job ej = {c, tokens, n};
    hai_pool_run(c->pool, embd_task, &ej);
    rope_table(c, n);
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        if (c->should_abort && c->should_abort(c->abort_user))
            return hai_fail(err, HAI_ERR_CANCELLED, "eval: cancelled");
        const hai_layer *L = &m->layers[l];
        hai_layer streamed;
        if (L->streamed) {
            hai_status st = layer_get(c, L, &streamed, err);
            if (st) return st;
            L = &streamed;
        }
        /* attention block */
        norm_quant(c, c->x, (size_t)E, L->attn_norm, c->xn, E, n, act_of(&L->wq));
        if (act_of(&L->wk) == act_of(&L->wq) && act_of(&L->wv) == act_of(&L->wq)) {
            mm_out o[3] = {{&L->wq, c->q, false, 0}, {&L->wk, c->kv_k, false, 0}, {&L->wv, c->kv_v, false, 0}};
            matmul(c, c->xn, n, o, 3);
        } else { /* weights of different activation formats: one pass each */
            const hai_weight *ws[3] = {&L->wq, &L->wk, &L->wv};
            float *outs[3] = {c->q, c->kv_k, c->kv_v};
            for (int k = 0; k < 3; k++) {
                if (k) norm_quant(c, c->xn, (size_t)E, NULL, c->xn, E, n, act_of(ws[k]));
                mm_out o = {ws[k], outs[k], false, 0};
                matmul(c, c->xn, n, &o, 1);
            }
        }
        qk_job qj = {c, L, l, n};
        hai_pool_run(c->pool, qk_task, &qj);
        store_job sj = {c, L, l, n};
        hai_pool_run(c->pool, store_task, &sj);
        att_job aj = {c, L, l, n};
        hai_pool_run(c->pool, att_task, &aj);
        norm_quant(c, c->attn, odim, NULL, c->attn, (int64_t)odim, n, act_of(&L->wo));
        add_residual(c, &L->wo, c->attn, n, c->xn, L->post_attn_norm);
        if (L->exps) {
            hai_status st = moe_block(c, L, l, n, err);
            if (st) return st;
            continue;
        }
        /* feed-forward block */
        norm_quant(c, c->x, (size_t)E, L->ffn_norm, c->xn, E, n, act_of(&L->gate));
        gate_up(c, &L->gate, &L->up, &L->down, c->xn, n);
        add_residual(c, &L->down, c->gate, n, c->xn, L->post_ffn_norm);
        if (L->streamed) layer_put(c, L);
    }
    if (c->embd_pool) { /* hai_embed: every row through the output norm, pooled */
        norm_job pj = {c, c->x, (size_t)E, m->output_norm, c->xn, E, n, HAI_ACT_F32, NULL};
        hai_pool_run(c->pool, norm_task, &pj);
        for (uint32_t i = 0; i < n; i++) { /* each row into its sequence's vector */
            const float *y = c->xn + (size_t)i * E;
            int32_t s = c->b_seq[i];
            float *v = c->embd + (size_t)s * E;
            if (c->embd_pool == HAI_POOLING_MEAN)
                for (int64_t k = 0; k < E; k++) v[k] += y[k];
            else if (c->embd_pool == HAI_POOLING_LAST || c->embd_rows[s] == 0)
                memcpy(v, y, (size_t)E * sizeof *y);
            c->embd_rows[s]++;
        }
        return HAI_OK;
    }
    /* output: the rows whose logits are kept */
    if (!n_rows) return HAI_OK;
    norm_job oj = {c, c->x, (size_t)E, m->output_norm, c->xn, E, n_rows, act_of(&m->output), c->b_rows};
    hai_pool_run(c->pool, norm_task, &oj);
    mm_out ol = {&m->output, c->logits + (size_t)row0 * hp->n_vocab, false, 0};
    matmul(c, c->xn, n_rows, &ol, 1);
    if (hp->logit_scale != 1.0f)
        for (size_t i = 0; i < (size_t)n_rows * hp->n_vocab; i++) ol.out[i] /= hp->logit_scale;
    if (hp->final_softcap && c->k->softcap) /* gemma2 */
        c->k->softcap((int64_t)n_rows * hp->n_vocab, ol.out, hp->final_softcap);
    else if (hp->final_softcap)
        for (size_t i = 0; i < (size_t)n_rows * hp->n_vocab; i++) ol.out[i] = hp->final_softcap * tanhf(ol.out[i] / hp->final_softcap);
    return HAI_OK;
}
