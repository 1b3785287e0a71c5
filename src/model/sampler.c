/* Sampling: penalties over a window of recent tokens, then top-k, top-p, min-p, temperature and
 * a draw from a seeded generator (the order llama.cpp uses, so settings mean the same).
 *
 * The cost is a few vectorized passes over the vocabulary (kernels.h: logits_max, logits_exp,
 * logits_collect), never a sort of it: at 152K entries (Qwen) a sort and exp() in double took
 * ~19 ms a token, more than the 0.5B model's forward pass. The paths:
 *   greedy          the first index of the maximum                         2 passes
 *   no cut          (top_p 1, min_p 0, no top-k: OpenAI's defaults) the sums of exp per chunk of
 *                   1024, a draw of a chunk, then of a token within it     1 pass + 1 chunk
 *   top-k           a bounded heap fed by the vector compare (only values above the heap's
 *                   least are looked at), then the k sorted                1 pass
 *   top-p / min-p   the candidates above a threshold, lowered until their mass covers top_p
 *                   (min-p's threshold is exact), bucketed by value so only the bucket where the
 *                   cumulative mass crosses top_p is sorted                2-4 passes
 * Logits are taken "sane" (NaN as -inf: never chosen; +inf as FLT_MAX). */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "kernels/kernels.h"
#include "gen.h"
#include "base/rng.h"

typedef struct cand {
    float logit;
    hai_token id;
} cand;

#define CHUNK 1024   /* the no-cut draw's unit: chunk sums, then one chunk's weights */
#define BUCKETS 1024 /* top-p: candidates by value, to sort only where the cut falls */

struct hai_sampler {
    hai_sampler_params p;
    int32_t n_vocab;
    hai_rng rng;
    float (*lmax)(int64_t, const float *); /* the logits passes of the kernels in use */
    double (*lexp)(int64_t, const float *, float, float, float *, double *);
    int64_t (*lcollect)(int64_t, const float *, float, int32_t *, int64_t);
    float *work;     /* [n_vocab] the logits with penalties applied (when any apply) */
    cand *c;         /* [n_vocab] candidates */
    int32_t *idx;    /* [n_vocab] collected indices */
    float *val, *w;  /* [n_vocab] the candidates' values and weights */
    uint16_t *bk;    /* [n_vocab] the candidates' buckets (top-p) */
    double *chunk;   /* [n_vocab / CHUNK + 1] */
    hai_token *hist; /* ring of the last repeat_last_n tokens */
    int32_t n_hist, hist_pos;
    int32_t *count;  /* [n_vocab] occurrences within the window */
    hai_logit_bias *bias; /* the params' logit_bias, copied */
};

static inline float sane(float l) { return l != l ? -INFINITY : l > FLT_MAX ? FLT_MAX : l; }

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
    if (p->n_logit_bias && !p->logit_bias) return hai_fail(err, HAI_ERR_INVALID, "sampler: logit_bias is NULL");
    for (size_t i = 0; i < p->n_logit_bias; i++)
        if (p->logit_bias[i].token < 0 || p->logit_bias[i].token >= n_vocab || !isfinite(p->logit_bias[i].bias))
            return hai_fail(err, HAI_ERR_INVALID, "sampler: logit_bias for token %d (%g): the vocabulary has %d tokens", p->logit_bias[i].token,
                            p->logit_bias[i].bias, n_vocab);
    hai_status kst = hai_kernels_check(err);
    if (kst) return kst;
    hai_sampler *s = calloc(1, sizeof *s);
    if (!s) return hai_fail(err, HAI_ERR_NOMEM, "sampler: out of memory");
    const hai_kernels *k = hai_kernels_best(), *r = hai_kernels_ref();
    s->lmax = k->logits_max ? k->logits_max : r->logits_max;
    s->lexp = k->logits_exp ? k->logits_exp : r->logits_exp;
    s->lcollect = k->logits_collect ? k->logits_collect : r->logits_collect;
    s->p = *p;
    s->n_vocab = n_vocab;
    size_t n = (size_t)n_vocab;
    s->work = malloc(n * sizeof *s->work);
    s->c = malloc(n * sizeof *s->c);
    s->idx = malloc(n * sizeof *s->idx);
    s->val = malloc(n * sizeof *s->val);
    s->w = malloc(n * sizeof *s->w);
    s->bk = malloc(n * sizeof *s->bk);
    s->chunk = malloc((n / CHUNK + 1) * sizeof *s->chunk);
    s->count = calloc(n, sizeof *s->count);
    s->hist = malloc(((size_t)p->repeat_last_n + 1) * sizeof *s->hist);
    s->bias = malloc((p->n_logit_bias + 1) * sizeof *s->bias);
    if (s->bias && p->n_logit_bias) memcpy(s->bias, p->logit_bias, p->n_logit_bias * sizeof *s->bias);
    s->p.logit_bias = s->bias;
    if (!s->bias || !s->work || !s->c || !s->idx || !s->val || !s->w || !s->bk || !s->chunk || !s->count || !s->hist) {
        hai_sampler_free(s);
        return hai_fail(err, HAI_ERR_NOMEM, "sampler: out of memory for a vocabulary of %d", n_vocab);
    }
    hai_sampler_reset(s);
    *out = s;
    return HAI_OK;
}

