/* hai quantize: the block quantizers and the model tool.
 *  - every type on synthetic weights (Gaussian, uniform, heavy-tailed with outliers, scaled by
 *    1e-3 and 1e2): relative RMSE within the type's bound; zeros stay zeros; constants come back;
 *    non-finite input is an error;
 *  - against llama.cpp's own quantizations in ../shared/reference (made from the same F32/F16
 *    weights): on every tensor, hai's error is no larger than theirs, and hai's Q4_K_M mix picks
 *    the same type for every tensor;
 *  - every type and mix on the reference F32 model: the file loads, its types and file type are
 *    right, the report's RMSE matches the file's, the forward pass runs; streaming in small chunks
 *    and on one or two threads writes identical bytes; rows that do not fit a type's blocks fall
 *    back; bad input fails cleanly and leaves no file;
 *  - the Q4_K_M of the reference F32 model passes a logits check (bound derived below).
 * usage: test_quantize SHARED_DIR */
#include <unistd.h>

#include "logits_util.h"
#include "quant/quant.h"

static const char *shared;

/* ---- synthetic weights ------------------------------------------------------------------------ */

static uint64_t rs = 88172645463325252ull;
static double unif(void) {
    rs ^= rs << 13, rs ^= rs >> 7, rs ^= rs << 17;
    return ((double)(rs >> 11) + 0.5) / 9007199254740992.0;
}
static float gauss(void) { return (float)(sqrt(-2 * log(unif())) * cos(6.283185307179586 * unif())); }

enum { GAUSS, UNIFORM, HEAVY, N_DIST };
static const char *const dist_name[N_DIST] = {"gaussian", "uniform", "heavy-tailed"};

static void fill(float *x, int64_t n, int dist, float scale) {
    for (int64_t i = 0; i < n; i++) {
        float v = dist == GAUSS ? gauss() : dist == UNIFORM ? (float)(2 * unif() - 1) : (float)(gauss() * exp(0.8 * gauss()));
        if (dist == HEAVY && unif() < 0.002) v *= 20; /* the outlier channels real models have */
        x[i] = v * scale;
    }
}

/* Relative RMSE bounds on Gaussian weights, ~10% above what hai's quantizers reach (their rate-
 * distortion: each bit less roughly doubles the error; K-quants pay a little for their scales). */
static const struct {
    uint32_t type;
    double gauss_bound;
} types[] = {
    {HAI_TYPE_F16, 0.0004}, {HAI_TYPE_BF16, 0.003}, {HAI_TYPE_Q8_0, 0.0055}, {HAI_TYPE_Q6_K, 0.0186},
    {HAI_TYPE_Q5_1, 0.037}, {HAI_TYPE_Q5_K, 0.038}, {HAI_TYPE_Q5_0, 0.044}, {HAI_TYPE_Q4_1, 0.077},
    {HAI_TYPE_Q4_K, 0.077}, {HAI_TYPE_IQ4_NL, 0.081}, {HAI_TYPE_IQ4_XS, 0.082}, {HAI_TYPE_Q4_0, 0.090},
    {HAI_TYPE_Q3_K, 0.158}, {HAI_TYPE_Q2_K, 0.288},
};
#define N_TYPES (int)(sizeof types / sizeof *types)

static double rel_rmse(uint32_t type, const float *x, int64_t n, double *se_out) {
    size_t bytes = hai_row_bytes(type, n);
    void *q = malloc(bytes);
    float *y = malloc((size_t)n * sizeof *y);
    hai_error err = {0};
    double se = 0, sxx = 0;
    if (CHECK_MSG(hai_quantize(type, x, q, n, &err) == HAI_OK, "%s: %s", hai_type_name(type), err.msg) &&
        CHECK(hai_dequantize(type, q, y, n, &err) == HAI_OK)) {
        for (int64_t i = 0; i < n; i++) se += ((double)x[i] - y[i]) * ((double)x[i] - y[i]), sxx += (double)x[i] * x[i];
    }
    free(q);
    free(y);
    if (se_out) *se_out = se;
    return sxx > 0 ? sqrt(se / sxx) : sqrt(se);
}

