/* Several sequences in one context (hai_decode): each sequence's logits must be the exact answer
 * of ../shared/reference as closely as a single sequence's are (KL and top-1 bars of
 * summary.json), and match the single-sequence path, whatever the interleaving: sequences fed in
 * chunks of different sizes in the same passes, passes split by n_batch, one token each per pass
 * (the server's decode step), a prompt shared by copy (hai_seq_copy), a sequence truncated and
 * continued, and the logits of only some tokens kept.
 * usage: test_batch SHARED_DIR */
#include <cjson/cJSON.h>

#include "check.h"
#include "logits_util.h"
#include "vocab_io.h"

enum { NSEQ = 4 };

static double limit_kl(const cJSON *summary, const char *name, double *min_top1) {
    const cJSON *e;
    cJSON_ArrayForEach(e, summary) if (!strcmp(cJSON_GetObjectItem(e, "file")->valuestring, name)) {
        *min_top1 = cJSON_GetObjectItem(e, "min_top1")->valuedouble;
        return cJSON_GetObjectItem(e, "max_kl")->valuedouble;
    }
    *min_top1 = 1;
    return 0;
}

/* The batch schedule: sequence s takes its tokens (seq_toks[s]) in chunks of size[s] per round. */
static void interleaved(hai_model *m, const hai_token *const *seq_toks, int n, const int *chunk, uint32_t n_batch, float **got) {
    hai_context_params cp = hai_context_default_params();
    cp.n_ctx = (uint32_t)n;
    cp.n_seq = NSEQ;
    cp.n_batch = n_batch;
    cp.logits_all = true;
    cp.n_threads = 2;
    hai_context *c = NULL;
    hai_error err = {0};
    if (!CHECK_MSG(hai_context_create(m, &cp, &c, &err) == HAI_OK, "%s", err.msg)) return;
    int nv = hai_model_n_vocab(m), fed[NSEQ] = {0};
    hai_token bt[NSEQ * 64];
    int32_t bs[NSEQ * 64];
    bool bl[NSEQ * 64];
    int pos_of[NSEQ * 64];
    for (;;) {
        size_t k = 0;
        for (int s = 0; s < NSEQ; s++)
            for (int i = 0; i < chunk[s] && fed[s] < n; i++, fed[s]++) {
                bt[k] = seq_toks[s][fed[s]], bs[k] = s, bl[k] = true, pos_of[k] = fed[s];
                k++;
            }
        if (!k) break;
        hai_batch b = {.n = k, .tokens = bt, .seq = bs, .logits = bl};
        if (!CHECK_MSG(hai_decode(c, &b, &err) == HAI_OK, "%s", err.msg)) break;
        for (size_t i = 0; i < k; i++) {
            const float *lg = hai_batch_logits(c, i);
            if (CHECK(lg != NULL)) memcpy(got[bs[i]] + (size_t)pos_of[i] * nv, lg, (size_t)nv * sizeof *lg);
        }
    }
    for (int s = 0; s < NSEQ; s++) CHECK_EQ_INT(hai_seq_n_past(c, s), n);
    hai_context_free(c);
}

