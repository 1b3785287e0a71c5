/* The engine against the exact logits of ../shared/reference: every model there, evaluated all
 * at once (prefill path), one token at a time (decode path) and in chunks of 7, must be at least
 * as close to the exact answer as llama.cpp: KL(exact || hai) <= max_kl and top-1 agreement >=
 * min_top1 (from summary.json).
 * usage: test_reference SHARED_DIR [--compare MODEL_NAME LOGITS.f32]  (the latter checks a file
 * written by `hai logits`) */
#include <cjson/cJSON.h>

#include "check.h"
#include "vocab_io.h"

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
    cp.n_threads = 2;
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

int main(int argc, char **argv) {
    const char *shared = check_shared_dir(argc, argv);
    char path[4096];
    snprintf(path, sizeof path, "%s/reference/summary.json", shared);
    char *js = slurp(path, NULL);
    cJSON *summary = js ? cJSON_Parse(js) : NULL;
    free(js);
    if (!CHECK_MSG(cJSON_IsArray(summary) && cJSON_GetArraySize(summary) > 0, "cannot read %s", path)) return check_done("test_reference");
    hai_token toks[256];
    int n = read_tokens(shared, toks, 256);
    CHECK_MSG(n == 64, "tokens.txt: %d tokens", n);
    const char *only = argc > 3 && !strcmp(argv[2], "--compare") ? argv[3] : NULL;
    const char *file = only && argc > 4 ? argv[4] : NULL;
    int checked = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, summary) {
        const char *name = cJSON_GetObjectItem(e, "file")->valuestring;
        double max_kl = cJSON_GetObjectItem(e, "max_kl")->valuedouble, min_top1 = cJSON_GetObjectItem(e, "min_top1")->valuedouble;
        double lc_kl = cJSON_GetObjectItem(e, "llamacpp_kl") && cJSON_IsNumber(cJSON_GetObjectItem(e, "llamacpp_kl"))
                           ? cJSON_GetObjectItem(e, "llamacpp_kl")->valuedouble : -1;
        if (only && strcmp(only, name)) continue;
        char mp[4096], xp[4096];
        snprintf(mp, sizeof mp, "%s/reference/%s", shared, name);
        snprintf(xp, sizeof xp, "%s/reference/%.*s.exact.f32", shared, (int)(strlen(name) - 5), name);
        size_t xlen = 0;
        float *exact = (float *)slurp(xp, &xlen);
        hai_model *m = NULL;
        hai_error err = {0};
        CHECK_MSG(exact != NULL, "missing %s", xp);
        CHECK_MSG(hai_model_load(mp, NULL, &m, &err) == HAI_OK, "%s", err.msg);
        if (!exact || !m) {
            free(exact);
            hai_model_free(m);
            continue;
        }
        int nv = hai_model_n_vocab(m);
        CHECK_EQ_INT(xlen, (size_t)n * nv * sizeof(float));
        const int batches[3] = {n, 1, 7};
        const char *labels[3] = {"all", "one-by-one", "chunks-of-7"};
        for (int b = 0; b < (file ? 1 : 3); b++) {
            float *got = NULL;
            if (file) {
                size_t glen = 0;
                got = (float *)slurp(file, &glen);
                CHECK_MSG(got && glen == xlen, "%s: %zu bytes, want %zu", file, glen, xlen);
                if (got && glen != xlen) {
                    free(got);
                    got = NULL;
                }
            } else {
                got = run(m, toks, n, batches[b]);
            }
            if (!got) continue;
            score s = compare(exact, got, n, nv);
            bool ok = s.kl <= max_kl && s.top1 >= min_top1;
            fprintf(stderr, "%-22s %-12s KL %.3g (max %.3g, llama.cpp %.3g)  top1 %.4f (min %.4f)  %s\n", name,
                    file ? "file" : labels[b], s.kl, max_kl, lc_kl, s.top1, min_top1, ok ? "ok" : "FAIL");
            CHECK_MSG(ok, "%s (%s): KL %.4g > %.4g or top1 %.4f < %.4f", name, file ? "file" : labels[b], s.kl, max_kl, s.top1,
                      min_top1);
            free(got);
            checked++;
        }
        free(exact);
        hai_model_free(m);
    }
    cJSON_Delete(summary);
    CHECK_MSG(checked > 0, "no reference model was checked");
    return check_done("test_reference");
}