static void test_synthetic(void) {
    int64_t n = 64 * 1024;
    float *x = malloc((size_t)n * sizeof *x);
    for (int t = 0; t < N_TYPES; t++) {
        uint32_t ty = types[t].type;
        for (int d = 0; d < N_DIST; d++) {
            for (int s = 0; s < 3; s++) {
                float scale = s == 0 ? 1.0f : s == 1 ? 1e-3f : 1e2f;
                fill(x, n, d, scale);
                double r = rel_rmse(ty, x, n, NULL);
                /* uniform weights are easier than Gaussian ones; heavy tails with outliers set
                 * block scales high and cost about twice the error */
                double bound = types[t].gauss_bound * (d == HEAVY ? 2.2 : 1.0) * (s == 1 && ty == HAI_TYPE_F16 ? 3 : 1);
                CHECK_MSG(r <= bound, "%s on %s x%g: relative rmse %.5f > %.5f", hai_type_name(ty), dist_name[d], scale, r, bound);
                if (d == GAUSS && s == 0) printf("  %-7s relative rmse %.5f (bound %.5f)\n", hai_type_name(ty), r, bound);
            }
        }
        /* zeros stay zeros; a constant comes back (to f16 precision) */
        memset(x, 0, (size_t)n * sizeof *x);
        double se;
        rel_rmse(ty, x, 4096, &se);
        CHECK_MSG(se == 0, "%s: zeros", hai_type_name(ty));
        for (int64_t i = 0; i < 4096; i++) x[i] = 0.37f;
        CHECK_MSG(rel_rmse(ty, x, 4096, NULL) < 4e-3, "%s: a constant", hai_type_name(ty)); /* bf16: 8 bits of mantissa */
        for (int64_t i = 0; i < 4096; i++) x[i] = i % 7 == 0 ? -1.5f : 0.25f; /* two values */
        CHECK_MSG(rel_rmse(ty, x, 4096, NULL) < 1.5 * types[t].gauss_bound, "%s: two values", hai_type_name(ty));
        /* not a number: an error, not garbage */
        if (ty != HAI_TYPE_F16 && ty != HAI_TYPE_BF16) {
            fill(x, 4096, GAUSS, 1);
            x[1000] = NAN;
            void *q = malloc(hai_row_bytes(ty, 4096));
            hai_error err = {0};
            CHECK_MSG(hai_quantize(ty, x, q, 4096, &err) == HAI_ERR_INVALID && strstr(err.msg, "finite"), "%s: NaN", hai_type_name(ty));
            x[1000] = INFINITY;
            CHECK(hai_quantize(ty, x, q, 4096, &err) == HAI_ERR_INVALID);
            free(q);
        }
    }
    hai_error err = {0};
    float one[33] = {0};
    uint8_t buf[64];
    CHECK(hai_quantize(HAI_TYPE_Q4_0, one, buf, 33, &err) == HAI_ERR_INVALID); /* not whole blocks */
    free(x);
}

/* ---- against llama.cpp's quantizations of the same weights -------------------------------------- */

