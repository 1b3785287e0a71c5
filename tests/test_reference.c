/* The engine against the exact logits of ../shared/reference: every model there, evaluated all
 * at once (prefill path), one token at a time (decode path) and in chunks of 7, must be at least
 * as close to the exact answer as llama.cpp: KL(exact || hai) <= max_kl and top-1 agreement >=
 * min_top1 (from summary.json).
 * usage: test_reference SHARED_DIR [--compare MODEL_NAME LOGITS.f32]  (the latter checks a file
 * written by `hai logits`)
 *        test_reference SHARED_DIR --paths all  (only the given paths: all, one-by-one, chunks-of-7;
 *        for emulated CPUs, where every path of every model would take too long) */
#include <cjson/cJSON.h>

#include "check.h"
#include "kernels/kernels.h"
#include "logits_util.h"
#include "vocab_io.h"

int main(int argc, char **argv) {
    const char *shared = check_shared_dir(argc, argv);
    /* a run forced onto a kernel table this CPU lacks tests nothing: ctest reports it skipped (77) */
    const char *forced = getenv("HAI_KERNELS");
    bool known = false;
    if (forced && *forced && !hai_kernels_named(forced, &known) && known) {
        fprintf(stderr, "test_reference: skipped: this CPU or build cannot run the %s kernels\n", forced);
        return 77;
    }
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
    const char *paths = argc > 3 && !strcmp(argv[2], "--paths") ? argv[3] : NULL;
    const char *file = only && argc > 4 ? argv[4] : NULL;
    int checked = 0;
    fprintf(stderr, "kernels: %s\n", hai_kernels_name());
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
            if (!file && paths && !strstr(paths, labels[b])) continue;
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
            if (!file && b == 0) { /* weights used in place from the file: the same numbers as copied */
                hai_model_params mparams = hai_model_default_params();
                mparams.mmap_weights = true;
                hai_model *mm = NULL;
                CHECK_MSG(hai_model_load(mp, &mparams, &mm, &err) == HAI_OK, "%s (mmap_weights): %s", name, err.msg);
                float *got_mm = mm ? run(mm, toks, n, batches[b]) : NULL;
                CHECK_MSG(got_mm && memcmp(got_mm, got, xlen) == 0, "%s: logits differ with mmap_weights", name);
                free(got_mm);
                hai_model_free(mm);
            }
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
