/* The fuzz targets' vocabularies: real tokenizers from $HAI_SHARED_DIR/vocab (ggml-vocab-NAME.gguf).
 * A missing one ends the run at start-up, loudly: a target without its data tests nothing. */
#ifndef HAI_FUZZ_VOCAB_H
#define HAI_FUZZ_VOCAB_H

#include <stdio.h>
#include <stdlib.h>

#include "hai.h"

static void fuzz_load_vocabs(const char *who, const char *const *names, int n, hai_tokenizer **out) {
    const char *dir = getenv("HAI_SHARED_DIR");
    for (int i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/vocab/ggml-vocab-%s.gguf", dir ? dir : "../shared", names[i]);
        hai_gguf *g;
        hai_error err = {0};
        if (hai_gguf_open(path, &g, &err) != HAI_OK || hai_tokenizer_from_gguf(g, &out[i], &err) != HAI_OK) {
            fprintf(stderr, "%s: %s (set HAI_SHARED_DIR)\n", who, err.msg);
            abort();
        }
        hai_gguf_free(g);
    }
}

#endif
