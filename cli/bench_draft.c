/* hai bench's speculative-decoding tests: what checking k drafted tokens costs (one pass of k + 1
 * tokens with every row's logits, in decode steps), and generation with prompt lookup or a draft
 * model against plain decoding on the same prompt, in turns: tokens/s of both, the share of drafts
 * kept and the speed-up, with the two texts compared (they must be the same token for token). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_draft.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

hai_status bench_verify(hai_context *c, const hai_token *toks, uint32_t depth, int kmax, int reps, double step_s, bool json,
                        hai_error *err) {
    static const int ks[] = {1, 2, 3, 4, 6, 8, 12, 16};
    hai_token in[17];
    bool keep[17];
    double *v = malloc((size_t)reps * sizeof *v);
    if (!v) return cli_fail(err, HAI_ERR_NOMEM, "bench: out of memory");
    hai_status st = HAI_OK;
    if (!json) printf("\n| drafts checked | pass ms | decode steps |\n|---|---|---|\n");
    for (size_t ki = 0; ki < sizeof ks / sizeof *ks && ks[ki] <= kmax && !st; ki++) {
        int k = ks[ki];
        for (int i = 0; i <= k; i++) in[i] = toks[depth + (uint32_t)i], keep[i] = true;
        hai_batch b = {.n = (size_t)k + 1, .tokens = in, .logits = keep};
        for (int r = 0; r < reps && !st; r++) {
            if ((st = hai_context_truncate(c, depth, err))) break;
            double t0 = hai_time_s();
            st = hai_decode(c, &b, err);
            v[r] = hai_time_s() - t0;
        }
        if (st) break;
        double t = median(v, reps);
        if (json)
            printf("{\"test\":\"verify%d\",\"drafts\":%d,\"pass_s\":%.6f,\"decode_steps\":%.3f}\n", k, k, t, step_s > 0 ? t / step_s : 0);
        else
            printf("| %d | %.1f | %.2f |\n", k, 1e3 * t, step_s > 0 ? t / step_s : 0);
    }
    free(v);
    return st;
}

typedef struct text_buf {
    hai_token *ids;
    size_t n, cap;
} text_buf;

static void on_token(void *user, hai_token t) {
    text_buf *b = user;
    if (b->n < b->cap) b->ids[b->n] = t;
    b->n++;
}

hai_status bench_drafted(hai_context *c, hai_context *dc, const hai_token *prompt, size_t n_prompt, int n_gen, int draft_n, int reps,
                         const char *label, bool json, hai_error *err) {
    text_buf plain = {malloc((size_t)n_gen * sizeof(hai_token)), 0, (size_t)n_gen};
    text_buf spec = {malloc((size_t)n_gen * sizeof(hai_token)), 0, (size_t)n_gen};
    double *tp = malloc((size_t)reps * sizeof *tp), *ts = malloc((size_t)reps * sizeof *ts);
    hai_status st = plain.ids && spec.ids && tp && ts ? HAI_OK : cli_fail(err, HAI_ERR_NOMEM, "bench: out of memory");
    int64_t drafted = 0, kept = 0, generated = 0;
    for (int r = 0; r < reps && !st; r++) {
        for (int mode = 0; mode < 2 && !st; mode++) { /* plain, then drafted: in turns */
            text_buf *b = mode ? &spec : &plain;
            b->n = 0;
            hai_generate_params p = {.max_tokens = n_gen, .on_token = on_token, .user = b};
            if (mode && dc) p.draft_context = dc, p.draft_tokens = draft_n;
            else if (mode) p.draft_lookup = draft_n;
            hai_generate_result res;
            if ((st = hai_context_truncate(c, 0, err)) || (dc && (st = hai_context_truncate(dc, 0, err)))) break;
            if ((st = hai_generate(c, prompt, n_prompt, &p, &res, err))) break;
            double tps = res.n_generated > 1 && res.t_generate_s > 0 ? (res.n_generated - 1) / res.t_generate_s : 0;
            (mode ? ts : tp)[r] = tps;
            if (mode) drafted += res.n_drafted, kept += res.n_accepted, generated += res.n_generated;
        }
        if (!st && (plain.n != spec.n || memcmp(plain.ids, spec.ids, (plain.n < plain.cap ? plain.n : plain.cap) * sizeof(hai_token))))
            st = cli_fail(err, HAI_ERR_INTERNAL, "bench: the drafted text differs from plain decoding's (%zu vs %zu tokens)", spec.n, plain.n);
    }
    if (!st) {
        double a = median(tp, reps), s = median(ts, reps);
        double share = drafted ? (double)kept / (double)drafted : 0;
        double passes = (double)(generated - kept); /* a pass gives one token and the drafts kept */
        double per_pass = passes > 0 ? (double)generated / passes : 0, drafts_pass = passes > 0 ? (double)drafted / passes : 0;
        if (json)
            printf("{\"test\":\"drafted\",\"drafter\":\"%s\",\"draft_max\":%d,\"tokens\":%zu,\"plain_tokens_per_s\":%.3f,"
                   "\"drafted_tokens_per_s\":%.3f,\"speedup\":%.3f,\"drafted\":%lld,\"kept\":%lld,\"kept_share\":%.4f,\"tokens_per_pass\":%.3f,"
                   "\"drafts_per_pass\":%.3f}\n",
                   label, draft_n, plain.n, a, s, a > 0 ? s / a : 0, (long long)drafted, (long long)kept, share, per_pass, drafts_pass);
        else
            printf("\n| drafter | up to | tokens | plain t/s | drafted t/s | speed-up | drafts kept | tokens a pass |\n"
                   "|---|---|---|---|---|---|---|---|\n| %s | %d | %zu | %.2f | %.2f | %.2fx | %lld of %lld (%.0f%%) | %.2f |\n",
                   label, draft_n, plain.n, a, s, a > 0 ? s / a : 0, (long long)kept, (long long)drafted, 100 * share, per_pass);
    }
    free(plain.ids), free(spec.ids), free(tp), free(ts);
    return st;
}
