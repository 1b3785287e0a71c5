/* Sliding-window layers (Gemma, Phi-3) keep only their window and a pass of n_batch in the KV
 * cache, as a ring. Checked on synthetic gemma2, gemma3 and phi3 (every layer slides) models
 * (window 16):
 *   - a context with rings gives the logits of one without (n_batch as long as the context) far
 *     past the ring's length, whatever the passes;
 *   - the cache is smaller by what the rings save;
 *   - truncation keeps the prefix while the rings hold the window before it, and forgets the
 *     whole sequence (n_past 0) when they do not; what is evaluated after either is right;
 *   - a sequence copied while its rings hold the window decodes as the original; a copy past that
 *     is refused;
 *   - hai_generate reuses a shared prompt prefix (or not) and decodes what a fresh context does;
 *   - implausible Gemma metadata (caps, period, the sliding layers' RoPE base) is refused.
 * usage: test_swa */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "edit_model.h"
#include "hai.h"

#define N 120      /* tokens: past the ring's 32 positions several times */
#define WINDOW 16  /* hai synth: n_ctx_train / 8 */

static hai_token toks[N];

static hai_context *ctx(const hai_model *m, uint32_t n_batch, uint32_t n_seq, bool logits_all) {
    hai_context_params cp = hai_context_default_params();
    cp.n_ctx = 128;
    cp.n_batch = n_batch;
    cp.n_threads = 2;
    cp.logits_all = logits_all;
    cp.n_seq = n_seq;
    hai_context *c = NULL;
    hai_error err = {0};
    CHECK_MSG(hai_context_create(m, &cp, &c, &err) == HAI_OK, "%s", err.msg);
    return c;
}

/* Evaluates toks[from..to) in passes of `step`, the logits of every token into out. */
static void feed(hai_context *c, int from, int to, int step, int nv, float *out) {
    hai_error err = {0};
    for (int i = from; i < to; i += step) {
        int k = to - i < step ? to - i : step;
        if (!CHECK_MSG(hai_eval(c, toks + i, (size_t)k, &err) == HAI_OK, "%s", err.msg)) return;
        for (int j = 0; j < k; j++) memcpy(out + (size_t)(i + j) * nv, hai_logits(c, j), (size_t)nv * sizeof *out);
    }
}

