/* hai embed: the embedding of a text (or of token ids) as JSON - the model's final hidden states
 * pooled (mean, first token, last token; by default as the model's file says) and normalized. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f) {
    fprintf(f, "usage: hai embed -m MODEL.gguf [--pooling mean|cls|last] [-t N] (TEXT | --ids \"ID ID ...\")\n"
               "  prints {\"model\", \"pooling\", \"n_tokens\", \"embedding\": [n_embd floats, L2-normalized]}\n");
}

int cmd_embed(int argc, char **argv) {
    const char *model = NULL, *text = NULL, *ids_text = NULL;
    int pooling = 0;
    int64_t threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (a[0] != '-') {
            text = a;
            continue;
        }
        if (!(v = cli_value(argc, argv, &i))) return 2;
        if (!strcmp(a, "-m")) model = v;
        else if (!strcmp(a, "--ids")) ids_text = v;
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
    if (!model || (!text == !ids_text)) {
        usage(stderr);
        return 2;
    }
    hai_error err = {0};
    hai_model *m = NULL;
    hai_context *c = NULL;
    hai_token *ids = NULL;
    float *e = NULL;
    size_t n = 0;
    int rc = 1;
    if (hai_model_load(model, NULL, &m, &err) != HAI_OK) goto fail;
    if (ids_text) {
        size_t cap = strlen(ids_text) / 2 + 1;
        ids = malloc(cap * sizeof *ids);
        char *end;
        for (const char *p = ids_text; ids && *p;) {
            long v = strtol(p, &end, 10);
            if (end == p) {
                if (*p == ' ' || *p == ',') { p++; continue; }
                fprintf(stderr, "hai embed: --ids: not a number at '%s'\n", p);
                goto out;
            }
            if (v < 0 || v >= hai_model_n_vocab(m)) {
                fprintf(stderr, "hai embed: --ids: %ld is not a token of this model (0..%d)\n", v, hai_model_n_vocab(m) - 1);
                goto out;
            }
            ids[n++] = (hai_token)v;
            p = end;
        }
    } else if (hai_tokenize_alloc(hai_model_tokenizer(m), text, strlen(text), HAI_TOKENIZE_ADD_SPECIAL, &ids, &n, &err) != HAI_OK) {
        goto fail;
    }
    hai_context_params cp = hai_context_default_params();
    cp.n_ctx = (uint32_t)(n + 1);
    cp.n_threads = (int)threads;
    uint32_t E = hai_model_n_embd(m);
    if (!(e = malloc(E * sizeof *e))) goto out;
    if (hai_context_create(m, &cp, &c, &err) != HAI_OK || hai_embed(c, ids, n, pooling, e, &err) != HAI_OK) goto fail;
    int used = pooling ? pooling : (int)hai_model_pooling(m);
    printf("{\"model\":\"%s\",\"pooling\":\"%s\",\"n_tokens\":%zu,\"embedding\":[", hai_model_desc(m),
           used == HAI_POOLING_MEAN ? "mean" : used == HAI_POOLING_CLS ? "cls" : "last", n);
    for (uint32_t k = 0; k < E; k++) printf("%s%.9g", k ? "," : "", e[k]);
    printf("]}\n");
    rc = 0;
    goto out;
fail:
    cli_error("embed", &err);
out:
    free(e);
    if (ids_text) free(ids);
    else hai_free(ids);
    hai_context_free(c);
    hai_model_free(m);
    return rc;
}
