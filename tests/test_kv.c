/* Quantized KV caches (hai_context_params.kv_type Q8_0 / Q4_0) against the exact logits of
 * ../shared/reference (the 64 reference tokens, evaluated at once and one by one): KL(exact || hai)
 * for each cache type beside the F16 cache's; Q8_0 must stay within KL 1e-3 and top-1 0.98 (it gives
 * 0.9e-4 to 2.7e-4 and 1.0), Q4_0 within 0.1 and 0.75 (it gives 0.037-0.063 and 0.80-1.0: these
 * tiny models are sharp, a 4-bit cache is lossy on them). And at a 4096-token context (a synthetic llama and
 * the reference models): KL of each quantized cache from the F16 cache over the last 64 positions,
 * decoded one at a time
 * (reference models: Q8_0 within 1e-4, it gives 2e-6 to 7e-6; Q4_0 within 1e-2, it gives 4e-4 to
 * 2.1e-3). The KV bytes of each type too.
 * usage: test_kv SHARED_DIR */
#include <cjson/cJSON.h>
#include <unistd.h>

#include "logits_util.h"
#include "vocab_io.h"

static const uint32_t types[3] = {HAI_TYPE_F16, HAI_TYPE_Q8_0, HAI_TYPE_Q4_0};

/* The logits of tokens[0..n) in passes of `step`: of every position (keep == n), or of the last
 * `keep`, which are then decoded one at a time (the prefix read in passes without its logits). */
static float *run_kv(const hai_model *m, uint32_t kv, const hai_token *t, int n, int step, int keep, uint64_t *bytes) {
    hai_context_params cp = hai_context_default_params();
    cp.n_ctx = (uint32_t)n + 8, cp.n_threads = 2, cp.logits_all = keep == n, cp.kv_type = kv, cp.n_batch = (uint32_t)step;
    hai_context *c = NULL;
    hai_error err = {0};
    if (!CHECK_MSG(hai_context_create(m, &cp, &c, &err) == HAI_OK, "%s", err.msg)) return NULL;
    if (bytes) *bytes = hai_context_memory_bytes(c);
    int nv = hai_model_n_vocab(m), first = n - keep;
    float *out = malloc((size_t)keep * nv * sizeof *out);
    for (int i = 0; out && i < n;) {
        int k = i < first ? (first - i < step ? first - i : step) : keep == n ? (n - i < step ? n - i : step) : 1;
        if (!CHECK_MSG(hai_eval(c, t + i, (size_t)k, &err) == HAI_OK, "%s", err.msg)) break;
        for (int j = 0; j < k && i >= first; j++) memcpy(out + (size_t)(i + j - first) * nv, hai_logits(c, keep == n ? j : -1), (size_t)nv * sizeof *out);
        i += k;
    }
    hai_context_free(c);
    return out;
}

/* At a 4096-token context: each quantized cache's KL from the F16 cache over the last 64 positions
 * (within q8_max / q4_max), and its bytes below the F16 cache's. */
static void kv_4k(const hai_model *m, const char *label, double q8_max, double q4_max) {
    enum { N = 4096, KEEP = 64 };
    hai_token *t = malloc(N * sizeof *t);
    int nv = hai_model_n_vocab(m);
    for (int i = 0; i < N; i++) t[i] = (hai_token)((31 + 7919 * i) % (nv - 3) + 3);
    uint64_t bytes[3] = {0};
    float *f16 = run_kv(m, HAI_TYPE_F16, t, N, 512, KEEP, &bytes[0]);
    for (int k = 1; f16 && k < 3; k++) {
        float *q = run_kv(m, types[k], t, N, 512, KEEP, &bytes[k]);
        if (!q) continue;
        score s = compare(f16, q, KEEP, nv);
        CHECK_MSG(s.kl < (k == 1 ? q8_max : q4_max), "%s, 4096 tokens, %s KV: KL from the F16 cache %.3g", label, hai_type_name(types[k]), s.kl);
        fprintf(stderr, "%-16s 4096 tokens, %-5s KV: KL from the F16 cache %.3g, top-1 %.4f; context %.1f MiB (F16 %.1f MiB)\n", label,
                hai_type_name(types[k]), s.kl, s.top1, bytes[k] / 1048576.0, bytes[0] / 1048576.0);
        CHECK(bytes[k] < bytes[0]);
        free(q);
    }
    free(f16);
    free(t);
}

