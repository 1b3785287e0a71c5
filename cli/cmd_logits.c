/* hai logits: evaluates token ids as one sequence and writes the logits of every position
 * (little-endian float32, [n_tokens][n_vocab]), the layout of ../shared/reference. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f) {
    fprintf(f, "usage: hai logits -m MODEL.gguf --tokens FILE -o OUT.f32 [--batch N] [-t THREADS]\n"
               "  --tokens FILE   token ids, whitespace separated, evaluated from position 0\n"
               "  --batch N       tokens per forward pass (1 = one at a time; default: all at once)\n");
}

int cmd_logits(int argc, char **argv) {
    const char *model = NULL, *tokens_path = NULL, *out_path = NULL;
    int64_t batch = 0, threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!(v = cli_value(argc, argv, &i))) return 2;
        if (!strcmp(a, "-m")) model = v;
        else if (!strcmp(a, "--tokens")) tokens_path = v;
        else if (!strcmp(a, "-o")) out_path = v;
        else if (!strcmp(a, "--batch")) {
            if (!cli_parse_i64(a, v, 1, 1 << 20, &batch)) return 2;
        } else if (!strcmp(a, "-t")) {
            if (!cli_parse_i64(a, v, 1, 256, &threads)) return 2;
        } else {
            fprintf(stderr, "hai logits: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!model || !tokens_path || !out_path) {
        usage(stderr);
        return 2;
    }
    hai_error err = {0};
    hai_model *m = NULL;
    hai_context *c = NULL;
    int rc = 1;
    hai_token *toks = NULL;
    size_t n = 0;
    if (hai_model_load(model, NULL, &m, &err) != HAI_OK) goto fail;
    char *ttext = cli_read_file(tokens_path, NULL);
    if (!ttext) {
        fprintf(stderr, "hai logits: cannot read %s\n", tokens_path);
        goto out;
    }
    bool ok = cli_parse_ids("logits", tokens_path, ttext, hai_model_n_vocab(m), &toks, &n);
    free(ttext);
    if (!ok) goto out;
    hai_context_params cp = hai_context_default_params();
    cp.n_ctx = (uint32_t)(n > 16 ? n : 16);
    cp.n_batch = (uint32_t)(batch ? (size_t)batch : n);
    cp.n_threads = (int)threads;
    cp.logits_all = true;
    if (hai_context_create(m, &cp, &c, &err) != HAI_OK) goto fail;
    FILE *of = fopen(out_path, "wb");
    if (!of) {
        fprintf(stderr, "hai logits: cannot write %s\n", out_path);
        goto out;
    }
    size_t nv = (size_t)hai_model_n_vocab(m);
    for (size_t done = 0; done < n;) {
        size_t k = n - done < cp.n_batch ? n - done : cp.n_batch;
        if (hai_eval(c, toks + done, k, &err) != HAI_OK) {
            fclose(of);
            goto fail;
        }
        for (size_t i = 0; i < k; i++) fwrite(hai_logits(c, (int32_t)i), sizeof(float), nv, of);
        done += k;
    }
    if (fclose(of) != 0) {
        fprintf(stderr, "hai logits: write to %s failed\n", out_path);
        goto out;
    }
    fprintf(stderr, "hai logits: %zu positions x %zu logits -> %s (%s kernels)\n", n, nv, out_path, hai_kernels_name());
    rc = 0;
    goto out;
fail:
    cli_error("logits", &err);
out:
    hai_context_free(c);
    hai_model_free(m);
    free(toks);
    return rc;
}
