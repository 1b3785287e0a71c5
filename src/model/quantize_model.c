/* hai_quantize_model: a GGUF model in, a quantized one out (see hai.h). The type of each tensor
 * comes from the mix (which tensors keep more bits), rows that do not fit a type's blocks take
 * a fallback type, and every tensor streams through in row chunks quantized on a thread pool,
 * with the error of the dequantized result against the input measured as it goes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "base/error.h"
#include "quant/quant.h"
#include "base/threadpool.h"

/* ---- the mixes ---------------------------------------------------------------------------------- */

/* general.file_type values, as the GGUF ecosystem numbers them */
enum { FT_F32 = 0, FT_F16 = 1, FT_Q4_0 = 2, FT_Q4_1 = 3, FT_Q8_0 = 7, FT_Q5_0 = 8, FT_Q5_1 = 9, FT_Q2_K = 10,
       FT_Q3_K_S = 11, FT_Q3_K_M = 12, FT_Q3_K_L = 13, FT_Q4_K_S = 14, FT_Q4_K_M = 15, FT_Q5_K_S = 16, FT_Q5_K_M = 17,
       FT_Q6_K = 18, FT_IQ4_NL = 25, FT_IQ4_XS = 30, FT_BF16 = 32 };

static const struct {
    const char *name;
    uint32_t ftype, base;
} mixes[] = {
    {"F32", FT_F32, HAI_TYPE_F32},         {"F16", FT_F16, HAI_TYPE_F16},          {"BF16", FT_BF16, HAI_TYPE_BF16},
    {"Q8_0", FT_Q8_0, HAI_TYPE_Q8_0},      {"Q4_0", FT_Q4_0, HAI_TYPE_Q4_0},       {"Q4_1", FT_Q4_1, HAI_TYPE_Q4_1},
    {"Q5_0", FT_Q5_0, HAI_TYPE_Q5_0},      {"Q5_1", FT_Q5_1, HAI_TYPE_Q5_1},       {"Q2_K", FT_Q2_K, HAI_TYPE_Q2_K},
    {"Q3_K_S", FT_Q3_K_S, HAI_TYPE_Q3_K},  {"Q3_K_M", FT_Q3_K_M, HAI_TYPE_Q3_K},   {"Q3_K_L", FT_Q3_K_L, HAI_TYPE_Q3_K},
    {"Q4_K_S", FT_Q4_K_S, HAI_TYPE_Q4_K},  {"Q4_K_M", FT_Q4_K_M, HAI_TYPE_Q4_K},   {"Q5_K_S", FT_Q5_K_S, HAI_TYPE_Q5_K},
    {"Q5_K_M", FT_Q5_K_M, HAI_TYPE_Q5_K},  {"Q6_K", FT_Q6_K, HAI_TYPE_Q6_K},       {"IQ4_NL", FT_IQ4_NL, HAI_TYPE_IQ4_NL},
    {"IQ4_XS", FT_IQ4_XS, HAI_TYPE_IQ4_XS},
    /* the short names mean the medium mixes, as elsewhere in the ecosystem */
    {"Q3_K", FT_Q3_K_M, HAI_TYPE_Q3_K},    {"Q4_K", FT_Q4_K_M, HAI_TYPE_Q4_K},     {"Q5_K", FT_Q5_K_M, HAI_TYPE_Q5_K},
};

bool hai_quantize_type_info(const char *name, uint32_t *ftype, uint32_t *base) {
    for (size_t i = 0; name && i < sizeof mixes / sizeof *mixes; i++)
        if (!strcasecmp(name, mixes[i].name)) {
            if (ftype) *ftype = mixes[i].ftype;
            if (base) *base = mixes[i].base;
            return true;
        }
    return false;
}

typedef struct plan {
    uint32_t ftype, base;
    bool pure, tied; /* tied: no output.weight, the embedding is the output too */
    int n_layer, gqa;
} plan;

static bool is_float(uint32_t t) { return t == HAI_TYPE_F32 || t == HAI_TYPE_F16 || t == HAI_TYPE_BF16; }

/* Layers that get more bits in the medium mixes: the first and last eighth, and every third
 * one between (where quantization error hurts the output most). */
static bool more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

/* What to use when a row does not divide into the type's blocks. */
static uint32_t fallback(uint32_t t) {
    switch (t) {
    case HAI_TYPE_Q2_K: case HAI_TYPE_Q3_K: case HAI_TYPE_IQ4_XS: return HAI_TYPE_IQ4_NL;
    case HAI_TYPE_Q4_K: return HAI_TYPE_Q5_0;
    case HAI_TYPE_Q5_K: return HAI_TYPE_Q5_1;
    case HAI_TYPE_Q6_K: return HAI_TYPE_Q8_0;
    default: return HAI_TYPE_F16;
    }
}

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

