/* libFuzzer target: the grammar engine (src/model/grammar) on arbitrary input. The first byte picks the
 * mode: GBNF text, or a JSON Schema converted to GBNF; after a NUL, text to feed the grammar.
 * Invariants (abort = finding): a compile either succeeds or fails with a message; GBNF made from
 * a schema always compiles (or hits a size limit); the mask (on a real 32K vocabulary) agrees
 * with the direct check of a sample of tokens; completion and end-of-generation agree; nothing
 * leaks, crashes or hangs (libFuzzer's timeout). */
#include <stdlib.h>
#include <string.h>

#include "fuzz_vocab.h"

static hai_tokenizer *tok;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    static const char *const names[] = {"llama-spm"};
    fuzz_load_vocabs("fuzz_grammar", names, 1, &tok);
    return 0;
}

static void check_mask(hai_grammar *g, const uint8_t *data, size_t size) {
    const uint32_t *bits;
    hai_error err = {0};
    hai_status st = hai_grammar_allowed(g, &bits, &err);
    if (st) {
        if (st != HAI_ERR_LIMIT || !err.msg[0]) abort();
        return;
    }
    int32_t nv = hai_tokenizer_n_vocab(tok);
    size_t words = ((size_t)nv + 31) / 32;
    uint32_t *copy = malloc(words * sizeof *copy);
    if (!copy) abort();
    memcpy(copy, bits, words * sizeof *copy);
    uint32_t h = 2166136261u; /* a sample of tokens that depends on the input */
    for (size_t i = 0; i < size; i++) h = (h ^ data[i]) * 16777619u;
    for (int k = 0; k < 64; k++) {
        h = h * 1103515245u + 12345u;
        hai_token t = (hai_token)(h % (uint32_t)nv);
        bool on = copy[t >> 5] >> (t & 31) & 1;
        if (on != hai_grammar_allows(g, t)) abort();
    }
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    bool schema = data[0] & 1;
    const char *body = (const char *)data + 1;
    size_t n = size - 1;
    const char *nul = memchr(body, 0, n);
    size_t glen = nul ? (size_t)(nul - body) : n;
    const char *text = nul ? nul + 1 : NULL;
    size_t tlen = nul ? n - glen - 1 : 0;
    hai_error err = {0};
    char *gbnf = NULL;
    if (schema) {
        hai_status st = hai_json_schema_to_gbnf(body, glen, &gbnf, &err);
        if (st) {
            if (gbnf || !err.msg[0]) abort();
            return 0;
        }
    }
    hai_grammar *g = NULL;
    hai_status st = hai_grammar_create(tok, gbnf ? gbnf : body, gbnf ? strlen(gbnf) : glen, NULL, &g, &err);
    if (st) {
        if (g || !err.msg[0]) abort();
        if (gbnf && st != HAI_ERR_LIMIT && st != HAI_ERR_NOMEM) abort(); /* the converter wrote GBNF that does not compile */
        free(gbnf);
        return 0;
    }
    free(gbnf);
    check_mask(g, data, size);
    if (text && tlen) {
        st = hai_grammar_accept_text(g, text, tlen, &err);
        if (st && !err.msg[0]) abort();
        if (!st) check_mask(g, data, size);
    }
    /* the end token is allowed exactly when the grammar is complete */
    hai_token eos = hai_tokenizer_special(tok, HAI_SPECIAL_EOS);
    if (eos >= 0 && hai_grammar_allows(g, eos) != hai_grammar_complete(g)) abort();
    hai_grammar_free(g);
    return 0;
}