void hai_sampler_free(hai_sampler *s) {
    if (!s) return;
    free(s->work);
    free(s->c);
    free(s->idx);
    free(s->val);
    free(s->w);
    free(s->bk);
    free(s->chunk);
    free(s->count);
    free(s->hist);
    free(s->bias);
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

/* The logits the cuts see: as given, or a copy with the penalties of the tokens in the window
 * (each once, however often it occurs). */
static const float *penalized(hai_sampler *s, const float *logits) {
    const hai_sampler_params *p = &s->p;
    bool pen = s->n_hist && (p->repeat_penalty != 1.0f || p->presence_penalty != 0 || p->frequency_penalty != 0);
    if (!pen && !p->n_logit_bias) return logits;
    memcpy(s->work, logits, (size_t)s->n_vocab * sizeof *s->work);
    for (size_t i = 0; i < p->n_logit_bias; i++) s->work[p->logit_bias[i].token] = sane(sane(s->work[p->logit_bias[i].token]) + p->logit_bias[i].bias);
    if (!pen) return s->work;
    for (int32_t h = 0; h < s->n_hist; h++) {
        hai_token t = s->hist[h];
        int32_t c = s->count[t];
        if (c <= 0) continue; /* done already (marked below), or left the window */
        float l = sane(s->work[t]); /* with its bias */
        if (p->repeat_penalty != 1.0f) l = l > 0 ? l / p->repeat_penalty : l * p->repeat_penalty;
        l -= (float)c * p->frequency_penalty + p->presence_penalty;
        s->work[t] = sane(l);
        s->count[t] = -c; /* marked: each token once */
    }
    for (int32_t h = 0; h < s->n_hist; h++)
        if (s->count[s->hist[h]] < 0) s->count[s->hist[h]] = -s->count[s->hist[h]];
    return s->work;
}

static int cmp_desc(const void *a, const void *b) {
    float x = ((const cand *)a)->logit, y = ((const cand *)b)->logit;
    if (x != y) return x > y ? -1 : 1;
    hai_token i = ((const cand *)a)->id, j = ((const cand *)b)->id;
    return i < j ? -1 : i > j; /* ties by id: deterministic */
}

/* A draw among c[0, k) (any order) with weights exp((l - mx) / T). */
static hai_token draw(hai_sampler *s, const cand *c, int32_t k, double mx) {
    double t = s->p.temperature, total = 0;
    for (int32_t i = 0; i < k; i++) total += exp(((double)c[i].logit - mx) / t);
    double r = hai_rng_uniform(&s->rng) * total, acc = 0;
    for (int32_t i = 0; i < k; i++) {
        acc += exp(((double)c[i].logit - mx) / t);
        if (r < acc) return c[i].id;
    }
    return c[k - 1].id;
}

/* After top-k: the k candidates sorted, softmax over them, the top-p and min-p cuts, then the
 * draw (the reference order of operations, on k values). */
static hai_token small_path(hai_sampler *s, cand *c, int32_t k) {
    const hai_sampler_params *p = &s->p;
    qsort(c, (size_t)k, sizeof *c, cmp_desc);
    double mx = c[0].logit, sum = 0;
    if (p->top_p < 1.0f) {
        for (int32_t i = 0; i < k; i++) sum += exp((double)c[i].logit - mx);
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
    return draw(s, c, k, mx);
}

/* Top-k: the k largest (ties: the lower id) through a min-heap on (logit, -id); the vector
 * compare hands over only the values that could enter it. */
static void heap_sift_down(cand *h, int32_t n, int32_t i) {
    for (;;) {
        int32_t l = 2 * i + 1, m = i;
        if (l < n && cmp_desc(&h[l], &h[m]) > 0) m = l; /* the "smaller": later in descending order */
        if (l + 1 < n && cmp_desc(&h[l + 1], &h[m]) > 0) m = l + 1;
        if (m == i) return;
        cand t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static hai_token sample_top_k(hai_sampler *s, const float *x) {
    int32_t n = s->n_vocab, k = s->p.top_k, have = 0;
    cand *h = s->c;
    float thr = -INFINITY;
    for (int32_t b = 0; b < n; b += CHUNK) {
        int32_t len = n - b < CHUNK ? n - b : CHUNK;
        int64_t nc = s->lcollect(len, x + b, thr, s->idx, len);
        for (int64_t j = 0; j < nc; j++) {
            cand e = {sane(x[b + s->idx[j]]), b + s->idx[j]};
            if (have < k) {
                h[have++] = e;
                if (have == k)
                    for (int32_t i = k / 2; i-- > 0;) heap_sift_down(h, k, i);
            } else if (cmp_desc(&e, &h[0]) < 0) { /* before the least kept */
                h[0] = e;
                heap_sift_down(h, k, 0);
            }
        }
        if (have == k) thr = h[0].logit;
    }
    return small_path(s, h, have);
}

/* No cut: a draw over the whole vocabulary with weights exp((l - mx) / T), the sums taken per
 * chunk so the same sums serve the choice of a chunk and the walk inside it. */
static hai_token sample_all(hai_sampler *s, const float *x, float mx) {
    int32_t n = s->n_vocab, nch = (n + CHUNK - 1) / CHUNK;
    float inv_t = 1.0f / s->p.temperature;
    double total = 0;
    for (int32_t c = 0; c < nch; c++) {
        int32_t len = n - c * CHUNK < CHUNK ? n - c * CHUNK : CHUNK;
        total += s->chunk[c] = s->lexp(len, x + (size_t)c * CHUNK, mx, inv_t, NULL, NULL);
    }
    double r = hai_rng_uniform(&s->rng) * total, acc = 0;
    for (int32_t c = 0; c < nch; c++) {
        if (acc + s->chunk[c] <= r && c + 1 < nch) {
            acc += s->chunk[c];
            continue;
        }
        int32_t base = c * CHUNK, len = n - base < CHUNK ? n - base : CHUNK, last = -1;
        s->lexp(len, x + base, mx, inv_t, s->w, NULL);
        double cum = acc;
        for (int32_t j = 0; j < len; j++) {
            if (s->w[j] <= 0) continue;
            last = j;
            cum += s->w[j];
            if (r < cum) return base + j;
        }
        if (last >= 0) return base + last; /* rounding between the chunk's sum and its walk */
        acc += s->chunk[c];
    }
    return s->lcollect(n, x, mx, s->idx, 1) ? s->idx[0] : 0; /* not reached: the maximum has weight 1 */
}

/* A candidate's bucket by its distance below the maximum (per = buckets per unit of logit);
 * weightless ones in the last. */
static inline int bucket(float v, float w, float mx, float per) {
    if (!(w > 0)) return BUCKETS - 1;
    float b = (mx - v) * per;
    return b < BUCKETS - 1 ? (int)b : BUCKETS - 1;
}

/* A draw among the n weights w (of the tokens ids), in their order. */
static hai_token draw_weights(hai_sampler *s, const float *w, const int32_t *ids, int64_t n, double total) {
    double r = hai_rng_uniform(&s->rng) * total, acc = 0;
    int64_t last = 0;
    for (int64_t j = 0; j < n; j++) {
        if (w[j] <= 0) continue;
        last = j;
        acc += w[j];
        if (r < acc) return ids[j];
    }
    return ids[last];
}

/* Top-p and/or min-p without top-k: the candidates above a threshold, lowered until they hold the
 * top-p mass (min-p's threshold, when higher, ends the search: its cut comes first). */
static hai_token sample_cut(hai_sampler *s, const float *x, float mx) {
    const hai_sampler_params *p = &s->p;
    int32_t n = s->n_vocab;
    float t_min = p->min_p > 0 ? mx + logf(p->min_p) : -INFINITY;
    double z = p->top_p < 1.0f ? s->lexp(n, x, mx, 1.0f, NULL, NULL) : 0, target = p->top_p * z;
    int64_t nc = 0;
    double mass = 0;
    for (float delta = 4;; delta *= 2) {
        /* the last round: min-p's threshold, or 128 below the maximum (lower, exp(l - mx) is 0 in float) */
        bool last = p->top_p >= 1.0f || delta >= 128 || mx - delta <= t_min;
        float t = last ? (mx - 128 > t_min && p->top_p < 1.0f ? mx - 128 : t_min) : mx - delta;
        nc = s->lcollect(n, x, t, s->idx, n);
        for (int64_t j = 0; j < nc; j++) s->val[j] = x[s->idx[j]];
        mass = s->lexp(nc, s->val, mx, 1.0f, s->w, NULL);
        /* enough when the cut surely falls inside (a margin for the float sums) */
        if (last || mass >= target * (1 + 1e-5)) break;
    }
    float inv_t = 1.0f / p->temperature;
    if (p->top_p < 1.0f && mass > target) { /* the top-p cut: bucket the candidates by value, sort the crossing bucket */
        float lo = mx;
        for (int64_t j = 0; j < nc; j++)
            if (s->w[j] > 0 && s->val[j] < lo) lo = s->val[j];
        float per = mx > lo ? (float)(BUCKETS / ((double)mx - lo)) : 0;
        double bm[BUCKETS] = {0};
        for (int64_t j = 0; j < nc; j++) bm[s->bk[j] = (uint16_t)bucket(s->val[j], s->w[j], mx, per)] += s->w[j];
        double cum = 0;
        int bc = 0;
        while (bc < BUCKETS - 1 && cum + bm[bc] < target) cum += bm[bc++];
        /* the kept set: buckets before bc whole, then bc's members in order until the mass is reached;
         * kept values go to val and their ids to idx, in place (a kept one is never ahead of its slot) */
        int64_t k = 0, nb = 0;
        cand *members = s->c;
        for (int64_t j = 0; j < nc; j++) {
            if (s->bk[j] < bc) {
                s->val[k] = s->val[j];
                s->idx[k++] = s->idx[j];
            } else if (s->bk[j] == bc) {
                members[nb++] = (cand){sane(s->val[j]), s->idx[j]};
            }
        }
        qsort(members, (size_t)nb, sizeof *members, cmp_desc);
        for (int64_t i = 0; i < nb; i++) {
            s->val[k] = members[i].logit;
            s->idx[k++] = members[i].id;
            cum += exp((double)members[i].logit - mx);
            if (cum >= target) break;
        }
        nc = k;
    }
    /* the draw at the temperature, over what the cuts kept */
    double total = s->lexp(nc, s->val, mx, inv_t, s->w, NULL);
    return draw_weights(s, s->w, s->idx, nc, total);
}

hai_token hai_sampler_sample(hai_sampler *s, const float *logits) {
    const hai_sampler_params *p = &s->p;
    int32_t n = s->n_vocab;
    const float *x = penalized(s, logits);
    float mx = s->lmax(n, x);
    if (mx == -INFINITY) return 0; /* nothing is possible: the lowest id, deterministically */
    if (p->temperature <= 0) return s->lcollect(n, x, mx, s->idx, 1) ? s->idx[0] : 0; /* greedy: the first maximum */
    if (p->top_k > 0 && p->top_k < n) return sample_top_k(s, x);
    if (p->top_p < 1.0f || p->min_p > 0) return sample_cut(s, x, mx);
    return sample_all(s, x, mx);
}

bool sampler_is_plain(const hai_sampler *s) {
    const hai_sampler_params *p = &s->p;
    return p->temperature <= 0 || ((p->top_k <= 0 || p->top_k >= s->n_vocab) && p->top_p >= 1.0f && p->min_p <= 0);
}

hai_token hai_logits_argmax(const float *logits, int32_t n) {
    const hai_kernels *k = hai_kernels_best(), *r = hai_kernels_ref();
    float mx = (k->logits_max ? k->logits_max : r->logits_max)(n, logits);
    int32_t first = 0;
    if (mx == -INFINITY || !(k->logits_collect ? k->logits_collect : r->logits_collect)(n, logits, mx, &first, 1)) return 0;
    return first;
}

int hai_logits_logprobs(const float *logits, int32_t n, hai_token t, float *logprob, int k, hai_token *top, float *top_logprob) {
    const hai_kernels *kt = hai_kernels_best(), *r = hai_kernels_ref();
    float (*lmax)(int64_t, const float *) = kt->logits_max ? kt->logits_max : r->logits_max;
    double (*lexp)(int64_t, const float *, float, float, float *, double *) = kt->logits_exp ? kt->logits_exp : r->logits_exp;
    int64_t (*lcollect)(int64_t, const float *, float, int32_t *, int64_t) = kt->logits_collect ? kt->logits_collect : r->logits_collect;
    float mx = lmax(n, logits);
    double lz = mx == -INFINITY ? 0 : (double)mx + log(lexp(n, logits, mx, 1.0f, NULL, NULL));
    if (logprob) *logprob = t >= 0 && t < n ? (float)((double)sane(logits[t]) - lz) : -INFINITY;
    if (k > 64) k = 64;
    if (k <= 0 || !top) return 0;
    /* the k largest through a small sorted list fed by the vector compare, a chunk at a time */
    cand best[64];
    int have = 0;
    int32_t idx[1024];
    float thr = -INFINITY;
    for (int32_t b = 0; b < n; b += 1024) {
        int32_t len = n - b < 1024 ? n - b : 1024;
        int64_t nc = lcollect(len, logits + b, thr, idx, len);
        for (int64_t j = 0; j < nc; j++) {
            cand e = {sane(logits[b + idx[j]]), b + idx[j]};
            if (have == k && cmp_desc(&e, &best[k - 1]) >= 0) continue;
            int at = have < k ? have++ : k - 1;
            while (at > 0 && cmp_desc(&e, &best[at - 1]) < 0) best[at] = best[at - 1], at--;
            best[at] = e;
        }
        if (have == k) thr = best[k - 1].logit;
    }
    for (int i = 0; i < have; i++) {
        top[i] = best[i].id;
        top_logprob[i] = (float)((double)best[i].logit - lz);
    }
    return have;
}

/* NaN logits count as impossible tokens, +inf as the largest finite value; logits with nothing
 * possible are as uncertain as can be (log n): a broken model's answer escalates, never passes
 * as confident. H = log Z - E[l - max], from one pass of the sampler's kernels. */
float hai_logits_entropy(const float *logits, int32_t n) {
    if (n <= 0) return 0;
    const hai_kernels *k = hai_kernels_best();
    float (*lmax)(int64_t, const float *) = k->logits_max ? k->logits_max : hai_kernels_ref()->logits_max;
    double (*lexp)(int64_t, const float *, float, float, float *, double *) = k->logits_exp ? k->logits_exp : hai_kernels_ref()->logits_exp;
    float mx = lmax(n, logits);
    if (mx == -INFINITY) return (float)log((double)n);
    double wa = 0, z = lexp(n, logits, mx, 1.0f, NULL, &wa);
    return (float)(log(z) - wa / z);
}
