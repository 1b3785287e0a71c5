/* Every fast kernel against the scalar reference (ref.c) on random data: activation quantization
 * bit for bit, dot products within float rounding of the exact integer sums, float helpers. */
#if defined(__aarch64__)
#include <sys/auxv.h>
#endif
#include "check.h"
#include "quant/fp16.h"
#include "kernels/kernels.h"
#include "base/rng.h"

static hai_rng rng;

static float randn(void) {
    float a, b;
    hai_rng_normal2(&rng, &a, &b);
    return a;
}

/* Random activations with a few outlier channels, as real models have. */
static void random_acts(float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = randn();
    for (int k = 0; k < 3; k++) x[hai_rng_next(&rng) % (uint64_t)n] *= 30.0f;
}

static uint16_t rand_scale(void) { return hai_f32_to_f16(0.001f + 0.02f * (float)hai_rng_uniform(&rng)); }

/* A row of n weights of `type`: random bytes with valid scales where the format has them. */
static void random_row(uint32_t type, void *row, int64_t n) {
    size_t bytes = hai_row_bytes(type, n);
    uint8_t *p = row;
    for (size_t i = 0; i < bytes; i++) p[i] = (uint8_t)hai_rng_next(&rng);
    int64_t nb = n / hai_type_block_size(type);
    size_t bb = hai_type_block_bytes(type);
    for (int64_t b = 0; b < nb; b++) {
        uint8_t *blk = p + (size_t)b * bb;
        uint16_t s1 = rand_scale(), s2 = rand_scale();
        switch (type) {
        case HAI_TYPE_Q4_0: case HAI_TYPE_Q5_0: case HAI_TYPE_Q8_0: case HAI_TYPE_IQ4_NL: case HAI_TYPE_IQ4_XS:
            memcpy(blk, &s1, 2);
            break;
        case HAI_TYPE_Q4_1: case HAI_TYPE_Q5_1: case HAI_TYPE_Q4_K: case HAI_TYPE_Q5_K:
            memcpy(blk, &s1, 2), memcpy(blk + 2, &s2, 2);
            break;
        case HAI_TYPE_Q2_K: memcpy(blk + 80, &s1, 2), memcpy(blk + 82, &s2, 2); break;
        case HAI_TYPE_Q3_K: memcpy(blk + 108, &s1, 2); break;
        case HAI_TYPE_Q6_K: memcpy(blk + 208, &s1, 2); break;
        default: break;
        }
    }
    if (type == HAI_TYPE_F16 || type == HAI_TYPE_BF16) {
        uint16_t *h = row;
        for (int64_t i = 0; i < n; i++) h[i] = type == HAI_TYPE_F16 ? hai_f32_to_f16(randn()) : hai_f32_to_bf16(randn());
    } else if (type == HAI_TYPE_F32) {
        float *f = row;
        for (int64_t i = 0; i < n; i++) f[i] = randn();
    }
}

static const char *layout_name(uint32_t t) {
    return t == HAI_WTYPE_Q4_0X2 ? "Q4_0X2" : t == HAI_WTYPE_Q8_0X16 ? "Q8_0X16" : t == HAI_WTYPE_Q4_KX16 ? "Q4_KX16"
           : t == HAI_WTYPE_Q6_KX16 ? "Q6_KX16" : t == HAI_WTYPE_Q4_0X16 ? "Q4_0X16" : hai_type_name(t);
}

/* rows rows of type hai_repack_from(t) (orig) as a matrix in layout t (a copy where t is a GGUF
 * type); *rb: its row bytes */
static uint8_t *in_layout(uint32_t t, const uint8_t *orig, int64_t n, int64_t rows, size_t *rb) {
    uint32_t from = hai_repack_from(t);
    size_t ob = hai_row_bytes(from, n);
    *rb = t == from ? ob : hai_repack_row_bytes(t, n);
    size_t bytes = t == from ? ob * (size_t)rows : hai_repack_bytes(t, n, rows);
    uint8_t *w = aligned_alloc(64, (bytes + 63) / 64 * 64); /* as the model's weights are */
    if (t == from) memcpy(w, orig, ob * (size_t)rows);
    else hai_repack(from, t, orig, ob, w, n, rows);
    return w;
}

/* Every layout's rows read back (hai_repacked_row, the lookups of a tied embedding table) are
 * the rows it was made from, exactly; row counts that leave a partial panel, odd block counts. */
