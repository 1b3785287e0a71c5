/* Embeddings one at a time (hai_embed) against batched (hai_embed_batch, S inputs a forward pass):
 * texts per second on the same inputs, and the largest difference between the two vectors.
 * usage: bench_embed MODEL.gguf [N_INPUTS=32] [TOKENS=48] [THREADS=2] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "hai.h"

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL.gguf [N_INPUTS] [TOKENS] [THREADS]\n", argv[0]);
        return 2;
    }
    int n_in = argc > 2 ? atoi(argv[2]) : 32, len = argc > 3 ? atoi(argv[3]) : 48, threads = argc > 4 ? atoi(argv[4]) : 2;
    if (n_in < 1 || len < 1) return 2;
    hai_error err = {0};
    hai_model *m = NULL;
    if (hai_model_load(argv[1], NULL, &m, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    int32_t nv = hai_model_n_vocab(m);
    uint32_t E = hai_model_n_embd(m);
    hai_token **ids = malloc((size_t)n_in * sizeof *ids);
    size_t *lens = malloc((size_t)n_in * sizeof *lens);
    float *one = malloc((size_t)n_in * E * sizeof *one), *many = malloc((size_t)n_in * E * sizeof *many);
    for (int i = 0; i < n_in; i++) { /* lengths from len/2 to len, ids spread over the vocabulary */
        lens[i] = (size_t)(len / 2 + (i * 7919) % (len / 2 + 1));
        if (!lens[i]) lens[i] = 1;
        ids[i] = malloc(lens[i] * sizeof **ids);
        for (size_t j = 0; j < lens[i]; j++) ids[i][j] = (hai_token)((17 + 7919 * (i * 131 + (int)j)) % (nv - 3) + 3);
    }
    printf("%s: %d inputs of %d-%d tokens, %d threads, %s kernels\n", hai_model_desc(m), n_in, len / 2, len, threads, hai_kernels_name());
    int seqs[] = {1, 4, 8};
    double t_one = 0;
    for (int k = 0; k < 3; k++) {
        hai_context_params cp = hai_context_default_params();
        cp.n_ctx = (uint32_t)len + 1, cp.n_threads = threads, cp.n_seq = (uint32_t)seqs[k];
        hai_context *c = NULL;
        if (hai_context_create(m, &cp, &c, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        double best = 1e9;
        for (int rep = 0; rep < 3; rep++) {
            double t0 = hai_time_s();
            hai_status st = HAI_OK;
            if (seqs[k] == 1)
                for (int i = 0; i < n_in && !st; i++) st = hai_embed(c, ids[i], lens[i], 0, one + (size_t)i * E, &err);
            else
                st = hai_embed_batch(c, (const hai_token *const *)ids, lens, (size_t)n_in, 0, many, &err);
            if (st) {
                fprintf(stderr, "%s\n", err.msg);
                return 1;
            }
            double dt = hai_time_s() - t0;
            if (dt < best) best = dt;
        }
        if (seqs[k] == 1) t_one = best;
        double diff = 0;
        for (size_t i = 0; seqs[k] > 1 && i < (size_t)n_in * E; i++) diff = fmax(diff, fabs(one[i] - many[i]));
        printf("  %s: %.3f s, %.1f texts/s%s", seqs[k] == 1 ? "one at a time      " : seqs[k] == 4 ? "batched, 4 a pass  " : "batched, 8 a pass  ",
               best, n_in / best, seqs[k] == 1 ? "\n" : "");
        if (seqs[k] > 1) printf(" (%.2fx), largest difference %.2g; KV and scratch %.1f MiB\n", t_one / best, diff, hai_context_memory_bytes(c) / 1048576.0);
        hai_context_free(c);
    }
    for (int i = 0; i < n_in; i++) free(ids[i]);
    free(ids), free(lens), free(one), free(many);
    hai_model_free(m);
    return 0;
}
