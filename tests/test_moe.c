/* Mixture-of-experts models (qwen2moe, qwen3moe) beyond the reference logits:
 *   - several sequences in one batch (their tokens grouped by expert together) give each
 *     sequence the logits it gets alone, one token at a time;
 *   - the bytes a decode step reads count only the chosen experts' share of the expert tensors;
 *   - implausible expert metadata (no experts, more used than there are, a gating other than
 *     softmax, a count the tensors do not have) is refused at load, naming it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "edit_model.h"
#include "hai.h"

#define NSEQ 3
#define NTOK 24

static hai_context *ctx(const hai_model *m, uint32_t n_seq, bool logits_all) {
    hai_context_params cp = hai_context_default_params();
    cp.n_ctx = 64;
    cp.n_batch = 128;
    cp.n_threads = 2;
    cp.n_seq = n_seq;
    cp.logits_all = logits_all;
    hai_context *c = NULL;
    hai_error err = {0};
    CHECK_MSG(hai_context_create(m, &cp, &c, &err) == HAI_OK, "%s", err.msg);
    return c;
}

/* The sequences' tokens interleaved in one batch (all logits kept) against each alone. */
static void check_batched(const hai_model *m) {
    int nv = hai_model_n_vocab(m);
    hai_token toks[NSEQ * NTOK];
    int32_t seq[NSEQ * NTOK];
    bool keep[NSEQ * NTOK];
    for (int i = 0; i < NTOK; i++)
        for (int s = 0; s < NSEQ; s++) {
            toks[i * NSEQ + s] = (hai_token)((i * 31 + s * 101 + 7) % 250 + 3);
            seq[i * NSEQ + s] = s;
            keep[i * NSEQ + s] = true;
        }
    hai_context *all = ctx(m, NSEQ, true), *one = ctx(m, 1, false);
    float *got = malloc((size_t)NSEQ * NTOK * nv * sizeof *got);
    hai_error err = {0};
    if (all && one && got) {
        hai_batch b = {NSEQ * NTOK, toks, seq, keep};
        if (CHECK_MSG(hai_decode(all, &b, &err) == HAI_OK, "%s", err.msg))
            for (int i = 0; i < NSEQ * NTOK; i++) memcpy(got + (size_t)i * nv, hai_batch_logits(all, (size_t)i), (size_t)nv * sizeof *got);
        double worst = 0;
        for (int s = 0; s < NSEQ; s++) {
            CHECK_EQ_INT(hai_context_truncate(one, 0, &err), HAI_OK);
            for (int i = 0; i < NTOK; i++) {
                if (!CHECK_MSG(hai_eval(one, &toks[i * NSEQ + s], 1, &err) == HAI_OK, "%s", err.msg)) break;
                const float *a = hai_logits(one, 0), *g = got + (size_t)(i * NSEQ + s) * nv;
                for (int v = 0; v < nv; v++) worst = fmax(worst, fabs((double)a[v] - g[v]));
            }
        }
        /* the same weights and inputs; only the matmul path differs (batched vs one token) */
        CHECK_MSG(worst < 2e-3, "%s: batched logits differ from one-at-a-time by %g", hai_model_arch(m), worst);
    }
    free(got);
    hai_context_free(all);
    hai_context_free(one);
}

/* Decode reads every weight but the embedding table, and of the experts only n_used / n_expert. */
static void check_decode_bytes(const hai_model *m, const char *path, uint32_t n_expert, uint32_t n_used) {
    hai_gguf *g = NULL;
    hai_error err = {0};
    if (!CHECK_MSG(hai_gguf_open(path, &g, &err) == HAI_OK, "%s", err.msg)) return;
    uint64_t dense = 0, experts = 0;
    for (int64_t i = 0; i < hai_gguf_n_tensors(g); i++) {
        const hai_gguf_tensor *t = hai_gguf_tensor_at(g, i);
        if (!strcmp(t->name, "token_embd.weight")) continue; /* not tied here: looked up a row at a time */
        if (strstr(t->name, "_exps.")) experts += t->size;
        else dense += t->size;
    }
    uint64_t want = dense + experts / n_expert * n_used;
    CHECK_MSG(hai_model_decode_bytes(m) == want, "%s: decode bytes %llu, want %llu", hai_model_arch(m),
              (unsigned long long)hai_model_decode_bytes(m), (unsigned long long)want);
    CHECK(experts > dense); /* the test means something: most bytes are the experts' */
    hai_gguf_free(g);
}

static void check_arch(const char *arch, uint32_t n_expert, uint32_t n_used) {
    char path[] = "/tmp/hai-moe-XXXXXX";
    int fd = mkstemp(path);
    if (!CHECK(fd >= 0)) return;
    close(fd);
    hai_synth_params sp = hai_synth_default_params();
    sp.arch = arch, sp.n_layer = 2, sp.type = HAI_TYPE_Q8_0, sp.std = 0.05f;
    sp.n_expert = n_expert, sp.n_expert_used = n_used, sp.n_ff_exp = 256;
    hai_error err = {0};
    hai_model *m = NULL;
    if (CHECK_MSG(hai_synth_write(path, &sp, &err) == HAI_OK, "%s", err.msg) &&
        CHECK_MSG(hai_model_load(path, NULL, &m, &err) == HAI_OK, "%s", err.msg)) {
        check_batched(m);
        check_decode_bytes(m, path, n_expert, n_used);
        char key[64];
        snprintf(key, sizeof key, "%s.expert_count", arch);
        refused_with_key(path, key, 0, true, "experts 0, used");
        refused_with_key(path, key, n_expert + 1, true, "ffn_gate_inp.weight' has shape");
        snprintf(key, sizeof key, "%s.expert_used_count", arch);
        refused_with_key(path, key, n_expert + 1, true, "are not usable");
        snprintf(key, sizeof key, "%s.expert_gating_func", arch);
        refused_with_key(path, key, 2, true, "expert_gating_func 2 is not supported");
        snprintf(key, sizeof key, "%s.expert_feed_forward_length", arch);
        refused_with_key(path, key, 96, true, "ffn_gate_exps.weight' has shape");
    }
    hai_model_free(m);
    unlink(path);
}

int main(void) {
    check_arch("qwen2moe", 8, 2);
    check_arch("qwen3moe", 12, 4);
    return check_done("test_moe");
}