static void check_repacked_rows(void) {
    const int64_t sizes[] = {96, 768, 800, 2048};
    for (uint32_t t = HAI_TYPE_COUNT; t < HAI_WTYPE_COUNT; t++)
        for (int si = 0; si < 4; si++) {
            int64_t n = sizes[si], rows = 37;
            uint32_t from = hai_repack_from(t);
            if (n % hai_type_block_size(from)) continue;
            size_t ob = hai_row_bytes(from, n), rb;
            uint8_t *orig = malloc(ob * (size_t)rows);
            for (int64_t r = 0; r < rows; r++) random_row(from, orig + r * ob, n);
            uint8_t *w = in_layout(t, orig, n, rows, &rb);
            float *want = malloc((size_t)n * sizeof *want), *got = malloc((size_t)n * sizeof *got);
            int bad = 0;
            for (int64_t r = 0; r < rows; r++) {
                hai_dequantize(from, orig + r * ob, want, n, NULL);
                hai_repacked_row(t, w, n, r, got);
                bad += memcmp(want, got, (size_t)n * sizeof *got) != 0;
            }
            CHECK_MSG(bad == 0, "%s n=%lld: %d of %lld rows read back differ", layout_name(t), (long long)n, bad, (long long)rows);
            free(orig), free(w), free(want), free(got);
        }
}

static void check_table(const hai_kernels *fast) {
    const hai_kernels *ref = hai_kernels_ref();
    fprintf(stderr, "kernels: %s\n", fast->name);
    const int64_t sizes[] = {96, 256, 800, 2048, 5632}; /* 96 and 800: odd numbers of blocks */
    float *x = malloc(8192 * sizeof *x), *y = malloc(8192 * sizeof *y), *y2 = malloc(8192 * sizeof *y2);
    void *qa = malloc(8192 * 4), *qb = malloc(8192 * 4), *row = malloc(8192 * 8);
    for (int si = 0; si < 5; si++) {
        int64_t n = sizes[si];
        /* activation quantization: identical bytes */
        for (int rep = 0; rep < 20; rep++) {
            random_acts(x, n);
            if (rep == 0) memset(x, 0, 32 * sizeof *x); /* an all-zero block */
            ref->quantize_act(x, qa, n);
            fast->quantize_act(x, qb, n);
            CHECK_MSG(memcmp(qa, qb, hai_act_row_bytes(HAI_ACT_Q16, n)) == 0, "%s quantize_act differs (n %lld)", fast->name,
                      (long long)n);
        }
        /* dot products of every type */
        for (uint32_t t = 0; t < HAI_TYPE_COUNT; t++) {
            if (!ref->vec_dot[t] || n % hai_type_block_size(t)) continue;
            CHECK_MSG(fast->vec_dot[t] != NULL, "%s lacks a dot for %s", fast->name, hai_type_name(t));
            if (!fast->vec_dot[t]) continue;
            for (int rep = 0; rep < 10; rep++) {
                random_row(t, row, n);
                random_acts(x, n);
                const void *act = x;
                if (hai_act_type_for(t) == HAI_ACT_Q16) {
                    ref->quantize_act(x, qa, n);
                    act = qa;
                }
                float a = ref->vec_dot[t](n, row, act), b = fast->vec_dot[t](n, row, act);
                /* the scale: the same sum with every term made positive */
                float *deq = y;
                hai_dequantize(t, row, deq, n, NULL);
                double mag = 0;
                for (int64_t i = 0; i < n; i++) mag += fabs((double)deq[i] * x[i]);
                CHECK_MSG(fabs((double)a - b) <= 1e-5 * mag + 1e-6, "%s %s n=%lld: ref %.9g fast %.9g (scale %.3g)", fast->name,
                          hai_type_name(t), (long long)n, a, b, mag);
                /* and both near the true value (checks the reference too) */
                double truth = 0, qerr = 0;
                for (int64_t i = 0; i < n; i++) truth += (double)deq[i] * x[i];
                if (act != x) /* each activation is within half a step (max|x| of its block / HAI_Q16_MAX) */
                    for (int64_t blk = 0; blk < n / 32; blk++) {
                        double amax = 0, wsum = 0;
                        for (int i = 0; i < 32; i++) amax = fmax(amax, fabs(x[32 * blk + i])), wsum += fabs(deq[32 * blk + i]);
                        qerr += 0.5 * amax / HAI_Q16_MAX * wsum;
                    }
                CHECK_MSG(fabs(truth - a) <= 1.01 * qerr + 1e-5 * mag + 1e-6, "ref %s n=%lld: %.9g vs true %.9g (bound %.3g)", hai_type_name(t),
                          (long long)n, a, truth, qerr);
                /* a layout of hai's own made from this row: the same dot, in the reference and here */
                for (uint32_t to = HAI_TYPE_COUNT; to < HAI_WTYPE_COUNT; to++) {
                    if (hai_repack_from(to) != t || hai_wtype_panels(to)) continue; /* a layout of this type whose rows read alone */
                    uint8_t *rp = malloc(hai_repack_bytes(to, n, 1));
                    hai_repack(t, to, row, 0, rp, n, 1);
                    CHECK_MSG(ref->vec_dot[to] && fast->vec_dot[to], "%s: no dot for layout %u", fast->name, to);
                    if (ref->vec_dot[to] && fast->vec_dot[to]) {
                        float ra = ref->vec_dot[to](n, rp, act), fa = fast->vec_dot[to](n, rp, act);
                        CHECK_MSG(fabs((double)ra - a) <= 1e-5 * mag + 1e-6, "ref layout %u n=%lld: %.9g vs %.9g", to, (long long)n, ra, a);
                        CHECK_MSG(fabs((double)fa - a) <= 1e-5 * mag + 1e-6, "%s layout %u n=%lld: %.9g vs %.9g", fast->name, to, (long long)n, fa, a);
                    }
                    free(rp);
                }
            }
        }
        /* float helpers */
        random_acts(x, n);
        random_acts(y, n);
        double mag = 0;
        for (int64_t i = 0; i < n; i++) mag += fabs((double)x[i] * y[i]);
        CHECK_NEAR(fast->dot_f32(n - 3, x, y), ref->dot_f32(n - 3, x, y), 1e-5 * mag);
        uint16_t *h = row, *h2 = (uint16_t *)row + 8192;
        ref->f32_to_f16(n - 1, x, h);
        fast->f32_to_f16(n - 1, x, h2);
        CHECK_MSG(memcmp(h, h2, (size_t)(n - 1) * 2) == 0, "%s f32_to_f16 differs", fast->name);
        CHECK_NEAR(fast->dot_f16_f32(n - 5, h, y), ref->dot_f16_f32(n - 5, h, y), 1e-5 * mag);
        memcpy(y2, y, (size_t)n * sizeof *y);
        ref->scale_axpy_f16(n - 7, 0.7f, 1.3f, h, y);
        fast->scale_axpy_f16(n - 7, 0.7f, 1.3f, h, y2);
        double worst = 0;
        for (int64_t i = 0; i < n; i++) worst = fmax(worst, fabs((double)y[i] - y2[i]));
        CHECK_MSG(worst <= 1e-4, "%s scale_axpy_f16 differs by %g", fast->name, worst);
        memcpy(y2, y, (size_t)n * sizeof *y);
        ref->axpy_f32(n - 2, -0.5f, x, y);
        fast->axpy_f32(n - 2, -0.5f, x, y2);
        worst = 0;
        for (int64_t i = 0; i < n; i++) worst = fmax(worst, fabs((double)y[i] - y2[i]));
        CHECK_MSG(worst <= 1e-4, "%s axpy_f32 differs by %g", fast->name, worst);
    }
    free(x), free(y), free(y2), free(qa), free(qb), free(row);
}

