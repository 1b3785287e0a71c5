/* Sampling: penalties over a window of recent tokens, then top-k, top-p, min-p, temperature and
 * a draw from a seeded generator (the order llama.cpp uses, so settings mean the same). */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "rng.h"

typedef struct cand {
    float logit;
    hai_token id;
} cand;

struct hai_sampler {
    hai_sampler_params p;
    int32_t n_vocab;
    hai_rng rng;
    cand *c;         /* [n_vocab] working candidates */
    hai_token *hist; /* ring of the last repeat_last_n tokens */
    int32_t n_hist, hist_pos;
    int32_t *count;  /* [n_vocab] occurrences within the window */
};

hai_sampler_params hai_sampler_default_params(void) {
    return (hai_sampler_params){.temperature = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f,
                                .repeat_penalty = 1.0f, .repeat_last_n = 64, .seed = 0};
}

hai_status hai_sampler_create(const hai_sampler_params *p, int32_t n_vocab, hai_sampler **out, hai_error *err) {
    if (!p || !out || n_vocab <= 0) return hai_fail(err, HAI_ERR_INVALID, "sampler: bad arguments");
    *out = NULL;
    if (!(p->temperature >= 0) || !(p->top_p > 0 && p->top_p <= 1) || !(p->min_p >= 0 && p->min_p <= 1) ||
        !(p->repeat_penalty > 0) || p->top_k < 0 || p->repeat_last_n < 0 || !isfinite(p->presence_penalty) ||
        !isfinite(p->frequency_penalty) || p->temperature > 1000)
        return hai_fail(err, HAI_ERR_INVALID, "sampler: settings out of range (temperature %g, top_p %g, min_p %g, top_k %d, repeat_penalty %g)",
                        p->temperature, p->top_p, p->min_p, p->top_k, p->repeat_penalty);
    hai_sampler *s = calloc(1, sizeof *s);
    if (!s) return hai_fail(err, HAI_ERR_NOMEM, "sampler: out of memory");
    s->p = *p;
    s->n_vocab = n_vocab;
    s->c = malloc((size_t)n_vocab * sizeof *s->c);
    s->count = calloc((size_t)n_vocab, sizeof *s->count);
    s->hist = malloc(((size_t)p->repeat_last_n + 1) * sizeof *s->hist);
    if (!s->c || !s->count || !s->hist) {
        hai_sampler_free(s);
        return hai_fail(err, HAI_ERR_NOMEM, "sampler: out of memory");
    }
    hai_sampler_reset(s);
    *out = s;
    return HAI_OK;
}

void hai_sampler_free(hai_sampler *s) {
    if (!s) return;
    free(s->c);
    free(s->count);
    free(s->hist);
    free(s);
}

void hai_sampler_reset(hai_sampler *s) {
    hai_rng_seed(&s->rng, s->p.seed);
    memset(s->count, 0, (size_t)s->n_vocab * sizeof *s->count);
    s->n_hist = s->hist_pos = 0;
}

void hai_sampler_accept(hai_sampler *s, hai_token t) {
    if (!s || t < 0 || t >= s->n_vocab || s->p.repeat_last_n == 0) return;
    if (s->n_hist == s->p.repeat_last_n) {
        s->count[s->hist[s->hist_pos]]--; /* the oldest leaves the window */
    } else {
        s->n_hist++;
    }
    s->hist[s->hist_pos] = t;
    s->hist_pos = (s->hist_pos + 1) % s->p.repeat_last_n;
    s->count[t]++;
}

static int cmp_desc(const void *a, const void *b) {
    float x = ((const cand *)a)->logit, y = ((const cand *)b)->logit;
    if (x != y) return x > y ? -1 : 1;
    hai_token i = ((const cand *)a)->id, j = ((const cand *)b)->id;
    return i < j ? -1 : i > j; /* ties by id: deterministic */
}

/* Moves the k largest candidates to the front (unordered), in expected linear time. */
static void select_top(cand *c, int32_t n, int32_t k) {
    int32_t lo = 0, hi = n - 1;
    while (lo < hi) {
        cand pivot = c[(lo + hi) / 2];
        int32_t i = lo, j = hi;
        while (i <= j) {
            while (cmp_desc(&c[i], &pivot) < 0) i++;
            while (cmp_desc(&c[j], &pivot) > 0) j--;
            if (i <= j) {
                cand t = c[i];
                c[i] = c[j];
                c[j] = t;
                i++, j--;
            }
        }
        if (k - 1 <= j) hi = j;
        else if (k - 1 >= i) lo = i;
        else break;
    }
}

