/* The smallest app on libhai, built against the installed package:
 *   cc generate.c $(pkg-config --cflags --libs hai) -o generate
 *   ./generate MODEL.gguf "prompt" [max_tokens]
 * Loads a GGUF model, tokenizes the prompt, and streams up to max_tokens (default 32) greedy
 * tokens to stdout; errors are values with messages, as everywhere in hai.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hai.h>

static bool print_text(void *user, const char *text, size_t len) {
    (void)user;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return true; /* false would stop the generation */
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL.gguf PROMPT [MAX_TOKENS]\n", argv[0]);
        return 2;
    }
    hai_error err = {0};
    hai_model *m = NULL;
    hai_context *c = NULL;
    hai_token *ids = NULL;
    size_t n = 0;
    int rc = 1;
    if (hai_model_load(argv[1], NULL, &m, &err) != HAI_OK) goto out;
    if (hai_context_create(m, NULL, &c, &err) != HAI_OK) goto out;
    if (hai_tokenize_alloc(hai_model_tokenizer(m), argv[2], strlen(argv[2]), HAI_TOKENIZE_ADD_SPECIAL, &ids, &n, &err) != HAI_OK) goto out;
    hai_generate_params gp = {.max_tokens = argc > 3 ? atoi(argv[3]) : 32, .on_text = print_text};
    hai_generate_result res;
    if (hai_generate(c, ids, n, &gp, &res, &err) != HAI_OK) goto out;
    fprintf(stderr, "\n[hai %s: %s, %d tokens generated]\n", hai_version(), hai_model_desc(m), res.n_generated);
    rc = 0;
out:
    if (rc) fprintf(stderr, "error: %s\n", err.msg);
    hai_free(ids);
    hai_context_free(c);
    hai_model_free(m);
    return rc;
}