/* The matrix kernels (prefill) against the reference dots: odd row and token counts (partial
 * panels), every type they take, writing and accumulating. */
static void check_gemm(const hai_kernels *k) {
    const hai_kernels *ref = hai_kernels_ref();
    fprintf(stderr, "gemm: %s\n", k->name);
    const int64_t n = 512, rows = 37, toks = 21;
    size_t arb = hai_act_row_bytes(HAI_ACT_Q16, n);
    float *x = malloc((size_t)toks * n * sizeof *x), *out = malloc((size_t)toks * rows * sizeof *out);
    uint8_t *acts = malloc((size_t)toks * arb), *prep = malloc(k->gemm_prep_bytes(n, toks)), *scratch = malloc(k->gemm_scratch_bytes(n) + 64);
    for (int64_t t = 0; t < toks; t++) {
        random_acts(x + t * n, n);
        ref->quantize_act(x + t * n, acts + t * arb, n);
    }
    k->gemm_prep(n, acts, arb, 0, 16, prep); /* two calls, as two threads would */
    k->gemm_prep(n, acts, arb, 16, toks, prep);
    for (uint32_t t = 0; t < HAI_WTYPE_COUNT; t++) {
        if (!k->gemm[t]) continue;
        uint32_t from = hai_repack_from(t);
        uint8_t *orig = malloc(rows * hai_row_bytes(from, n)), *w;
        size_t rb, ob = hai_row_bytes(from, n);
        for (int64_t r = 0; r < rows; r++) random_row(from, orig + r * ob, n);
        w = in_layout(t, orig, n, rows, &rb);
        for (int add = 0; add < 2; add++) {
            for (int64_t i = 0; i < toks * rows; i++) out[i] = add ? 1.5f : -99.0f;
            k->gemm[t](n, w, rb, 0, 16, prep, toks, out, rows, add, scratch);
            k->gemm[t](n, w, rb, 16, rows, prep, toks, out, rows, add, scratch);
            double worst = 0;
            for (int64_t tk = 0; tk < toks; tk++)
                for (int64_t r = 0; r < rows; r++) {
                    double want = ref->vec_dot[from](n, orig + r * ob, acts + tk * arb) + (add ? 1.5 : 0), got = out[tk * rows + r];
                    float deq[512];
                    hai_dequantize(from, orig + r * ob, deq, n, NULL);
                    double mag = 1e-6; /* the sum with every term made positive */
                    for (int64_t i = 0; i < n; i++) mag += fabs((double)deq[i] * x[tk * n + i]);
                    worst = fmax(worst, fabs(got - want) / mag);
                }
            CHECK_MSG(worst <= 1e-5, "%s gemm %s (add %d): off by %.3g of the scale", k->name, layout_name(t), add, worst);
        }
        free(w);
        free(orig);
    }
    free(x), free(out), free(acts), free(prep), free(scratch);
}