static void test_vs_llamacpp(void) {
    static const char *const models[][2] = {{"llama-s", "F32"}, {"qwen2-s", "F16"}, {"qwen3-s", "F16"}};
    static const char *const kinds[] = {"Q8_0", "Q4_0", "Q6_K", "Q4_K_M"};
    for (int m = 0; m < 3; m++) {
        char sp[4096], rp[4096];
        snprintf(sp, sizeof sp, "%s/reference/%s-%s.gguf", shared, models[m][0], models[m][1]);
        hai_gguf *src = NULL;
        hai_error err = {0};
        if (!CHECK_MSG(hai_gguf_open(sp, &src, &err) == HAI_OK, "%s", err.msg)) continue;
        for (int k = 0; k < 4; k++) {
            snprintf(rp, sizeof rp, "%s/reference/%s-%s.gguf", shared, models[m][0], kinds[k]);
            hai_gguf *ref = NULL;
            if (!CHECK_MSG(hai_gguf_open(rp, &ref, &err) == HAI_OK, "%s", err.msg)) continue;
            double worst = 0, se_ours = 0, se_ref = 0;
            for (int64_t i = 0; i < hai_gguf_n_tensors(ref); i++) {
                const hai_gguf_tensor *r = hai_gguf_tensor_at(ref, i), *s = hai_gguf_find_tensor(src, r->name);
                if (!CHECK_MSG(s != NULL, "%s: %s", rp, r->name) || r->type == s->type) continue;
                int64_t n = r->n_elements;
                float *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * sizeof *y);
                CHECK(hai_dequantize(s->type, s->data, x, n, &err) == HAI_OK && hai_dequantize(r->type, r->data, y, n, &err) == HAI_OK);
                double e_ref = 0, e_ours;
                for (int64_t j = 0; j < n; j++) e_ref += ((double)x[j] - y[j]) * ((double)x[j] - y[j]);
                rel_rmse(r->type, x, n, &e_ours);
                double ratio = sqrt(e_ours / e_ref);
                CHECK_MSG(ratio <= 1.0, "%s %s (%s): hai's rmse is %.4f x llama.cpp's", rp, r->name, hai_type_name(r->type), ratio);
                if (ratio > worst) worst = ratio;
                se_ours += e_ours, se_ref += e_ref;
                free(x);
                free(y);
            }
            printf("  %-8s %-7s hai rmse / llama.cpp rmse: overall %.4f, worst tensor %.4f\n", models[m][0], kinds[k], sqrt(se_ours / se_ref),
                   worst);
            hai_gguf_free(ref);
        }
        /* the mix: hai's Q4_K_M picks the type llama.cpp picked for every tensor */
        char out[64];
        snprintf(out, sizeof out, "test_quantize_mix_%d.gguf", m);
        hai_quantize_params qp = {.type = "Q4_K_M", .n_threads = 2};
        hai_gguf *mine = NULL, *ref = NULL;
        snprintf(rp, sizeof rp, "%s/reference/%s-Q4_K_M.gguf", shared, models[m][0]);
        if (CHECK_MSG(hai_quantize_model(sp, out, &qp, NULL, &err) == HAI_OK, "%s", err.msg) && CHECK(hai_gguf_open(out, &mine, &err) == HAI_OK) &&
            CHECK(hai_gguf_open(rp, &ref, &err) == HAI_OK)) {
            CHECK_EQ_INT(hai_gguf_n_tensors(mine), hai_gguf_n_tensors(ref));
            for (int64_t i = 0; i < hai_gguf_n_tensors(ref); i++) {
                const hai_gguf_tensor *r = hai_gguf_tensor_at(ref, i), *t = hai_gguf_find_tensor(mine, r->name);
                CHECK_MSG(t && t->type == r->type, "%s %s: hai %s, llama.cpp %s", models[m][0], r->name, t ? hai_type_name(t->type) : "-",
                          hai_type_name(r->type));
            }
        }
        hai_gguf_free(mine);
        hai_gguf_free(ref);
        unlink(out);
        hai_gguf_free(src);
    }
}

/* ---- the model tool ------------------------------------------------------------------------------ */

static const char *const all_kinds[] = {"F32",    "F16",    "BF16",   "Q8_0",   "Q4_0",   "Q4_1",   "Q5_0",   "Q5_1",
                                        "IQ4_NL", "IQ4_XS", "Q2_K",   "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_K_S", "Q4_K_M",
                                        "Q5_K_S", "Q5_K_M", "Q6_K",   "Q3_K",   "Q4_K",   "Q5_K"};

