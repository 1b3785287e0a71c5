// llama.cpp as an oracle beside hai: the logits of every position of the reference tokens, one
// batch, as float32 rows (n_tokens x n_vocab) - the layout of the .exact.f32 files. Built against a
// llama.cpp checkout outside this project (tools/reference/llamacpp_kl.sh); nothing of llama.cpp
// is in hai. Written against llama.h of February 2025 (llama_model_load_from_file, llama_vocab).
// usage: llamacpp_logits MODEL.gguf TOKENS.txt OUT.f32 [THREADS]
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "llama.h"

// only what went wrong: the reason llama.cpp refuses a file
static void errors_only(ggml_log_level level, const char *text, void *) {
    if (level == GGML_LOG_LEVEL_ERROR) fputs(text, stderr);
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL.gguf TOKENS.txt OUT.f32 [THREADS]\n", argv[0]);
        return 2;
    }
    std::vector<llama_token> toks;
    FILE *tf = fopen(argv[2], "r");
    long v;
    while (tf && fscanf(tf, "%ld", &v) == 1) toks.push_back((llama_token)v);
    if (tf) fclose(tf);
    if (toks.empty()) {
        fprintf(stderr, "%s: no tokens\n", argv[2]);
        return 1;
    }
    llama_log_set(errors_only, nullptr);
    llama_backend_init();
    llama_model_params mp = llama_model_default_params();
    llama_model *model = llama_model_load_from_file(argv[1], mp);
    if (!model) {
        fprintf(stderr, "%s: llama.cpp cannot load it\n", argv[1]);
        return 1;
    }
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t)toks.size();
    cp.n_batch = cp.n_ubatch = (uint32_t)toks.size();
    cp.n_threads = cp.n_threads_batch = argc > 4 ? atoi(argv[4]) : 2;
    llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx) {
        fprintf(stderr, "%s: no context\n", argv[1]);
        return 1;
    }
    const int n = (int)toks.size(), nv = llama_vocab_n_tokens(llama_model_get_vocab(model));
    llama_batch b = llama_batch_init(n, 0, 1);
    for (int i = 0; i < n; i++) {
        b.token[i] = toks[i];
        b.pos[i] = i;
        b.n_seq_id[i] = 1;
        b.seq_id[i][0] = 0;
        b.logits[i] = 1;
    }
    b.n_tokens = n;
    if (llama_decode(ctx, b)) {
        fprintf(stderr, "%s: llama_decode failed\n", argv[1]);
        return 1;
    }
    FILE *out = fopen(argv[3], "wb");
    for (int i = 0; out && i < n; i++) fwrite(llama_get_logits_ith(ctx, i), sizeof(float), (size_t)nv, out);
    if (!out || fclose(out)) {
        fprintf(stderr, "%s: cannot write\n", argv[3]);
        return 1;
    }
    llama_batch_free(b);
    llama_free(ctx);
    llama_model_free(model);
    return 0;
}