/* The few-token kernels against the reference dots: every type they take, row counts that leave
 * a partial panel, row lengths that leave a partial piece (and an odd number of blocks: Q4_0X2's
 * padding), 1 to HAI_FEW_TOKENS tokens (several passes of 8), two calls on disjoint row ranges as two
 * threads make them, writing and accumulating. The tokens are quantized apart (some all zero in
 * a block), so a token's scales applied to another's products would show. */
static void check_few(const hai_kernels *k) {
    const hai_kernels *ref = hai_kernels_ref();
    fprintf(stderr, "few tokens: %s\n", k->name);
    const int64_t sizes[] = {96, 256, 800, 1536}, rows = 37, max_toks = HAI_FEW_TOKENS;
    int types = 0;
    for (int si = 0; si < 4; si++) {
        int64_t n = sizes[si];
        size_t arb = hai_decode_row_bytes(n) + 64;
        float *x = malloc((size_t)max_toks * n * sizeof *x), *out = malloc((size_t)max_toks * rows * sizeof *out), *deq = malloc((size_t)n * sizeof *deq);
        uint8_t *acts = malloc((size_t)max_toks * arb), *dec = malloc((size_t)max_toks * arb), *scratch = malloc(k->few_scratch_bytes(n) + 64);
        for (int64_t t = 0; t < max_toks; t++) {
            random_acts(x + t * n, n);
            if (t == 2) memset(x + t * n + 32, 0, 32 * sizeof *x);
            ref->quantize_act(x + t * n, acts + t * arb, n);
            k->decode_prep(n, acts + t * arb, dec + t * arb);
        }
        for (uint32_t t = 0; t < HAI_WTYPE_COUNT; t++) {
            uint32_t from = hai_repack_from(t);
            if (!k->few[t] || n % hai_type_block_size(from)) continue;
            types++;
            size_t rb, ob = hai_row_bytes(from, n);
            uint8_t *orig = malloc(rows * ob);
            double *mag = malloc((size_t)max_toks * rows * sizeof *mag);
            for (int64_t r = 0; r < rows; r++) random_row(from, orig + r * ob, n);
            uint8_t *w = in_layout(t, orig, n, rows, &rb);
            for (int64_t r = 0; r < rows; r++) {
                hai_dequantize(from, orig + r * ob, deq, n, NULL);
                for (int64_t tk = 0; tk < max_toks; tk++) { /* the sum with every term made positive */
                    double m = 1e-6;
                    for (int64_t i = 0; i < n; i++) m += fabs((double)deq[i] * x[tk * n + i]);
                    mag[tk * rows + r] = m;
                }
            }
            static const int counts[] = {1, 2, 3, 4, 5, 7, 8, 9, 16, HAI_FEW_TOKENS};
            for (int ci = 0; ci < 10; ci++)
                for (int add = 0; add < 2; add++) {
                    int64_t toks = counts[ci];
                    for (int64_t i = 0; i < max_toks * rows; i++) out[i] = add ? 1.5f : -99.0f;
                    k->few[t](n, w, rb, 0, 16, dec, arb, toks, out, rows, add, scratch);
                    k->few[t](n, w, rb, 16, rows, dec, arb, toks, out, rows, add, scratch);
                    double worst = 0;
                    for (int64_t tk = 0; tk < max_toks; tk++)
                        for (int64_t r = 0; r < rows; r++) {
                            double want = tk < toks ? ref->vec_dot[from](n, orig + r * ob, acts + tk * arb) + (add ? 1.5 : 0) : add ? 1.5 : -99.0;
                            worst = fmax(worst, fabs(out[tk * rows + r] - want) / mag[tk * rows + r]);
                        }
                    CHECK_MSG(worst <= 1e-5, "%s few %s n=%lld, %lld tokens (add %d): off by %.3g of the scale", k->name, layout_name(t),
                              (long long)n, (long long)toks, add, worst);
                }
            free(w), free(orig), free(mag);
        }
        free(x), free(out), free(deq), free(acts), free(dec), free(scratch);
    }
    CHECK_MSG(types > 0, "%s has few-token kernels but none was tested", k->name);
}

