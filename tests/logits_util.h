/* Logits of a model over the reference tokens, and their distance from the exact answer (KL and
 * top-1 agreement), for the tests that hold the engine to ../shared/reference. */
#ifndef HAI_TEST_LOGITS_UTIL_H
#define HAI_TEST_LOGITS_UTIL_H

#include "check.h"

typedef struct score {
    double kl, top1;
} score;

static score compare(const float *exact, const float *got, int n_pos, int n_vocab) {
    score s = {0, 0};
    for (int p = 0; p < n_pos; p++) {
        const float *x = exact + (size_t)p * n_vocab, *y = got + (size_t)p * n_vocab;
        double mx = x[0], my = y[0];
        int ax = 0, ay = 0;
        for (int i = 1; i < n_vocab; i++) {
            if (x[i] > mx) mx = x[i], ax = i;
            if (y[i] > my) my = y[i], ay = i;
        }
        double zx = 0, zy = 0;
        for (int i = 0; i < n_vocab; i++) zx += exp(x[i] - mx), zy += exp(y[i] - my);
        double lzx = log(zx) + mx, lzy = log(zy) + my, kl = 0;
        for (int i = 0; i < n_vocab; i++) {
            double lp = x[i] - lzx, lq = y[i] - lzy;
            kl += exp(lp) * (lp - lq);
        }
        s.kl += kl;
        s.top1 += ax == ay;
    }
    s.kl /= n_pos;
    s.top1 /= n_pos;
    return s;
}

static int read_tokens(const char *shared, hai_token *t, int cap) {
    char path[4096];
    snprintf(path, sizeof path, "%s/reference/tokens.txt", shared);
    FILE *f = fopen(path, "r");
    int n = 0;
    long v;
    while (f && n < cap && fscanf(f, "%ld", &v) == 1) t[n++] = (hai_token)v;
    if (f) fclose(f);
    return n;
}

/* Runs the model over the tokens in chunks of `batch` and returns all logits. */
static float *run(hai_model *m, const hai_token *toks, int n, int batch) {
    hai_context_params cp = hai_context_default_params();
    cp.n_ctx = (uint32_t)n;
    cp.n_batch = (uint32_t)batch;
    const char *nt = getenv("HAI_TEST_THREADS"); /* 1 under emulation, where spinning workers starve */
    cp.n_threads = nt ? atoi(nt) : 2;
    cp.logits_all = true;
    hai_context *c = NULL;
    hai_error err = {0};
    if (!CHECK_MSG(hai_context_create(m, &cp, &c, &err) == HAI_OK, "%s", err.msg)) return NULL;
    int nv = hai_model_n_vocab(m);
    float *out = malloc((size_t)n * nv * sizeof *out);
    for (int done = 0; done < n;) {
        int k = n - done < batch ? n - done : batch;
        if (!CHECK_MSG(hai_eval(c, toks + done, (size_t)k, &err) == HAI_OK, "%s", err.msg)) break;
        for (int i = 0; i < k; i++) memcpy(out + (size_t)(done + i) * nv, hai_logits(c, i), (size_t)nv * sizeof *out);
        done += k;
    }
    CHECK(hai_logits(c, n) == NULL && hai_logits(c, -1) != NULL);
    hai_context_free(c);
    return out;
}

#endif