static double max_diff(const float *a, const float *b, size_t n) {
    double d = 0;
    for (size_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

static void check_arch(const char *arch) {
    char path[] = "/tmp/hai-swa-XXXXXX";
    int fd = mkstemp(path);
    if (!CHECK(fd >= 0)) return;
    close(fd);
    hai_synth_params sp = hai_synth_default_params();
    sp.arch = arch;
    sp.n_layer = 4;
    sp.n_ctx_train = 8 * WINDOW;
    sp.type = HAI_TYPE_Q8_0;
    sp.std = 0.05f;
    hai_error err = {0};
    hai_model *m = NULL;
    if (!CHECK_MSG(hai_synth_write(path, &sp, &err) == HAI_OK && hai_model_load(path, NULL, &m, &err) == HAI_OK, "%s: %s", arch, err.msg)) {
        unlink(path);
        return;
    }
    /* the layers that slide, as `hai info` counts them: gemma2 every other, gemma3 all but each
     * sixth, phi3 every one */
    hai_model_info mi = {0};
    hai_gguf *g = NULL;
    if (CHECK_MSG(hai_gguf_open(path, &g, &err) == HAI_OK && hai_model_info_read(g, &mi, &err) == HAI_OK, "%s", err.msg))
        CHECK_MSG(mi.swa_window == WINDOW && mi.n_swa_layers == (strcmp(arch, "gemma2") ? 4u : 2u), "%s: %u sliding layers, window %u",
                  arch, mi.n_swa_layers, mi.swa_window);
    hai_gguf_free(g);
    unlink(path);
    int nv = hai_model_n_vocab(m);
    float *want = calloc((size_t)N * nv, sizeof *want), *got = calloc((size_t)N * nv, sizeof *got);

    /* without rings (n_batch 128: window + pass exceed the context) and with (n_batch 8: 32 slots) */
    hai_context *plain = ctx(m, 128, 1, true), *ring = ctx(m, 8, 1, true), *gen = ctx(m, 8, 1, false);
    if (!plain || !ring || !gen) goto done;
    feed(plain, 0, N, N, nv, want);
    feed(ring, 0, N, 8, nv, got);
    CHECK_MSG(max_diff(want, got, (size_t)N * nv) < 1e-4, "%s: rings change the logits by %g", arch, max_diff(want, got, (size_t)N * nv));
    uint64_t mp = hai_context_memory_bytes(plain), mr = hai_context_memory_bytes(ring);
    /* each sliding layer keeps 32 positions instead of 128, K and V in F16 */
    uint64_t saved = (uint64_t)mi.n_swa_layers * (128 - 32) * mi.n_head_kv * (mi.head_dim_k + mi.head_dim_v) * 2;
    CHECK_MSG(mr + saved <= mp, "%s: a context with rings takes %llu bytes, without %llu (the rings save %llu)", arch,
              (unsigned long long)mr, (unsigned long long)mp, (unsigned long long)saved);

    /* truncation within what the rings hold: the prefix stays, and the rest is evaluated again */
    CHECK_EQ_INT(hai_context_truncate(ring, 110, &err), HAI_OK);
    CHECK_EQ_INT(hai_context_n_past(ring), 110);
    feed(ring, 110, N, 3, nv, got);
    CHECK_MSG(max_diff(want + (size_t)110 * nv, got + (size_t)110 * nv, (size_t)10 * nv) < 1e-4, "%s: after truncating to 110", arch);
    /* beyond: the window before position 60 is gone, so the sequence starts over */
    CHECK_EQ_INT(hai_context_truncate(ring, 60, &err), HAI_OK);
    CHECK_EQ_INT(hai_context_n_past(ring), 0);
    feed(ring, 0, 70, 8, nv, got);
    CHECK_MSG(max_diff(want, got, (size_t)70 * nv) < 1e-4, "%s: evaluated again after starting over", arch);

    /* copies: within the rings, the copy decodes as the original; past them, refused */
    hai_context *two = ctx(m, 8, 2, true);
    if (two) {
        hai_batch b = {.n = 100, .tokens = toks};
        CHECK_EQ_INT(hai_decode(two, &b, &err), HAI_OK);
        CHECK_EQ_INT(hai_seq_copy(two, 0, 1, 95, &err), HAI_OK);
        int32_t seq1[5] = {1, 1, 1, 1, 1};
        bool all[5] = {1, 1, 1, 1, 1};
        hai_batch b1 = {.n = 5, .tokens = toks + 95, .seq = seq1, .logits = all};
        CHECK_EQ_INT(hai_decode(two, &b1, &err), HAI_OK);
        for (int j = 0; j < 5; j++) {
            const float *l = hai_batch_logits(two, (size_t)j);
            CHECK_MSG(l && max_diff(want + (size_t)(95 + j) * nv, l, (size_t)nv) < 1e-4, "%s: the copy's position %d", arch, 95 + j);
        }
        CHECK_EQ_INT(hai_seq_copy(two, 0, 1, 40, &err), HAI_ERR_INVALID);
        hai_context_free(two);
    }

    /* the prompt cache of hai_generate: a prompt sharing 112 tokens with the last one, then one
     * sharing 50 (past the rings), each decoded as a fresh context decodes it */
    for (int k = 0; k < 2; k++) {
        int shared = k ? 50 : 112;
        hai_token prompt[N];
        memcpy(prompt, toks, sizeof prompt);
        prompt[shared] = (prompt[shared] + 7) % 200 + 3;
        hai_generate_params gp = {.max_tokens = 6};
        hai_generate_result r1, r2;
        hai_context *fresh = ctx(m, 8, 1, false);
        if (!fresh) break;
        CHECK_EQ_INT(hai_generate(gen, toks, N, &gp, &r1, &err), HAI_OK); /* the cache holds toks */
        CHECK_EQ_INT(hai_generate(gen, prompt, N, &gp, &r1, &err), HAI_OK);
        CHECK_EQ_INT(hai_generate(fresh, prompt, N, &gp, &r2, &err), HAI_OK);
        CHECK_MSG(r1.n_cached == (k ? 0 : shared), "%s: %d tokens reused (shared %d)", arch, r1.n_cached, shared);
        uint32_t na = 0, nb = 0;
        const hai_token *ta = hai_context_tokens(gen, &na), *tb = hai_context_tokens(fresh, &nb);
        CHECK_MSG(na == nb && !memcmp(ta, tb, na * sizeof *ta), "%s: shared %d: the decoded tokens differ from a fresh context's", arch,
                  shared);
        hai_context_free(fresh);
    }
done:
    hai_context_free(plain);
    hai_context_free(ring);
    hai_context_free(gen);
    free(want), free(got);
    hai_model_free(m);
}

static void check_refusals(void) {
    char base[] = "/tmp/hai-swa-base-XXXXXX";
    int fd = mkstemp(base);
    if (!CHECK(fd >= 0)) return;
    close(fd);
    hai_synth_params sp = hai_synth_default_params();
    sp.arch = "gemma3";
    sp.n_layer = 1;
    hai_error err = {0};
    if (CHECK_MSG(hai_synth_write(base, &sp, &err) == HAI_OK, "%s", err.msg)) {
        refused_with_key(base, "gemma3.attn_logit_softcapping", NAN, false, "soft-capping nan");
        refused_with_key(base, "gemma3.final_logit_softcapping", -1, false, "soft-capping 0 / -1");
        refused_with_key(base, "gemma3.attention.sliding_window_pattern", 70000, true, "sliding_window_pattern 70000 is not plausible");
        refused_with_key(base, "gemma3.rope.freq_base_swa", INFINITY, false, "rope.freq_base_swa inf");
    }
    unlink(base);
}

int main(void) {
    check_refusals();
    for (int i = 0; i < N; i++) toks[i] = (hai_token)((i * 37 + 11) % 250 + 3);
    check_arch("gemma2");
    check_arch("gemma3");
    check_arch("phi3");
    return check_done("test_swa");
}