/* Several tokens on F16/BF16 rows against the reference's dots of each token alone: row ranges
 * that end inside a block of rows, token counts inside a block of tokens, row lengths with a tail
 * past the vector width, and the add flag. */
static void check_rows_float(const hai_kernels *k) {
    const hai_kernels *ref = hai_kernels_ref();
    fprintf(stderr, "float rows: %s\n", k->name);
    const int64_t sizes[] = {16, 96, 203, 2048}, rows = 23, max_toks = 11;
    const uint32_t types[] = {HAI_TYPE_F16, HAI_TYPE_BF16};
    int tested = 0;
    for (int si = 0; si < 4; si++) {
        int64_t n = sizes[si];
        float *x = malloc((size_t)max_toks * n * sizeof *x), *out = malloc((size_t)max_toks * rows * sizeof *out);
        for (int64_t t = 0; t < max_toks; t++) random_acts(x + t * n, n);
        for (int ti = 0; ti < 2; ti++) {
            uint32_t type = types[ti];
            if (!k->rows_float[type]) continue;
            tested++;
            size_t rb = hai_row_bytes(type, n);
            uint8_t *w = malloc(rows * rb);
            for (int64_t r = 0; r < rows; r++) random_row(type, w + r * rb, n);
            for (int64_t toks = 1; toks <= max_toks; toks += toks < 6 ? 1 : 5)
                for (int add = 0; add < 2; add++) {
                    for (int64_t i = 0; i < max_toks * rows; i++) out[i] = add ? 1.5f : -99.0f;
                    k->rows_float[type](n, w, rb, 0, 5, x, (size_t)n, toks, out, rows, add);
                    k->rows_float[type](n, w, rb, 5, rows, x, (size_t)n, toks, out, rows, add);
                    double worst = 0;
                    for (int64_t tk = 0; tk < max_toks; tk++)
                        for (int64_t r = 0; r < rows; r++) {
                            double want = tk < toks ? ref->vec_dot[type](n, w + r * rb, x + tk * n) + (add ? 1.5 : 0) : add ? 1.5 : -99.0;
                            double mag = 1e-6;
                            for (int64_t i = 0; i < n; i++) mag += fabs(x[tk * n + i]) * 4.0; /* |w| < 4: normal draws */
                            worst = fmax(worst, fabs(out[tk * rows + r] - want) / mag);
                        }
                    CHECK_MSG(worst <= 1e-6, "%s rows_float %s n=%lld, %lld tokens (add %d): off by %.3g of the scale", k->name,
                              type == HAI_TYPE_F16 ? "F16" : "BF16", (long long)n, (long long)toks, add, worst);
                }
            free(w);
        }
        free(x), free(out);
    }
    CHECK_MSG(tested > 0, "%s has float-row kernels but none was tested", k->name);
}

/* The attention tile against a direct softmax in double precision, over several tiles (the
 * online rescaling), for head sizes the wide path takes (64, 128) and one it does not (48). */
static void check_attn(const hai_kernels *k) {
    static const int dims[] = {64, 128, 48, 64, 64, 128, 64, 256, 48}, heads[] = {8, 8, 8, 4, 6, 1, 12, 2, 3}; /* GQA group sizes */
    static const float caps[] = {0, 0, 0, 0, 0, 0, 0, 1.5f, 0.7f}; /* Gemma 2's soft-capping (small caps that bind) */
    for (int di = 0; di < 9; di++) {
        float cap = caps[di];
        int nh = heads[di], hd = dims[di], nkeys = 165; /* tiles of 64, 64, 37 */
        size_t stride = (size_t)2 * hd + 16;  /* value rows of a wider cache: the head's part only */
        size_t kn = (size_t)(nkeys + 15) / 16 * 16 * hd; /* keys in blocks of 16, transposed */
        float *q = malloc((size_t)nh * hd * sizeof *q), *acc = calloc((size_t)nh * hd, sizeof *acc), *sc = malloc((size_t)nh * 64 * sizeof *sc);
        uint16_t *K = malloc(kn * 2), *V = malloc((size_t)nkeys * stride * 2);
        float m[16], l[16];
        for (int i = 0; i < nh * hd; i++) q[i] = randn();
        for (size_t i = 0; i < (size_t)nkeys * stride; i++) V[i] = hai_f32_to_f16(randn());
        for (size_t i = 0; i < kn; i++) K[i] = 0x7E00; /* NaN: the lanes past the last key must be ignored */
        for (int t = 0; t < nkeys; t++)
            for (int i = 0; i < hd; i++) K[hai_kt_index(t, i, hd)] = hai_f32_to_f16(randn());
        for (int h = 0; h < nh; h++) m[h] = -INFINITY, l[h] = 0;
        float scale = 1.0f / sqrtf((float)hd);
        for (int t0 = 0; t0 < nkeys; t0 += 64) {
            int tn = nkeys - t0 < 64 ? nkeys - t0 : 64;
            k->attn_tile(nh, hd, hd, q, K + (size_t)t0 * hd, V + (size_t)t0 * stride, stride, tn, scale, cap, m, l, acc, sc);
        }
        double worst = 0;
        for (int h = 0; h < nh; h++) {
            double *p = malloc((size_t)nkeys * sizeof *p), mx = -INFINITY, sum = 0;
            for (int t = 0; t < nkeys; t++) {
                double d = 0;
                for (int i = 0; i < hd; i++) d += (double)q[h * hd + i] * hai_f16_to_f32(K[hai_kt_index(t, i, hd)]);
                p[t] = cap > 0 ? cap * tanh(d * scale / cap) : d * scale;
                mx = fmax(mx, p[t]);
            }
            for (int t = 0; t < nkeys; t++) sum += (p[t] = exp(p[t] - mx));
            for (int i = 0; i < hd; i++) {
                double o = 0;
                for (int t = 0; t < nkeys; t++) o += p[t] / sum * hai_f16_to_f32(V[(size_t)t * stride + i]);
                worst = fmax(worst, fabs(o - acc[h * hd + i] / l[h]));
            }
            free(p);
        }
        CHECK_MSG(worst < 1e-5, "%s attn_tile head size %d, %d heads, cap %g: off by %.3g", k->name, hd, nh, cap, worst);
        free(q), free(acc), free(sc), free(K), free(V);
    }
}