static double bound_of(uint32_t base) {
    if (base == HAI_TYPE_F32) return 0;
    for (int t = 0; t < N_TYPES; t++)
        if (types[t].type == base) return types[t].gauss_bound;
    return 1;
}

static bool same_file(const char *a, const char *b) {
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    bool same = fa && fb;
    for (int ca = 0, cb = 0; same && ca != EOF;) {
        ca = fgetc(fa), cb = fgetc(fb);
        same = ca == cb;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return same;
}

static void test_model_tool(void) {
    char src[4096];
    snprintf(src, sizeof src, "%s/reference/llama-s-F32.gguf", shared);
    hai_gguf *g0 = NULL;
    hai_error err = {0};
    if (!CHECK_MSG(hai_gguf_open(src, &g0, &err) == HAI_OK, "%s", err.msg)) return;
    hai_token toks[8] = {1, 450, 1996, 1735, 1701, 432, 1720, 975};
    for (size_t k = 0; k < sizeof all_kinds / sizeof *all_kinds; k++) {
        const char *out = "test_quantize_out.gguf";
        uint32_t ftype, base;
        CHECK(hai_quantize_type_info(all_kinds[k], &ftype, &base));
        hai_quantize_params qp = {.type = all_kinds[k], .n_threads = 2};
        hai_quantize_report rep;
        if (!CHECK_MSG(hai_quantize_model(src, out, &qp, &rep, &err) == HAI_OK, "%s: %s", all_kinds[k], err.msg)) continue;
        hai_gguf *g = NULL;
        if (CHECK_MSG(hai_gguf_open(out, &g, &err) == HAI_OK, "%s: %s", all_kinds[k], err.msg)) {
            uint32_t ft = 0;
            CHECK(hai_gguf_get_u32(g, "general.file_type", &ft, &err) == HAI_OK && ft == ftype);
            CHECK(hai_gguf_n_kv(g) >= hai_gguf_n_kv(g0)); /* the metadata came along */
            /* the file agrees with the report; recompute the error from the file itself */
            double se = 0;
            int64_t nq = 0;
            for (int64_t i = 0; i < hai_gguf_n_tensors(g); i++) {
                const hai_gguf_tensor *t = hai_gguf_tensor_at(g, i), *s = hai_gguf_find_tensor(g0, t->name);
                CHECK(s && t->type == rep.tensors[i].to && !strcmp(t->name, rep.tensors[i].name));
                if (t->n_dims == 1) CHECK_MSG(t->type == HAI_TYPE_F32, "%s: 1-D %s", all_kinds[k], t->name);
                float *x = malloc((size_t)t->n_elements * sizeof *x), *y = malloc((size_t)t->n_elements * sizeof *y);
                hai_dequantize(s->type, s->data, x, t->n_elements, &err);
                hai_dequantize(t->type, t->data, y, t->n_elements, &err);
                double e = 0;
                for (int64_t j = 0; j < t->n_elements; j++) e += ((double)x[j] - y[j]) * ((double)x[j] - y[j]);
                CHECK_NEAR(sqrt(e / (double)t->n_elements), rep.tensors[i].rmse, 1e-9 + 1e-6 * rep.tensors[i].rmse);
                if (t->type != HAI_TYPE_F32) se += e, nq += t->n_elements;
                free(x);
                free(y);
            }
            CHECK_NEAR(sqrt(se / (double)(nq ? nq : 1)), rep.rmse, 1e-9 + 1e-6 * rep.rmse);
            CHECK_MSG(rep.rel_rmse <= bound_of(base) * 1.05, "%s: overall relative rmse %.4f (bound %.4f)", all_kinds[k], rep.rel_rmse,
                      bound_of(base));
            printf("  %-7s %8.1f KiB  relative rmse %.4f\n", all_kinds[k], (double)rep.bytes_out / 1024, rep.rel_rmse);
            hai_gguf_free(g);
        }
        /* the engine runs it */
        hai_model *m = NULL;
        if (CHECK_MSG(hai_model_load(out, NULL, &m, &err) == HAI_OK, "%s: %s", all_kinds[k], err.msg)) {
            float *lg = run(m, toks, 8, 8);
            bool finite = lg != NULL;
            for (int i = 0; lg && i < 8 * hai_model_n_vocab(m); i++) finite = finite && isfinite(lg[i]);
            CHECK_MSG(finite, "%s: logits", all_kinds[k]);
            free(lg);
            hai_model_free(m);
        }
        hai_quantize_report_free(&rep);
        unlink(out);
    }
    hai_gguf_free(g0);

    /* streaming in small chunks and on one thread: the same bytes */
    hai_quantize_params a = {.type = "Q4_K_M", .n_threads = 2}, b = {.type = "Q4_K_M", .n_threads = 1, .chunk_bytes = 1000};
    if (CHECK(hai_quantize_model(src, "test_quantize_a.gguf", &a, NULL, &err) == HAI_OK) &&
        CHECK(hai_quantize_model(src, "test_quantize_b.gguf", &b, NULL, &err) == HAI_OK))
        CHECK_MSG(same_file("test_quantize_a.gguf", "test_quantize_b.gguf"), "chunked / one-thread output differs");
    unlink("test_quantize_a.gguf");
    unlink("test_quantize_b.gguf");

    /* --pure: every matrix in the base type */
    hai_quantize_params pure = {.type = "Q4_K_M", .pure = true};
    hai_gguf *g = NULL;
    if (CHECK(hai_quantize_model(src, "test_quantize_pure.gguf", &pure, NULL, &err) == HAI_OK) &&
        CHECK(hai_gguf_open("test_quantize_pure.gguf", &g, &err) == HAI_OK)) {
        for (int64_t i = 0; i < hai_gguf_n_tensors(g); i++) {
            const hai_gguf_tensor *t = hai_gguf_tensor_at(g, i);
            CHECK_MSG(t->type == (t->n_dims == 1 ? HAI_TYPE_F32 : HAI_TYPE_Q4_K), "pure: %s is %s", t->name, hai_type_name(t->type));
        }
        hai_gguf_free(g);
    }
    unlink("test_quantize_pure.gguf");
}

/* Rows that do not divide into 256 (K-quants) or 32 (all blocks) take fallback types. */
static void test_fallback(void) {
    hai_synth_params sp = hai_synth_default_params();
    sp.n_embd = 160, sp.n_ff = 336, sp.n_head = 5, sp.n_head_kv = 5, sp.n_layer = 2, sp.type = HAI_TYPE_F32; /* 160 = 5*32 */
    hai_error err = {0};
    if (!CHECK_MSG(hai_synth_write("test_quantize_odd.gguf", &sp, &err) == HAI_OK, "%s", err.msg)) return;
    static const struct {
        const char *kind;
        uint32_t want; /* for a [160, x] matrix */
    } cases[] = {{"Q4_K_M", HAI_TYPE_Q5_0}, {"Q5_K_S", HAI_TYPE_Q5_1}, {"Q6_K", HAI_TYPE_Q8_0}, {"Q2_K", HAI_TYPE_IQ4_NL},
                 {"Q3_K_S", HAI_TYPE_IQ4_NL}, {"IQ4_XS", HAI_TYPE_IQ4_NL}, {"Q4_0", HAI_TYPE_Q4_0}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        hai_quantize_params qp = {.type = cases[c].kind};
        hai_quantize_report rep;
        hai_gguf *g = NULL;
        if (!CHECK_MSG(hai_quantize_model("test_quantize_odd.gguf", "test_quantize_odd_q.gguf", &qp, &rep, &err) == HAI_OK, "%s: %s",
                       cases[c].kind, err.msg))
            continue;
        if (CHECK(hai_gguf_open("test_quantize_odd_q.gguf", &g, &err) == HAI_OK)) {
            const hai_gguf_tensor *t = hai_gguf_find_tensor(g, "blk.0.attn_q.weight");
            CHECK_MSG(t && t->type == cases[c].want, "%s: attn_q is %s, want %s", cases[c].kind, t ? hai_type_name(t->type) : "-",
                      hai_type_name(cases[c].want));
            uint32_t base;
            hai_quantize_type_info(cases[c].kind, NULL, &base);
            for (size_t i = 0; i < rep.n_tensors; i++)
                if (!strcmp(rep.tensors[i].name, "blk.0.attn_q.weight"))
                    CHECK_MSG(rep.tensors[i].fallback == (cases[c].want != base), "%s: fallback flag", cases[c].kind);
            hai_gguf_free(g);
        }
        hai_model *m = NULL;
        if (CHECK_MSG(hai_model_load("test_quantize_odd_q.gguf", NULL, &m, &err) == HAI_OK, "%s", err.msg)) hai_model_free(m);
        hai_quantize_report_free(&rep);
    }
    /* not even 32: F16 */
    sp.n_embd = 48, sp.n_ff = 96, sp.n_head = 3, sp.n_head_kv = 3;
    hai_gguf *g = NULL;
    hai_quantize_params qp = {.type = "Q4_K_M"};
    if (CHECK(hai_synth_write("test_quantize_odd.gguf", &sp, &err) == HAI_OK) &&
        CHECK_MSG(hai_quantize_model("test_quantize_odd.gguf", "test_quantize_odd_q.gguf", &qp, NULL, &err) == HAI_OK, "%s", err.msg) &&
        CHECK(hai_gguf_open("test_quantize_odd_q.gguf", &g, &err) == HAI_OK)) {
        const hai_gguf_tensor *t = hai_gguf_find_tensor(g, "blk.0.ffn_up.weight");
        CHECK_MSG(t && t->type == HAI_TYPE_F16, "48-wide rows: %s", t ? hai_type_name(t->type) : "-");
        hai_gguf_free(g);
    }
    unlink("test_quantize_odd.gguf");
    unlink("test_quantize_odd_q.gguf");
}

/* Bad input: a clear error, and nothing left at the output path. */
static void test_bad_input(void) {
    char src[4096];
    snprintf(src, sizeof src, "%s/reference/llama-s-F32.gguf", shared);
    hai_error err = {0};
    hai_quantize_params qp = {.type = "Q4_K_M"};
    unlink("test_quantize_bad_out.gguf");
    CHECK(hai_quantize_model("no-such-file.gguf", "test_quantize_bad_out.gguf", &qp, NULL, &err) != HAI_OK);
    CHECK(access("test_quantize_bad_out.gguf", F_OK) != 0);
    FILE *f = fopen("test_quantize_trunc.gguf", "wb"), *in = fopen(src, "rb");
    char buf[4096];
    size_t n = in ? fread(buf, 1, sizeof buf, in) : 0;
    if (f) fwrite(buf, 1, n, f), fclose(f);
    if (in) fclose(in);
    CHECK(hai_quantize_model("test_quantize_trunc.gguf", "test_quantize_bad_out.gguf", &qp, NULL, &err) == HAI_ERR_FORMAT);
    CHECK(access("test_quantize_bad_out.gguf", F_OK) != 0);
    unlink("test_quantize_trunc.gguf");
    hai_quantize_params bad = {.type = "Q7_X"};
    CHECK(hai_quantize_model(src, "test_quantize_bad_out.gguf", &bad, NULL, &err) == HAI_ERR_INVALID && strstr(err.msg, "Q7_X"));
    CHECK(hai_quantize_model(src, "/nonexistent-dir/out.gguf", &qp, NULL, &err) == HAI_ERR_IO);
    CHECK(access("test_quantize_bad_out.gguf", F_OK) != 0);
}

/* The Q4_K_M of the reference F32 model through the engine. The bound: hai's weights are closer
 * to the F32 ones than llama.cpp's on every tensor (test_vs_llamacpp), so quantization should
 * move the logits about as much as llama.cpp's Q4_K_M does - KL(exact F32 || exact of
 * llama.cpp's Q4_K_M), from the two exact files. Which weights move differs, and KL over 64
 * positions of a random model is noisy, so 15% is allowed on top, plus the engine's own
 * allowance for Q4_K_M (summary.json max_kl). */
static void test_q4km_logits(void) {
    static const char *const models[][2] = {{"llama-s", "F32"}, {"qwen2-s", "F16"}};
    static const double engine_allowance[2] = {0.003519625, 0.001078625}; /* summary.json max_kl of the Q4_K_M files */
    hai_token toks[64];
    int nt = read_tokens(shared, toks, 64);
    if (!CHECK_MSG(nt == 64, "tokens.txt: %d tokens", nt)) return;
    for (int k = 0; k < 2; k++) {
        char src[4096], e_src[4096], e_ref[4096];
        snprintf(src, sizeof src, "%s/reference/%s-%s.gguf", shared, models[k][0], models[k][1]);
        snprintf(e_src, sizeof e_src, "%s/reference/%s-%s.exact.f32", shared, models[k][0], models[k][1]);
        snprintf(e_ref, sizeof e_ref, "%s/reference/%s-Q4_K_M.exact.f32", shared, models[k][0]);
        hai_error err = {0};
        hai_quantize_params qp = {.type = "Q4_K_M", .n_threads = 2};
        hai_model *m = NULL;
        if (!CHECK_MSG(hai_quantize_model(src, "test_quantize_q4km.gguf", &qp, NULL, &err) == HAI_OK, "%s", err.msg) ||
            !CHECK_MSG(hai_model_load("test_quantize_q4km.gguf", NULL, &m, &err) == HAI_OK, "%s", err.msg))
            continue;
        int nv = hai_model_n_vocab(m);
        size_t cnt = (size_t)64 * nv;
        float *exact = malloc(cnt * sizeof *exact), *theirs = malloc(cnt * sizeof *theirs);
        FILE *fa = fopen(e_src, "rb"), *fb = fopen(e_ref, "rb");
        bool ok = CHECK_MSG(fa && fb && fread(exact, sizeof *exact, cnt, fa) == cnt && fread(theirs, sizeof *theirs, cnt, fb) == cnt,
                            "cannot read %s / %s", e_src, e_ref);
        if (fa) fclose(fa);
        if (fb) fclose(fb);
        float *ours = ok ? run(m, toks, 64, 64) : NULL;
        if (ours) {
            score s_ref = compare(exact, theirs, 64, nv), s_ours = compare(exact, ours, 64, nv);
            double bound = 1.15 * s_ref.kl + engine_allowance[k];
            CHECK_MSG(s_ours.kl <= bound, "%s: KL %.4f > bound %.4f", models[k][0], s_ours.kl, bound);
            printf("  %s Q4_K_M: KL(exact %s || hai on hai's Q4_K_M) %.4f; llama.cpp's Q4_K_M (exact) %.4f; bound %.4f\n", models[k][0],
                   models[k][1], s_ours.kl, s_ref.kl, bound);
        }
        free(ours);
        free(exact);
        free(theirs);
        hai_model_free(m);
        unlink("test_quantize_q4km.gguf");
    }
}

int main(int argc, char **argv) {
    shared = check_shared_dir(argc, argv);
    puts("synthetic weights:");
    test_synthetic();
    puts("against llama.cpp's quantizations:");
    test_vs_llamacpp();
    puts("every type on llama-s-F32:");
    test_model_tool();
    test_fallback();
    test_bad_input();
    puts("logits:");
    test_q4km_logits();
    return check_done("test_quantize");
}