int main(int argc, char **argv) {
    const char *shared = check_shared_dir(argc, argv);
    char path[4096];
    snprintf(path, sizeof path, "%s/reference/summary.json", shared);
    char *js = slurp(path, NULL);
    cJSON *summary = js ? cJSON_Parse(js) : NULL;
    free(js);
    if (!CHECK_MSG(summary != NULL, "cannot read %s", path)) return check_done("test_batch");
    hai_token toks[64];
    int n = read_tokens(shared, toks, 64);
    CHECK_EQ_INT(n, 64);
    const char *models[] = {"llama-s-Q8_0.gguf", "qwen3-s-F16.gguf", "qwen2-s-Q4_K_M.gguf"};
    for (int mi = 0; mi < 3; mi++) {
        char mp[4096], xp[4096];
        snprintf(mp, sizeof mp, "%s/reference/%s", shared, models[mi]);
        snprintf(xp, sizeof xp, "%s/reference/%.*s.exact.f32", shared, (int)strlen(models[mi]) - 5, models[mi]);
        float *exact = (float *)slurp(xp, NULL);
        hai_model *m = NULL;
        hai_error err = {0};
        if (!CHECK_MSG(exact && hai_model_load(mp, NULL, &m, &err) == HAI_OK, "%s: %s", models[mi], err.msg)) continue;
        int nv = hai_model_n_vocab(m);
        double min_top1, max_kl = limit_kl(summary, models[mi], &min_top1);
        /* sequences 1 and 3 hold other text (the tokens reversed): a pass that mixed sequences up
         * would show; their answer is the single-sequence path's on the same tokens */
        hai_token rev[64];
        for (int i = 0; i < n; i++) rev[i] = toks[n - 1 - i];
        const hai_token *seq_toks[NSEQ] = {toks, rev, toks, rev};
        float *single = run(m, toks, n, 1), *single_rev = run(m, rev, n, 1); /* the single-sequence decode path */
        float *got[NSEQ];
        for (int s = 0; s < NSEQ; s++) got[s] = calloc((size_t)n * nv, sizeof(float));
        /* chunk sizes per sequence per round; n_batch 512 (a round is one pass) and 3 (a round of
         * four tokens split in two passes, the logits kept across both) */
        const int schedules[3][NSEQ] = {{1, 1, 1, 1}, {7, 1, 3, 64}, {1, 1, 1, 1}};
        const uint32_t batches[3] = {512, 512, 3};
        for (int sc = 0; sc < 3; sc++) {
            interleaved(m, seq_toks, n, schedules[sc], batches[sc], got);
            for (int s = 0; s < NSEQ; s++) {
                if (s % 2 == 0) {
                    score r = compare(exact, got[s], n, nv);
                    CHECK_MSG(r.kl <= max_kl && r.top1 >= min_top1, "%s schedule %d sequence %d: KL %.3g (max %.3g), top1 %.3f", models[mi], sc, s,
                              r.kl, max_kl, r.top1);
                }
                const float *ref = s % 2 ? single_rev : single;
                score v = ref ? compare(ref, got[s], n, nv) : (score){1, 0};
                CHECK_MSG(v.kl < 1e-6 && v.top1 == 1, "%s schedule %d sequence %d: KL %.3g from the single-sequence path", models[mi], sc, s, v.kl);
            }
        }
        /* a shared prompt: sequence 0 takes 40 tokens, 2 and 3 copy them; each goes on differently
         * (2 the reference's own continuation, 3 truncated to 30 and re-fed from there); only the
         * last token's logits kept by default */
        hai_context_params cp = hai_context_default_params();
        cp.n_ctx = (uint32_t)n;
        cp.n_seq = NSEQ;
        cp.n_threads = 2;
        hai_context *c = NULL;
        if (CHECK(hai_context_create(m, &cp, &c, &err) == HAI_OK)) {
            hai_batch b = {.n = 40, .tokens = toks};
            CHECK_EQ_INT(hai_decode(c, &b, &err), HAI_OK);
            CHECK(hai_batch_logits(c, 38) == NULL && hai_batch_logits(c, 39) != NULL);
            CHECK_EQ_INT(hai_seq_copy(c, 0, 2, 40, &err), HAI_OK);
            CHECK_EQ_INT(hai_seq_copy(c, 0, 3, 40, &err), HAI_OK);
            CHECK_EQ_INT(hai_seq_truncate(c, 3, 30, &err), HAI_OK);
            hai_token bt[64];
            int32_t bs[64];
            size_t k = 0;
            for (int i = 40; i < n; i++) bt[k] = toks[i], bs[k++] = 2;
            for (int i = 30; i < n; i++) bt[k] = toks[i], bs[k++] = 3;
            hai_batch b2 = {.n = k, .tokens = bt, .seq = bs};
            CHECK_EQ_INT(hai_decode(c, &b2, &err), HAI_OK);
            const float *l2 = hai_batch_logits(c, (size_t)(n - 40) - 1), *l3 = hai_batch_logits(c, k - 1);
            CHECK(l2 && l3 && hai_batch_logits(c, 0) == NULL);
            if (l2 && l3) {
                score a = compare(exact + (size_t)(n - 1) * nv, l2, 1, nv), d = compare(exact + (size_t)(n - 1) * nv, l3, 1, nv);
                CHECK_MSG(a.kl <= max_kl && d.kl <= max_kl && a.top1 == 1 && d.top1 == 1, "%s: copied prefix KL %.3g / truncated %.3g", models[mi], a.kl,
                          d.kl);
            }
            uint32_t held;
            const hai_token *t3 = hai_seq_tokens(c, 3, &held);
            CHECK(held == (uint32_t)n && t3 && !memcmp(t3, toks, (size_t)n * sizeof *toks));
            /* errors: a sequence out of range, one that would overflow, too many logits */
            int32_t bad_seq = NSEQ;
            hai_batch bb = {.n = 1, .tokens = toks, .seq = &bad_seq};
            CHECK_EQ_INT(hai_decode(c, &bb, &err), HAI_ERR_INVALID);
            hai_batch full = {.n = 1, .tokens = toks, .seq = (int32_t[]){2}};
            CHECK_EQ_INT(hai_decode(c, &full, &err), HAI_ERR_LIMIT);
            hai_context_free(c);
        }
        for (int s = 0; s < NSEQ; s++) free(got[s]);
        free(single);
        free(single_rev);
        free(exact);
        hai_model_free(m);
    }
    cJSON_Delete(summary);
    return check_done("test_batch");
}