/* Logits as the sampler may order them: NaN (a hostile or broken model) is never chosen, +inf is
 * the largest finite value, so every comparison below is a total order and every softmax sum is
 * finite (NaN made the partition of select_top run off the array). */
static inline float sane(float l) { return l != l ? -INFINITY : l > FLT_MAX ? FLT_MAX : l; }

hai_token hai_sampler_sample(hai_sampler *s, const float *logits) {
    const hai_sampler_params *p = &s->p;
    int32_t n = s->n_vocab;
    cand *c = s->c;
    for (int32_t i = 0; i < n; i++) c[i] = (cand){sane(logits[i]), i};
    /* penalties on the tokens in the window */
    bool pen = p->repeat_penalty != 1.0f || p->presence_penalty != 0 || p->frequency_penalty != 0;
    for (int32_t h = 0; pen && h < s->n_hist; h++) {
        hai_token t = s->hist[h];
        if (s->count[t] <= 0 || c[t].id != t) continue; /* each token once */
        float l = c[t].logit;
        if (p->repeat_penalty != 1.0f) l = l > 0 ? l / p->repeat_penalty : l * p->repeat_penalty;
        l -= (float)s->count[t] * p->frequency_penalty + p->presence_penalty;
        c[t].logit = sane(l);
        c[t].id = -1 - t; /* mark as done (restored below) */
    }
    for (int32_t h = 0; pen && h < s->n_hist; h++) {
        hai_token t = s->hist[h];
        if (c[t].id < 0) c[t].id = t;
    }
    if (p->temperature <= 0) { /* greedy */
        int32_t best = 0;
        for (int32_t i = 1; i < n; i++)
            if (c[i].logit > c[best].logit) best = i;
        return c[best].id;
    }
    int32_t k = p->top_k > 0 && p->top_k < n ? p->top_k : n;
    if (k < n) select_top(c, n, k);
    qsort(c, (size_t)k, sizeof *c, cmp_desc);
    if (c[0].logit == -INFINITY) return c[0].id; /* nothing is possible: the lowest id, deterministically */
    /* softmax over the k, then top-p and min-p cuts */
    double sum = 0, mx = c[0].logit;
    for (int32_t i = 0; i < k; i++) sum += exp((double)c[i].logit - mx);
    if (p->top_p < 1.0f) {
        double cum = 0;
        for (int32_t i = 0; i < k; i++) {
            cum += exp((double)c[i].logit - mx) / sum;
            if (cum >= p->top_p) {
                k = i + 1;
                break;
            }
        }
    }
    if (p->min_p > 0) {
        double floor_l = mx + log((double)p->min_p); /* p_i >= min_p * p_max  <=>  l_i >= l_max + log(min_p) */
        int32_t keep = 1;
        while (keep < k && c[keep].logit >= floor_l) keep++;
        k = keep;
    }
    /* temperature, then draw */
    double total = 0;
    for (int32_t i = 0; i < k; i++) total += exp(((double)c[i].logit - mx) / p->temperature);
    double r = hai_rng_uniform(&s->rng) * total, acc = 0;
    for (int32_t i = 0; i < k; i++) {
        acc += exp(((double)c[i].logit - mx) / p->temperature);
        if (r < acc) return c[i].id;
    }
    return c[k - 1].id;
}

/* NaN logits count as impossible tokens, +inf as the largest finite value; logits with nothing
 * possible are as uncertain as can be (log n): a broken model's answer escalates, never passes
 * as confident. */
float hai_logits_entropy(const float *logits, int32_t n) {
    double mx = -INFINITY;
    for (int32_t i = 0; i < n; i++)
        if (sane(logits[i]) > mx) mx = sane(logits[i]);
    if (mx == -INFINITY) return n > 0 ? (float)log((double)n) : 0;
    double z = 0, zl = 0;
    for (int32_t i = 0; i < n; i++) {
        double d = (double)sane(logits[i]) - mx;
        if (d == -INFINITY) continue;
        double e = exp(d);
        z += e;
        zl += e * d;
    }
    return (float)(log(z) - zl / z); /* H = log Z - E[l - max] */
}