static uint32_t choose(const plan *p, const hai_gguf_tensor *t, bool *fell_back) {
    *fell_back = false;
    if (t->n_dims < 2 || !ends_with(t->name, ".weight")) return HAI_TYPE_F32; /* norms, biases: small, sensitive */
    if (ends_with(t->name, "ffn_gate_inp.weight")) return HAI_TYPE_F32; /* a MoE router: small, and its choices are discrete */
    uint32_t ty = p->base, ft = p->ftype;
    int layer = -1;
    if (!strncmp(t->name, "blk.", 4)) layer = atoi(t->name + 4);
    int n = p->n_layer > 0 ? p->n_layer : 1;
    bool output = !strcmp(t->name, "output.weight") || (p->tied && !strcmp(t->name, "token_embd.weight"));
    if (!p->pure && !is_float(ty)) {
        bool k2or3 = ft == FT_Q2_K || ft == FT_Q3_K_S || ft == FT_Q3_K_M || ft == FT_Q3_K_L;
        if (output) {
            ty = ft == FT_Q8_0 ? HAI_TYPE_Q8_0 : HAI_TYPE_Q6_K;
        } else if (ends_with(t->name, "attn_v.weight") && layer >= 0) {
            if (ft == FT_Q2_K) ty = p->gqa >= 4 ? HAI_TYPE_Q4_K : HAI_TYPE_Q3_K;
            else if (ft == FT_Q3_K_M) ty = layer < 2 ? HAI_TYPE_Q5_K : HAI_TYPE_Q4_K;
            else if (ft == FT_Q3_K_L) ty = HAI_TYPE_Q5_K;
            else if (ft == FT_Q4_K_S && layer < 4) ty = HAI_TYPE_Q5_K;
            else if ((ft == FT_Q4_K_M || ft == FT_Q5_K_M) && more_bits(layer, n)) ty = HAI_TYPE_Q6_K;
            if (k2or3 && p->gqa >= 4 && ty == HAI_TYPE_Q3_K) ty = HAI_TYPE_Q4_K; /* attn_v is small under GQA */
        } else if ((ends_with(t->name, "ffn_down.weight") || ends_with(t->name, "ffn_down_exps.weight")) && layer >= 0) {
            if (ft == FT_Q2_K) ty = HAI_TYPE_Q3_K;
            else if (ft == FT_Q3_K_M) ty = layer < n / 16 ? HAI_TYPE_Q5_K : more_bits(layer, n) ? HAI_TYPE_Q4_K : HAI_TYPE_Q3_K;
            else if (ft == FT_Q3_K_L) ty = HAI_TYPE_Q5_K;
            else if (ft == FT_Q4_K_S && layer < n / 8) ty = HAI_TYPE_Q5_K;
            else if ((ft == FT_Q4_K_M || ft == FT_Q5_K_M) && more_bits(layer, n)) ty = HAI_TYPE_Q6_K;
        } else if (ends_with(t->name, "attn_output.weight") && layer >= 0) {
            if (ft == FT_Q2_K) ty = HAI_TYPE_Q3_K;
            else if (ft == FT_Q3_K_M) ty = HAI_TYPE_Q4_K;
            else if (ft == FT_Q3_K_L) ty = HAI_TYPE_Q5_K;
        }
    }
    while (t->ne[0] % hai_type_block_size(ty)) {
        ty = fallback(ty);
        *fell_back = true;
    }
    return ty;
}

/* ---- one chunk of rows on the pool ------------------------------------------------------------- */

#define MAX_THREADS 256

typedef struct chunk_job {
    uint32_t from, to;
    int64_t ne0, rows;
    const uint8_t *src;
    size_t src_row, dst_row;
    uint8_t *dst;
    float *scratch;          /* 2 * ne0 per thread */
    double se[MAX_THREADS], sxx[MAX_THREADS];
    hai_status st[MAX_THREADS];
    hai_error err[MAX_THREADS];
} chunk_job;

