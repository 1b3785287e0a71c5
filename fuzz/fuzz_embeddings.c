/* libFuzzer target: the body of POST /v1/embeddings (src/server/embeddings.c) on a tiny synthetic
 * model (byte-level vocabulary, so any string tokenizes). Every body must get a JSON answer - the
 * list or an error - with a status of 200 or 400; a crash, a leak, a read out of bounds or a
 * 500 (which only out of memory may give) is a bug. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "hai.h"
#include "server/embeddings.h"

static srv_embedder *emb;

static void setup(void) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/hai-fuzz-embed-%d.gguf", (int)getpid());
    hai_synth_params p = hai_synth_default_params();
    p.n_embd = 32, p.n_layer = 1, p.n_head = 2, p.n_head_kv = 1, p.n_ff = 64, p.n_ctx_train = 64;
    hai_error err = {0};
    hai_model *m = NULL;
    if (hai_synth_write(path, &p, &err) != HAI_OK || hai_model_load(path, NULL, &m, &err) != HAI_OK) {
        fprintf(stderr, "fuzz_embeddings: cannot make the model: %s\n", err.msg);
        abort(); /* the harness itself is broken, not the input */
    }
    unlink(path);
    if (!(emb = srv_embedder_new(m, 48, 1))) abort(); /* the model lives as long as the process */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!emb) setup();
    int status = 0;
    char *body = srv_embeddings(emb, "m", (const char *)data, size, &status);
    if (!body) abort();
    cJSON *j = cJSON_Parse(body);
    if (!cJSON_IsObject(j) || (status != 200 && status != 400)) {
        fprintf(stderr, "fuzz_embeddings: status %d, body %.300s\n", status, body);
        abort();
    }
    cJSON_Delete(j);
    free(body);
    return 0;
}
