/* hai embed: the embedding of a text (or of token ids) as JSON - the model's final hidden states
 * pooled (mean, first token, last token; by default as the model's file says) and normalized. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f) {
    fprintf(f, "usage: hai embed -m MODEL.gguf [--pooling mean|cls|last] [-t N] (TEXT | --ids \"ID ID ...\")...\n"
               "  prints, for each input in order, a line {\"model\", \"pooling\", \"n_tokens\", \"embedding\": [n_embd\n"
               "  floats, L2-normalized]}; several inputs share forward passes (hai_embed_batch, up to 4 a pass)\n");
}

#define MAX_INPUTS 4096

int cmd_embed(int argc, char **argv) {
    const char *model = NULL;
    const char *in[MAX_INPUTS]; /* the inputs in order: a text, or token ids */
    bool is_ids[MAX_INPUTS];
    size_t n_in = 0;
    int pooling = 0;
    int64_t threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (a[0] != '-' || (!strcmp(a, "--ids") && i + 1 < argc)) {
            if (n_in == MAX_INPUTS) {
                fprintf(stderr, "hai embed: at most %d inputs\n", MAX_INPUTS);
                return 2;
            }
            is_ids[n_in] = a[0] == '-';
            in[n_in++] = a[0] == '-' ? argv[++i] : a;
            continue;
        }
        if (!(v = cli_value(argc, argv, &i))) return 2;
        if (!strcmp(a, "-m")) model = v;
        else if (!strcmp(a, "-t")) { if (!cli_parse_i64(a, v, 1, 256, &threads)) return 2; }
        else if (!strcmp(a, "--pooling")) {
            pooling = !strcmp(v, "mean") ? HAI_POOLING_MEAN : !strcmp(v, "cls") ? HAI_POOLING_CLS : !strcmp(v, "last") ? HAI_POOLING_LAST : -1;
            if (pooling < 0) {
                fprintf(stderr, "hai embed: --pooling is mean, cls or last (got '%s')\n", v);
                return 2;
            }
        } else {
            fprintf(stderr, "hai embed: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!model || !n_in) {
        usage(stderr);
        return 2;
    }
    hai_error err = {0};
    hai_model *m = NULL;
    hai_context *c = NULL;
    hai_token *ids[MAX_INPUTS] = {0};
    size_t lens[MAX_INPUTS] = {0}, longest = 0;
    float *e = NULL;
    int rc = 1;
    if (hai_model_load(model, NULL, &m, &err) != HAI_OK) goto fail;
    for (size_t k = 0; k < n_in; k++) {
        if (is_ids[k]) {
            if (!cli_parse_ids("embed", "--ids", in[k], hai_model_n_vocab(m), &ids[k], &lens[k])) goto out;
        } else if (hai_tokenize_alloc(hai_model_tokenizer(m), in[k], strlen(in[k]), HAI_TOKENIZE_ADD_SPECIAL, &ids[k], &lens[k], &err) != HAI_OK) {
            goto fail;
        } else if (!lens[k]) {
            fprintf(stderr, "hai embed: input %zu has no tokens\n", k + 1);
            goto out;
        }
        if (lens[k] > longest) longest = lens[k];
    }
    hai_context_params cp = hai_context_default_params();
    cp.n_ctx = (uint32_t)(longest + 1);
    cp.n_threads = (int)threads;
    cp.n_seq = n_in < 4 ? (uint32_t)n_in : 4;
    uint32_t E = hai_model_n_embd(m);
    if (!(e = malloc(n_in * E * sizeof *e))) {
        fprintf(stderr, "hai embed: out of memory\n");
        goto out;
    }
    if (hai_context_create(m, &cp, &c, &err) != HAI_OK ||
        hai_embed_batch(c, (const hai_token *const *)ids, lens, n_in, pooling, e, &err) != HAI_OK)
        goto fail;
    int used = pooling ? pooling : (int)hai_model_pooling(m);
    for (size_t k = 0; k < n_in; k++) {
        printf("{\"model\":\"%s\",\"pooling\":\"%s\",\"n_tokens\":%zu,\"embedding\":[", hai_model_desc(m),
               used == HAI_POOLING_MEAN ? "mean" : used == HAI_POOLING_CLS ? "cls" : "last", lens[k]);
        for (uint32_t j = 0; j < E; j++) printf("%s%.9g", j ? "," : "", e[k * E + j]);
        printf("]}\n");
    }
    rc = 0;
    goto out;
fail:
    cli_error("embed", &err);
out:
    free(e);
    for (size_t k = 0; k < n_in; k++) hai_free(ids[k]); /* malloc'd, either way */
    hai_context_free(c);
    hai_model_free(m);
    return rc;
}