static void chunk_task(void *arg, int ith, int nth) {
    chunk_job *j = arg;
    float *x = j->scratch + (size_t)ith * 2 * (size_t)j->ne0, *y = x + j->ne0;
    double se = 0, sxx = 0;
    for (int64_t r = ith; r < j->rows && !j->st[ith]; r += nth) {
        const uint8_t *s = j->src + (size_t)r * j->src_row;
        uint8_t *d = j->dst + (size_t)r * j->dst_row;
        hai_status st = hai_dequantize(j->from, s, x, j->ne0, &j->err[ith]);
        if (!st && j->from == j->to) memcpy(d, s, j->src_row); /* nothing to do: the bytes as they are */
        else if (!st) st = hai_quantize(j->to, x, d, j->ne0, &j->err[ith]);
        if (!st) st = hai_dequantize(j->to, d, y, j->ne0, &j->err[ith]);
        if (st) {
            j->st[ith] = st;
            break;
        }
        for (int64_t i = 0; i < j->ne0; i++) {
            double e = (double)x[i] - y[i];
            se += e * e, sxx += (double)x[i] * x[i];
        }
    }
    j->se[ith] = se, j->sxx[ith] = sxx;
}

/* ---- the file ---------------------------------------------------------------------------------- */

static int meta_int(const hai_gguf *g, const char *arch, const char *key) {
    char k[160];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    uint32_t v;
    return hai_gguf_get_u32(g, k, &v, NULL) == HAI_OK ? (int)v : 0;
}

void hai_quantize_report_free(hai_quantize_report *rep) {
    if (!rep) return;
    free(rep->tensors);
    memset(rep, 0, sizeof *rep);
}