/* The decode layout and its dots against the reference dots on the plain rows, with odd numbers
 * of blocks (a last unpaired block). */
static void check_decode(const hai_kernels *k) {
    const hai_kernels *ref = hai_kernels_ref();
    fprintf(stderr, "decode: %s\n", k->name);
    const int64_t sizes[] = {96, 256, 800, 2048, 5632};
    float *x = malloc(8192 * sizeof *x), *deq = malloc(8192 * sizeof *deq);
    uint8_t *qa = malloc(8192 * 4), *qd = malloc(8192 * 4), *row = malloc(8192 * 8), *rp = malloc(8192 * 8);
    int types = 0;
    for (uint32_t t = 0; t < HAI_WTYPE_COUNT; t++) {
        if (!k->decode_dot[t]) continue;
        types++;
        uint32_t from = hai_repack_from(t);
        for (int si = 0; si < 5; si++) {
            int64_t n = sizes[si];
            if (n % hai_type_block_size(from)) continue;
            for (int rep = 0; rep < 10; rep++) {
                random_row(from, row, n);
                random_acts(x, n);
                if (rep == 0) memset(x, 0, 32 * sizeof *x);
                ref->quantize_act(x, qa, n);
                k->decode_prep(n, qa, qd);
                const void *w = row;
                if (t != from) {
                    hai_repack(from, t, row, 0, rp, n, 1);
                    w = rp;
                }
                float want = ref->vec_dot[from](n, row, qa), got = k->decode_dot[t](n, w, qd);
                hai_dequantize(from, row, deq, n, NULL);
                double mag = 0;
                for (int64_t i = 0; i < n; i++) mag += fabs((double)deq[i] * x[i]);
                CHECK_MSG(fabs((double)want - got) <= 1e-5 * mag + 1e-6, "%s decode %s n=%lld: ref %.9g got %.9g (scale %.3g)", k->name,
                          layout_name(t), (long long)n, want, got, mag);
            }
        }
    }
    CHECK_MSG(types > 0 || k->few_scratch_bytes, "%s has a decode layout but nothing reads it", k->name);
    free(x), free(deq), free(qa), free(qd), free(row), free(rp);
}

/* The vector SiLU-gate against the formula in double, over the range activations reach and past
 * where exp(-x) overflows (x < -88: the result must be -0, not NaN). */
static void check_swiglu(const hai_kernels *k) {
    enum { N = 1000 }; /* not a multiple of 16: the tail too */
    static float g[N], u[N], g0[N];
    for (int i = 0; i < N; i++) g0[i] = g[i] = -120.0f + 240.0f * (float)i / N, u[i] = 1.0f + 0.001f * (float)i;
    k->swiglu(N, g, u);
    int bad = 0;
    for (int i = 0; i < N; i++) {
        double want = (double)g0[i] / (1.0 + exp(-(double)g0[i])) * u[i];
        if (!(fabs(want - g[i]) <= 2e-6 * fabs(want) + 1e-30)) bad++;
    }
    CHECK_MSG(bad == 0, "%s swiglu: %d of %d values off", k->name, bad, N);
}

/* The vector GELU-gate (tanh form) against the formula in double, the same range (large negative
 * x: -0 or a denormal, never NaN). */
