/* The sampler against its definition: for each setting, many seeded draws must follow the
 * distribution the reference order of operations gives, computed here in double (penalties on
 * the tokens of the window, sort, top-k, softmax, top-p, min-p, temperature): a chi-square test
 * at p = 0.001 over the tokens with an expected count of 5 or more (the rest pooled), and no draw
 * of a token the cuts remove. Greedy is exactly the first maximum. Logits include NaN (never
 * drawn), +-inf and ties; vocabularies of 5000 (several of the no-cut draw's chunks) and 152K
 * (Qwen's). */
#include <float.h>

#include "check.h"
#include "base/rng.h"

static inline double sane(float l) { return l != l ? -INFINITY : l > FLT_MAX ? FLT_MAX : l; }

typedef struct ent {
    double l;
    int32_t id;
} ent;

static int by_logit(const void *a, const void *b) {
    const ent *x = a, *y = b;
    if (x->l != y->l) return x->l > y->l ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* The definition: p[i] for every token. */
static void reference(const float *logits, int32_t n, const hai_sampler_params *sp, const hai_token *hist, int nh, double *p) {
    ent *e = malloc((size_t)n * sizeof *e);
    for (int32_t i = 0; i < n; i++) e[i] = (ent){sane(logits[i]), i};
    for (size_t i = 0; i < sp->n_logit_bias; i++) e[sp->logit_bias[i].token].l = sane((float)(e[sp->logit_bias[i].token].l + sp->logit_bias[i].bias));
    bool pen = sp->repeat_penalty != 1.0f || sp->presence_penalty != 0 || sp->frequency_penalty != 0;
    for (int h = 0; pen && h < nh; h++) {
        hai_token t = hist[h];
        bool seen = false;
        for (int g = 0; g < h; g++) seen |= hist[g] == t;
        if (seen) continue;
        int c = 0;
        for (int g = 0; g < nh; g++) c += hist[g] == t;
        float l = (float)e[t].l;
        if (sp->repeat_penalty != 1.0f) l = l > 0 ? l / sp->repeat_penalty : l * sp->repeat_penalty;
        l -= (float)c * sp->frequency_penalty + sp->presence_penalty;
        e[t].l = sane(l);
    }
    qsort(e, (size_t)n, sizeof *e, by_logit);
    int32_t k = sp->top_k > 0 && sp->top_k < n ? sp->top_k : n;
    double mx = e[0].l, z = 0;
    for (int32_t i = 0; i < k; i++) z += exp(e[i].l - mx);
    if (sp->top_p < 1) {
        double cum = 0;
        for (int32_t i = 0; i < k; i++) {
            cum += exp(e[i].l - mx) / z;
            if (cum >= sp->top_p) {
                k = i + 1;
                break;
            }
        }
    }
    if (sp->min_p > 0) {
        int32_t keep = 1;
        while (keep < k && e[keep].l >= mx + log(sp->min_p)) keep++;
        k = keep;
    }
    for (int32_t i = 0; i < n; i++) p[i] = 0;
    double t = 0;
    for (int32_t i = 0; i < k; i++) t += exp((e[i].l - mx) / sp->temperature);
    for (int32_t i = 0; i < k; i++) p[e[i].id] = exp((e[i].l - mx) / sp->temperature) / t;
    free(e);
}

/* The chi-square value past which a fit with d degrees of freedom is rejected at p = 0.001
 * (Wilson-Hilferty). */
static double chi2_crit(int d) {
    double a = 2.0 / (9.0 * d), z = 3.0902;
    return d * pow(1 - a + z * sqrt(a), 3);
}

static void fit(const char *what, const float *logits, int32_t n, hai_sampler_params sp, const hai_token *hist, int nh, int draws) {
    double *p = malloc((size_t)n * sizeof *p);
    long *seen = calloc((size_t)n, sizeof *seen);
    reference(logits, n, &sp, hist, nh, p);
    hai_sampler *s = NULL;
    hai_error err = {0};
    if (!CHECK_MSG(hai_sampler_create(&sp, n, &s, &err) == HAI_OK, "%s: %s", what, err.msg)) return;
    long impossible = 0;
    for (int h = 0; h < nh; h++) hai_sampler_accept(s, hist[h]); /* the window, the same for every draw */
    for (int d = 0; d < draws; d++) {
        hai_token t = hai_sampler_sample(s, logits);
        if (t < 0 || t >= n) {
            impossible++;
            continue;
        }
        seen[t]++;
        impossible += p[t] == 0;
    }
    double chi = 0, pool_e = 0, pool_o = 0;
    int cats = 0;
    for (int32_t i = 0; i < n; i++) {
        double e = p[i] * draws;
        if (e >= 5) {
            chi += (seen[i] - e) * (seen[i] - e) / e;
            cats++;
        } else if (p[i] > 0) {
            pool_e += e;
            pool_o += seen[i];
        }
    }
    if (pool_e >= 5) chi += (pool_o - pool_e) * (pool_o - pool_e) / pool_e, cats++;
    int dof = cats > 1 ? cats - 1 : 1;
    CHECK_MSG(impossible == 0, "%s: %ld draws of tokens the cuts remove (or out of range)", what, impossible);
    CHECK_MSG(cats >= 2 || draws == seen[0] + impossible, "%s: a test with one category", what);
    CHECK_MSG(chi <= chi2_crit(dof), "%s: chi-square %.1f over %d categories (critical %.1f)", what, chi, cats, chi2_crit(dof));
    fprintf(stderr, "  %-34s chi-square %7.1f / %7.1f (%d categories)\n", what, chi, chi2_crit(dof), cats);
    hai_sampler_free(s);
    free(p);
    free(seen);
}

int main(void) {
    hai_rng r;
    hai_rng_seed(&r, 7);
    /* 5000 tokens: a few likely ones spread over the chunks, a long tail, ties, NaN and infinities */
    enum { N = 5000 };
    static float lg[N];
    for (int i = 0; i < N; i++) lg[i] = (float)(hai_rng_uniform(&r) * 6 - 8);
    lg[17] = 3.0f, lg[1500] = 2.5f, lg[2999] = 2.5f, lg[4990] = 1.0f, lg[1024] = 0.2f, lg[1023] = 0.2f;
    lg[33] = NAN, lg[3000] = NAN, lg[4000] = -INFINITY, lg[4999] = NAN;
    hai_token hist[] = {17, 1500, 17, 77, 2999, 17};
    static const hai_logit_bias bias[] = {{17, -100}, {4990, 2.5f}, {33, 50}, {1023, -1.5f}}; /* 33's logit is NaN: it stays out */
    const struct {
        const char *what;
        hai_sampler_params sp;
        bool with_hist;
    } cases[] = {
        {"OpenAI defaults (T 1, top_p 1)", {.temperature = 1, .top_p = 1, .repeat_penalty = 1}, false},
        {"T 0.7", {.temperature = 0.7f, .top_p = 1, .repeat_penalty = 1}, false},
        {"T 1.6", {.temperature = 1.6f, .top_p = 1, .repeat_penalty = 1}, false},
        {"top_p 0.8, T 1.2", {.temperature = 1.2f, .top_p = 0.8f, .repeat_penalty = 1}, false},
        {"top_p 0.999", {.temperature = 1, .top_p = 0.999f, .repeat_penalty = 1}, false},
        {"min_p 0.02", {.temperature = 1, .top_p = 1, .min_p = 0.02f, .repeat_penalty = 1}, false},
        {"top_p 0.9 + min_p 0.1", {.temperature = 0.9f, .top_p = 0.9f, .min_p = 0.1f, .repeat_penalty = 1}, false},
        {"hai defaults (top_k 40 ...)", hai_sampler_default_params(), false},
        {"top_k 3", {.temperature = 1, .top_p = 1, .top_k = 3, .repeat_penalty = 1}, false},
        {"penalties", {.temperature = 1, .top_p = 1, .repeat_penalty = 1.3f, .presence_penalty = 0.5f, .frequency_penalty = 0.2f,
                       .repeat_last_n = 64}, true},
        {"penalties + top_p 0.9", {.temperature = 1, .top_p = 0.9f, .repeat_penalty = 1.1f, .presence_penalty = -0.5f, .repeat_last_n = 64},
         true},
        {"logit_bias", {.temperature = 1, .top_p = 1, .repeat_penalty = 1, .logit_bias = bias, .n_logit_bias = 4}, false},
        {"logit_bias + penalties + top_k", {.temperature = 0.9f, .top_p = 0.95f, .top_k = 50, .repeat_penalty = 1.2f, .frequency_penalty = 0.3f,
                                            .repeat_last_n = 64, .logit_bias = bias, .n_logit_bias = 4}, true},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        hai_sampler_params sp = cases[c].sp;
        sp.seed = 1000 + c;
        fit(cases[c].what, lg, N, sp, cases[c].with_hist ? hist : NULL, cases[c].with_hist ? 6 : 0, 40000);
    }

    /* greedy: the first maximum, NaN never; ties go to the lower id */
    hai_sampler_params g = {.temperature = 0, .top_p = 1, .repeat_penalty = 1};
    hai_sampler *s = NULL;
    hai_error err = {0};
    CHECK_EQ_INT(hai_sampler_create(&g, N, &s, &err), HAI_OK);
    CHECK_EQ_INT(hai_sampler_sample(s, lg), 17);
    lg[4998] = 3.0f;
    CHECK_EQ_INT(hai_sampler_sample(s, lg), 17); /* a tie: the lower id */
    lg[12] = INFINITY;
    CHECK_EQ_INT(hai_sampler_sample(s, lg), 12);
    hai_sampler_free(s);
    lg[12] = 3.0f;
    g.logit_bias = (hai_logit_bias[]){{12, -100}, {17, -100}, {4998, -100}, {1500, 0.1f}};
    g.n_logit_bias = 4;
    CHECK_EQ_INT(hai_sampler_create(&g, N, &s, &err), HAI_OK);
    CHECK_EQ_INT(hai_sampler_sample(s, lg), 1500); /* greedy sees the bias */
    hai_sampler_free(s);
    g.logit_bias = (hai_logit_bias[]){{N, 1}};
    g.n_logit_bias = 1;
    CHECK_EQ_INT(hai_sampler_create(&g, N, &s, &err), HAI_ERR_INVALID); /* a token outside the vocabulary */
    static float all_nan[N];
    for (int i = 0; i < N; i++) all_nan[i] = NAN;
    hai_sampler_params d = hai_sampler_default_params();
    CHECK_EQ_INT(hai_sampler_create(&d, N, &s, &err), HAI_OK);
    CHECK_EQ_INT(hai_sampler_sample(s, all_nan), 0); /* nothing possible: id 0, no crash */
    hai_sampler_free(s);

    /* logprobs: log softmax in double, the top entries sorted, ties to the lower id, NaN never */
    {
        double mxd = -INFINITY, z = 0;
        for (int i = 0; i < N; i++) if (sane(lg[i]) > mxd) mxd = sane(lg[i]);
        for (int i = 0; i < N; i++) z += exp(sane(lg[i]) - mxd);
        hai_token top[20];
        float tl[20], lp;
        int k = hai_logits_logprobs(lg, N, 1500, &lp, 20, top, tl);
        CHECK_EQ_INT(k, 20);
        CHECK_NEAR(lp, lg[1500] - mxd - log(z), 1e-4);
        bool sorted = true;
        for (int i = 0; i < k; i++) {
            CHECK_NEAR(tl[i], sane(lg[top[i]]) - mxd - log(z), 1e-4);
            if (i) sorted &= lg[top[i - 1]] > lg[top[i]] || (lg[top[i - 1]] == lg[top[i]] && top[i - 1] < top[i]);
            CHECK(lg[top[i]] == lg[top[i]]); /* never a NaN token */
        }
        CHECK(sorted);
        int above = 0; /* exactly the 20 largest */
        for (int i = 0; i < N; i++) above += sane(lg[i]) > sane(lg[top[k - 1]]);
        CHECK(above <= 19);
        CHECK(hai_logits_logprobs(lg, N, 33, &lp, 0, NULL, NULL) == 0 && lp == -INFINITY); /* a NaN token: no chance */
    }

    /* Qwen's vocabulary: logits as a model gives them (a peak, a slope, noise) */
    enum { Q = 151936 };
    float *q = malloc(Q * sizeof *q);
    for (int i = 0; i < Q; i++) q[i] = (float)(hai_rng_uniform(&r) * 4 - 10 + 2 * sin(i * 0.001));
    for (int i = 0; i < 40; i++) q[(i * 7919) % Q] = (float)(4 - i * 0.15);
    hai_sampler_params qs[] = {{.temperature = 1, .top_p = 1, .repeat_penalty = 1, .seed = 5},
                               {.temperature = 0.8f, .top_p = 0.95f, .repeat_penalty = 1, .seed = 6},
                               {.temperature = 1, .top_p = 1, .min_p = 0.05f, .repeat_penalty = 1, .seed = 7}};
    const char *qn[] = {"152K: OpenAI defaults", "152K: top_p 0.95, T 0.8", "152K: min_p 0.05"};
    for (int c = 0; c < 3; c++) fit(qn[c], q, Q, qs[c], NULL, 0, 6000);
    free(q);
    return check_done("test_sampler");
}
