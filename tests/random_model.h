/* A model with random weights for tests where only a grammar can make the output right: Qwen2's
 * layout, tiny (64 wide, one layer, Q8_0), loud weights (std 0.5) so its choices are far from a
 * grammar's, and a real vocabulary. Written to a temporary file, loaded, with a 2048-token context. */
#ifndef HAI_TEST_RANDOM_MODEL_H
#define HAI_TEST_RANDOM_MODEL_H

#include <unistd.h>

#include "check.h"

typedef struct random_model {
    char path[64];
    hai_model *m;
    hai_context *c;
} random_model;

/* false (with the failure checked) when it cannot be made; free with random_model_free either way. */
static inline bool random_model_open(random_model *r, const char *vocab_path) {
    memset(r, 0, sizeof *r);
    snprintf(r->path, sizeof r->path, "/tmp/hai-test-random-XXXXXX");
    int fd = mkstemp(r->path);
    if (!CHECK(fd >= 0)) return false;
    close(fd);
    hai_synth_params sp = hai_synth_default_params();
    sp.arch = "qwen2", sp.n_embd = 64, sp.n_layer = 1, sp.n_head = 2, sp.n_head_kv = 1, sp.n_ff = 128;
    sp.tied_output = true, sp.type = HAI_TYPE_Q8_0, sp.std = 0.5f, sp.vocab_path = vocab_path;
    hai_error err = {0};
    hai_context_params cp = hai_context_default_params();
    cp.n_ctx = 2048;
    return CHECK_MSG(hai_synth_write(r->path, &sp, &err) == HAI_OK, "%s", err.msg) &&
           CHECK_MSG(hai_model_load(r->path, NULL, &r->m, &err) == HAI_OK, "%s", err.msg) &&
           CHECK_MSG(hai_context_create(r->m, &cp, &r->c, &err) == HAI_OK, "%s", err.msg);
}

static inline void random_model_free(random_model *r) {
    hai_context_free(r->c);
    hai_model_free(r->m);
    if (r->path[0]) unlink(r->path);
    memset(r, 0, sizeof *r);
}

#endif