static void check_geglu(const hai_kernels *k) {
    enum { N = 1000 };
    static float g[N], u[N], g0[N];
    for (int i = 0; i < N; i++) g0[i] = g[i] = -120.0f + 240.0f * (float)i / N, u[i] = 1.0f + 0.001f * (float)i;
    k->geglu(N, g, u);
    int bad = 0;
    for (int i = 0; i < N; i++) {
        /* 0.5 x (1 + tanh z) as x / (1 + exp(-2z)): 1 + tanh z cancels to nothing in double for z < -18 */
        double x = g0[i], want = x / (1.0 + exp(-2.0 * sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x))) * u[i];
        if (!(fabs(want - g[i]) <= 4e-6 * fabs(want) + 1e-30)) bad++;
    }
    CHECK_MSG(bad == 0, "%s geglu: %d of %d values off", k->name, bad, N);
}

/* Soft-capping against cap * tanh(x / cap) in double: within 2e-7 cap (absolute: what a softmax or
 * a sampler sees), +-inf to +-cap, NaN kept, the tail past the last whole vector too. */
static void check_softcap(const hai_kernels *k) {
    enum { N = 1003 };
    static float x[N], x0[N];
    static const float caps[] = {0.7f, 30.0f, 50.0f};
    for (int c = 0; c < 3; c++) {
        float cap = caps[c];
        for (int i = 0; i < N; i++) x0[i] = x[i] = cap * (-12.0f + 24.0f * (float)i / N) * (i % 3 ? 1.0f : 0.01f);
        x0[5] = x[5] = INFINITY, x0[6] = x[6] = -INFINITY, x0[N - 1] = x[N - 1] = NAN, x0[7] = x[7] = 0, x0[N - 2] = x[N - 2] = -1e-30f;
        k->softcap(N, x, cap);
        int bad = 0;
        for (int i = 0; i < N; i++) {
            double want = cap * tanh((double)x0[i] / cap);
            if (isnan(x0[i]) ? !isnan(x[i]) : !(fabs(want - x[i]) <= 2e-7 * cap)) bad++;
        }
        CHECK_MSG(bad == 0, "%s softcap %g: %d of %d values off", k->name, cap, bad, N);
    }
}

/* The sampler's passes against the reference: NaN, +-inf and huge values in every position of
 * the vector and the tail (n not a multiple of any width), the sums to 1e-5 relative, the
 * collected indices exactly. */
static void check_logits(const hai_kernels *k) {
    const hai_kernels *r = hai_kernels_ref();
    if (!k->logits_max || !k->logits_exp || !k->logits_collect) {
        CHECK_MSG(k == r, "%s lacks the logits kernels", k->name);
        return;
    }
    static float x[5003], wk[5003], wr[5003];
    static int32_t ik[5003], ir[5003];
    int64_t sizes[] = {1, 7, 16, 33, 1000, 5003};
    for (int trial = 0; trial < 6; trial++) {
        int64_t n = sizes[trial];
        for (int64_t i = 0; i < n; i++) x[i] = (float)(hai_rng_uniform(&rng) * 30 - 20);
        if (trial >= 2) { /* the odd values, somewhere in the vectors and in the tail */
            x[n / 3] = NAN;
            x[n - 1] = -INFINITY;
            x[n / 2] = trial == 5 ? INFINITY : x[n / 2];
            if (n > 20) x[17] = -3e38f, x[5] = NAN;
        }
        float mk = k->logits_max(n, x), mr = r->logits_max(n, x);
        CHECK_MSG(mk == mr, "%s logits_max n=%lld: %g vs %g", k->name, (long long)n, mk, mr);
        for (int t = 0; t < 2; t++) {
            float s = t ? 1.0f / 0.7f : 1.0f;
            double ak = 0, ar = 0, sk = k->logits_exp(n, x, mr, s, wk, &ak), sr = r->logits_exp(n, x, mr, s, wr, &ar);
            CHECK_MSG(fabs(sk - sr) <= 1e-5 * sr && fabs(ak - ar) <= 1e-5 * fabs(ar) + 1e-6, "%s logits_exp n=%lld s=%g: %.9g vs %.9g, %.9g vs %.9g",
                      k->name, (long long)n, s, sk, sr, ak, ar);
            int bad = 0;
            for (int64_t i = 0; i < n; i++) bad += !(fabsf(wk[i] - wr[i]) <= 2e-6f * wr[i] + 1e-37f) || (wr[i] == 0) != (wk[i] == 0);
            CHECK_MSG(bad == 0, "%s logits_exp n=%lld: %d weights off (NaN and -inf must weigh exactly 0)", k->name, (long long)n, bad);
            CHECK(k->logits_exp(n, x, mr, s, NULL, NULL) == sk); /* the same call, the same sum */
        }
        float ts[] = {mr, mr - 3, -INFINITY, 1e30f};
        for (int t = 0; t < 4; t++)
            for (int64_t cap = 0; cap <= n; cap = cap ? cap * 4 : 1) {
                int64_t ck = k->logits_collect(n, x, ts[t], ik, cap), cr = r->logits_collect(n, x, ts[t], ir, cap);
                CHECK_MSG(ck == cr && !memcmp(ik, ir, (size_t)(ck < cap ? ck : cap) * sizeof *ik), "%s logits_collect n=%lld t=%g cap=%lld: %lld vs %lld",
                          k->name, (long long)n, ts[t], (long long)cap, (long long)ck, (long long)cr);
            }
    }
}