hai_status hai_quantize_model(const char *in, const char *out, const hai_quantize_params *p, hai_quantize_report *rep_out,
                              hai_error *err) {
    double t0 = hai_time_s();
    hai_quantize_report rep = {0};
    plan pl = {.pure = p->pure};
    if (!hai_quantize_type_info(p->type, &pl.ftype, &pl.base))
        return hai_fail(err, HAI_ERR_INVALID, "quantize: unknown type '%s' (hai quantize --help lists them)", p->type ? p->type : "");
    hai_gguf *g = NULL;
    hai_gguf_writer *w = NULL;
    hai_pool *pool = NULL;
    uint8_t *dst = NULL;
    float *scratch = NULL;
    chunk_job *job = NULL;
    hai_status st = hai_gguf_open(in, &g, err);
    if (st) return st;
    int64_t nt = hai_gguf_n_tensors(g);
    rep.tensors = calloc(nt > 0 ? (size_t)nt : 1, sizeof *rep.tensors);
    job = calloc(1, sizeof *job);
    int threads = p->n_threads > 0 ? p->n_threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1) threads = 1;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    pool = hai_pool_create(threads);
    if (!rep.tensors || !job || !pool) {
        st = hai_fail(err, HAI_ERR_NOMEM, "quantize: out of memory");
        goto done;
    }
    rep.n_tensors = (size_t)nt;
    rep.ftype = pl.ftype;

    /* the shape of the model, for the mix */
    hai_gguf_str arch_s = {0};
    char arch[64] = "llama";
    if (hai_gguf_get_str(g, "general.architecture", &arch_s, NULL) == HAI_OK && arch_s.size < sizeof arch) {
        memcpy(arch, arch_s.data, (size_t)arch_s.size);
        arch[arch_s.size] = '\0';
    }
    pl.n_layer = meta_int(g, arch, "block_count");
    int heads = meta_int(g, arch, "attention.head_count"), kv = meta_int(g, arch, "attention.head_count_kv");
    pl.gqa = heads > 0 && kv > 0 ? heads / kv : 1;
    pl.tied = !hai_gguf_find_tensor(g, "output.weight");

    /* metadata: everything, with the new file type */
    st = hai_gguf_writer_create(hai_gguf_version(g) >= 3 ? 3 : 2, hai_gguf_alignment(g), &w, err);
    for (int64_t i = 0; !st && i < hai_gguf_n_kv(g); i++) {
        const hai_gguf_kv *k = hai_gguf_kv_at(g, i);
        if (strcmp(k->key, "general.file_type") && strcmp(k->key, "general.quantization_version"))
            st = hai_gguf_writer_set(w, k->key, &k->value, err);
    }
    if (!st) st = hai_gguf_writer_set_u32(w, "general.file_type", pl.ftype, err);
    if (!st) st = hai_gguf_writer_set_u32(w, "general.quantization_version", 2, err);

    /* the tensors and their types */
    int64_t total = 0, max_ne0 = 1;
    for (int64_t i = 0; !st && i < nt; i++) {
        const hai_gguf_tensor *t = hai_gguf_tensor_at(g, i);
        hai_quantize_tensor *r = &rep.tensors[i];
        snprintf(r->name, sizeof r->name, "%s", t->name);
        r->from = t->type;
        r->n = t->n_elements;
        r->bytes_in = t->size;
        if (!hai_type_supported(t->type)) {
            st = hai_fail(err, HAI_ERR_UNSUPPORTED, "quantize: tensor '%s' is %s, which hai cannot read", t->name, hai_type_name(t->type));
            break;
        }
        r->to = is_float(pl.base) && t->n_dims >= 2 && ends_with(t->name, ".weight") ? pl.base : choose(&pl, t, &r->fallback);
        if (!is_float(t->type) && r->to != t->type) rep.n_requantized++;
        r->bytes_out = hai_tensor_bytes(r->to, t->n_dims, t->ne);
        st = hai_gguf_writer_add_tensor(w, t->name, r->to, t->n_dims, t->ne, NULL, err);
        total += t->n_elements;
        if (t->ne[0] > max_ne0) max_ne0 = t->ne[0];
    }
    if (!st) st = hai_gguf_writer_begin(w, out, err);

    /* scratch: one chunk of output rows, two rows of floats per thread */
    size_t chunk_bytes = p->chunk_bytes ? p->chunk_bytes : 8u << 20;
    uint64_t scratch_n = 0;
    if (!st && (!hai_mul_u64((uint64_t)max_ne0, 2ull * (uint64_t)threads * sizeof(float), &scratch_n) || scratch_n > SIZE_MAX ||
                !(scratch = malloc((size_t)scratch_n))))
        st = hai_fail(err, HAI_ERR_NOMEM, "quantize: cannot allocate scratch for rows of %lld", (long long)max_ne0);
    int64_t done = 0;
    double se_all = 0, sxx_all = 0;
    for (int64_t i = 0; !st && i < nt; i++) {
        const hai_gguf_tensor *t = hai_gguf_tensor_at(g, i);
        hai_quantize_tensor *r = &rep.tensors[i];
        int64_t ne0 = t->ne[0], rows = t->n_elements / ne0;
        size_t src_row = hai_row_bytes(t->type, ne0), dst_row = hai_row_bytes(r->to, ne0);
        int64_t per = (int64_t)(chunk_bytes / (dst_row ? dst_row : 1));
        if (per < 1) per = 1;
        if (per > rows) per = rows;
        uint8_t *nd = realloc(dst, (size_t)per * dst_row);
        if (!nd) {
            st = hai_fail(err, HAI_ERR_NOMEM, "quantize: out of memory for '%s'", t->name);
            break;
        }
        dst = nd;
        double se = 0, sxx = 0;
        for (int64_t r0 = 0; !st && r0 < rows; r0 += per) {
            int64_t n = rows - r0 < per ? rows - r0 : per;
            memset(job, 0, sizeof *job);
            *job = (chunk_job){.from = t->type, .to = r->to, .ne0 = ne0, .rows = n, .src = (const uint8_t *)t->data + (size_t)r0 * src_row,
                               .src_row = src_row, .dst_row = dst_row, .dst = dst, .scratch = scratch};
            hai_pool_run(pool, chunk_task, job);
            for (int k = 0; k < threads; k++) {
                if (job->st[k] && !st) st = hai_fail(err, job->st[k], "quantize: tensor '%s': %s", t->name, job->err[k].msg);
                se += job->se[k], sxx += job->sxx[k];
            }
            if (!st) st = hai_gguf_writer_write_part(w, dst, (uint64_t)n * dst_row, err);
            done += n * ne0;
            if (p->progress) p->progress(p->progress_user, done, total, t->name);
        }
        r->rmse = sqrt(se / (double)t->n_elements);
        r->rel_rmse = sxx > 0 ? sqrt(se / sxx) : 0;
        rep.bytes_in += r->bytes_in, rep.bytes_out += r->bytes_out;
        if (r->to != HAI_TYPE_F32) { /* the weights (norms and biases stay F32) */
            se_all += se, sxx_all += sxx;
            rep.n_elements += t->n_elements;
        }
    }
    if (!st) st = hai_gguf_writer_finish(w, err);
    rep.rmse = rep.n_elements ? sqrt(se_all / (double)rep.n_elements) : 0;
    rep.rel_rmse = sxx_all > 0 ? sqrt(se_all / sxx_all) : 0;
done:
    rep.seconds = hai_time_s() - t0;
    hai_gguf_writer_free(w); /* an unfinished write leaves no file behind */
    hai_pool_free(pool);
    hai_gguf_free(g);
    free(dst);
    free(scratch);
    free(job);
    if (st || !rep_out) hai_quantize_report_free(&rep);
    if (!st && rep_out) *rep_out = rep;
    return st;
}