int main(int argc, char **argv) {
    (void)run; /* logits_util.h's, for an F16 cache: this test makes its own contexts */
    const char *shared = check_shared_dir(argc, argv);
    if (!shared) return 1;
    hai_token toks[64];
    int n = read_tokens(shared, toks, 64);
    if (!CHECK_MSG(n == 64, "reference tokens: %d", n)) return check_done("test_kv");
    const char *models[] = {"llama-s-Q8_0", "qwen2-s-Q4_K_M", "qwen3-s-F16"};
    for (size_t mi = 0; mi < 3; mi++) {
        char mp[4096], xp[4096];
        snprintf(mp, sizeof mp, "%s/reference/%s.gguf", shared, models[mi]);
        snprintf(xp, sizeof xp, "%s/reference/%s.exact.f32", shared, models[mi]);
        size_t xlen = 0;
        float *exact = (float *)slurp(xp, &xlen);
        hai_model *m = NULL;
        hai_error err = {0};
        if (!CHECK_MSG(exact && hai_model_load(mp, NULL, &m, &err) == HAI_OK, "%s: %s", models[mi], err.msg)) {
            free(exact);
            continue;
        }
        int nv = hai_model_n_vocab(m);
        for (int step = 64; step >= 1; step -= 63) {
            score base = {0, 0};
            for (int k = 0; k < 3; k++) {
                float *got = run_kv(m, types[k], toks, n, step, n, NULL);
                if (!got) continue;
                score s = compare(exact, got, n, nv);
                if (k == 0) base = s;
                double max_kl = k == 1 ? 1e-3 : 0.1, min_top1 = k == 1 ? 0.98 : 0.75;
                if (k) CHECK_MSG(s.kl <= max_kl && s.top1 >= min_top1, "%s %s KV, passes of %d: KL %.3g (F16 KV %.3g), top-1 %.3f", models[mi],
                                 hai_type_name(types[k]), step, s.kl, base.kl, s.top1);
                fprintf(stderr, "%-16s %-5s KV, passes of %2d: KL %.3g, top-1 %.4f\n", models[mi], hai_type_name(types[k]), step, s.kl, s.top1);
                free(got);
            }
        }
        free(exact);
        hai_model_free(m);
    }

    /* a 4096-token context: each quantized cache against the F16 one, on a synthetic llama and the
     * reference models (trained on 4096) */
    char path[] = "/tmp/hai-kv-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    hai_synth_params sp = hai_synth_default_params();
    sp.n_embd = 256, sp.n_layer = 4, sp.n_head = 4, sp.n_head_kv = 2, sp.n_ff = 512, sp.n_ctx_train = 8192, sp.type = HAI_TYPE_Q8_0, sp.std = 0.05f;
    hai_error err = {0};
    hai_model *m = NULL;
    if (CHECK_MSG(hai_synth_write(path, &sp, &err) == HAI_OK && hai_model_load(path, NULL, &m, &err) == HAI_OK, "%s", err.msg))
        kv_4k(m, "synthetic llama", 1e-3, 3e-2);
    hai_model_free(m);
    unlink(path);
    for (size_t mi = 0; mi < 3; mi++) {
        char mp[4096];
        snprintf(mp, sizeof mp, "%s/reference/%s.gguf", shared, models[mi]);
        m = NULL;
        if (CHECK_MSG(hai_model_load(mp, NULL, &m, &err) == HAI_OK, "%s: %s", models[mi], err.msg)) kv_4k(m, models[mi], 1e-4, 1e-2);
        hai_model_free(m);
    }
    return check_done("test_kv");
}