/* usage: test_kernels            the reference, then every table this CPU runs
 *        test_kernels --table NAME  that table only; exit 77 (ctest: skipped) when this CPU or
 *                                   build cannot run it, so a missing unit never passes for it */
int main(int argc, char **argv) {
    hai_rng_seed(&rng, 1234);
    const char *only = argc > 2 && !strcmp(argv[1], "--table") ? argv[2] : NULL;
    bool known = false;
    const hai_kernels *one = only ? hai_kernels_named(only, &known) : NULL;
    if (only && !known) {
        fprintf(stderr, "test_kernels: no kernel table '%s'\n", only);
        return 2;
    }
    if (only && !one) {
        fprintf(stderr, "test_kernels: skipped: this CPU or build cannot run the %s kernels\n", only);
        return 77;
    }
    const hai_kernels *sets[] = {hai_kernels_avx2(), hai_kernels_avx512(), hai_kernels_neon()};
    int tested = 0;
    if (!only || one == hai_kernels_ref()) check_table(hai_kernels_ref()); /* the reference against itself and the true values */
    if (!only) check_repacked_rows();
    for (int i = 0; i < 3; i++)
        if (sets[i] && (!only || sets[i] == one)) {
            check_table(sets[i]);
            tested++;
        }
    fprintf(stderr, "%d fast kernel sets tested; in use: %s\n", tested, hai_kernels_best()->name);
    int gemms = 0;
    const hai_kernels *all[] = {hai_kernels_avx2(), hai_kernels_avx512(), hai_kernels_amx(), hai_kernels_neon(), hai_kernels_neon_dotprod(),
                                hai_kernels_neon_i8mm(), hai_kernels_avx2_vnni()};
    for (int i = 0; only && i < 7; i++)
        if (all[i] != one) all[i] = NULL;
    for (int i = 0; i < 7; i++)
        if (all[i] && all[i]->gemm_prep) check_gemm(all[i]), gemms++;
    fprintf(stderr, "%d matrix kernel sets tested\n", gemms);
    for (int i = 0; i < 7; i++)
        if (all[i] && all[i]->attn_tile) check_attn(all[i]);
    for (int i = 0; i < 7; i++)
        if (all[i] && all[i]->decode_prep) check_decode(all[i]);
    for (int i = 0; i < 7; i++)
        if (all[i] && all[i]->few_scratch_bytes) check_few(all[i]);
    for (int i = 0; i < 7; i++)
        if (all[i] && (all[i]->rows_float[HAI_TYPE_F16] || all[i]->rows_float[HAI_TYPE_BF16])) check_rows_float(all[i]);
    for (int i = 0; i < 7; i++) {
        if (all[i] && all[i]->swiglu) check_swiglu(all[i]);
        if (all[i] && all[i]->geglu) check_geglu(all[i]);
        if (all[i] && all[i]->softcap) check_softcap(all[i]);
    }
    for (int i = 0; i < 7; i++)
        if (all[i]) check_logits(all[i]);
    if (!only || one == hai_kernels_ref()) check_logits(hai_kernels_ref());
#if defined(__x86_64__)
    hai_cpu_x86 f = hai_cpu_x86_features();
    CHECK_MSG(!(f.avx2 && f.fma && f.f16c) || hai_kernels_avx2(), "the CPU has AVX2 but the AVX2 kernels are missing");
    CHECK_MSG(!(f.avx512vl && f.avx512vnni && f.avx512bw) || hai_kernels_avx512(), "the CPU has AVX-512 VNNI but those kernels are missing");
    CHECK_MSG(!(f.avx2 && f.fma && f.f16c && f.avx_vnni) || hai_kernels_avx2_vnni(), "the CPU has AVX-VNNI but those kernels are missing");
#endif
#if defined(__aarch64__)
    CHECK_MSG(!(getauxval(AT_HWCAP) & (1ul << 20)) || hai_kernels_neon_dotprod(), "the CPU has dotprod but those kernels are missing");
    CHECK_MSG(!(getauxval(AT_HWCAP) & (1ul << 20)) || !(getauxval(AT_HWCAP2) & (1ul << 13)) || hai_kernels_neon_i8mm(),
              "the CPU has dotprod and i8mm but the i8mm kernels are missing");
#endif
    return check_done("test_kernels");
}
