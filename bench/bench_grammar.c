/* Constrained decoding's cost per token: for each schema of a set (forms, orders, device
 * commands, nested arrays, enums, integer bounds, a recursive tree, any JSON object), outputs are
 * generated token by token on a real vocabulary with random logits (a model with random weights:
 * the grammar alone keeps them valid), sampled as apps sample (temperature 1, top_p 1). Timed per
 * token: the mask (hai_grammar_allowed) and its application to the logits, i.e. everything
 * constrained decoding adds to a step. Reports mean / p50 / p99 / max, the first token of each
 * output apart (it builds the caches), and checks every output parses as JSON.
 * usage: bench_grammar VOCAB.gguf [outputs per schema (default 20)] */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hai.h"
#include "kernels/kernels.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static const char *const schemas[][2] = {
    {"form", "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"maxLength\":40},\"email\":{\"type\":\"string\"},"
             "\"age\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":130},\"newsletter\":{\"type\":\"boolean\"}},"
             "\"required\":[\"name\",\"email\",\"age\"],\"additionalProperties\":false}"},
    {"order", "{\"type\":\"object\",\"properties\":{\"drink\":{\"enum\":[\"espresso\",\"latte\",\"cappuccino\",\"flat white\"]},"
              "\"size\":{\"enum\":[\"small\",\"medium\",\"large\"]},\"milk\":{\"type\":[\"string\",\"null\"]},"
              "\"extras\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"maxItems\":3},\"quantity\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":10}},"
              "\"required\":[\"drink\",\"size\",\"quantity\"],\"additionalProperties\":false}"},
    {"command", "{\"type\":\"object\",\"properties\":{\"action\":{\"enum\":[\"set_timer\",\"convert\",\"call\",\"navigate\"]},"
                "\"arguments\":{\"type\":\"object\",\"properties\":{\"minutes\":{\"type\":\"integer\"},\"target\":{\"type\":\"string\"},"
                "\"when\":{\"type\":\"string\",\"format\":\"date-time\"}}},\"confirm\":{\"type\":\"boolean\"}},\"required\":[\"action\",\"arguments\"]}"},
    {"table", "{\"type\":\"array\",\"minItems\":1,\"maxItems\":8,\"items\":{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"integer\"},"
              "\"label\":{\"type\":\"string\"},\"score\":{\"type\":\"number\"},\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}}},"
              "\"required\":[\"id\",\"label\",\"score\"]}}"},
    {"tree", "{\"$defs\":{\"node\":{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},\"children\":{\"type\":\"array\","
             "\"items\":{\"$ref\":\"#/$defs/node\"},\"maxItems\":2}},\"required\":[\"name\"]}},\"$ref\":\"#/$defs/node\"}"},
    {"json_object", "{\"type\":\"object\"}"},
};

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_grammar VOCAB.gguf [outputs per schema]\n");
        return 2;
    }
    int runs = argc > 2 ? atoi(argv[2]) : 20;
    hai_error err = {0};
    hai_gguf *gg;
    hai_tokenizer *tok;
    if (hai_gguf_open(argv[1], &gg, &err) || hai_tokenizer_from_gguf(gg, &tok, &err)) {
        fprintf(stderr, "bench_grammar: %s\n", err.msg);
        return 1;
    }
    int32_t nv = hai_tokenizer_n_vocab(tok);
    bool (*mask)(int64_t, float *, const uint32_t *) = hai_kernels_best()->logits_mask ? hai_kernels_best()->logits_mask : hai_kernels_ref()->logits_mask;
    float *logits = malloc((size_t)nv * sizeof *logits), *base = malloc((size_t)nv * sizeof *base);
    size_t cap_t = 1 << 20, n_all = 0;
    double *all = malloc(cap_t * sizeof *all), *first = malloc(1024 * sizeof *first);
    int n_first = 0, bad = 0, truncated = 0;
    char *piece = malloc(hai_tokenizer_max_piece(tok) + 16);
    uint64_t rs = 42;
    double t_trie = now();
    { /* the vocabulary trie is built on the first grammar of a tokenizer: timed apart */
        hai_grammar *g0;
        if (hai_grammar_create(tok, "root ::= \"x\"", 12, NULL, &g0, &err)) {
            fprintf(stderr, "bench_grammar: %s\n", err.msg);
            return 1;
        }
        hai_grammar_free(g0);
    }
    t_trie = now() - t_trie;
    printf("vocabulary: %d tokens (%s); trie built in %.1f ms\n\n", nv, hai_tokenizer_pre(tok), t_trie * 1e3);
    printf("%-12s %7s %9s %9s %9s %9s %10s %8s\n", "schema", "tokens", "mean us", "p50 us", "p99 us", "max us", "first ms", "walks");
    for (size_t s = 0; s < sizeof schemas / sizeof *schemas; s++) {
        char *gbnf;
        if (hai_json_schema_to_gbnf(schemas[s][1], strlen(schemas[s][1]), &gbnf, &err)) {
            fprintf(stderr, "bench_grammar: %s: %s\n", schemas[s][0], err.msg);
            return 1;
        }
        size_t n0 = n_all;
        uint64_t walks = 0;
        double first_sum = 0;
        for (int r = 0; r < runs; r++) {
            hai_grammar *g;
            if (hai_grammar_create(tok, gbnf, strlen(gbnf), NULL, &g, &err)) {
                fprintf(stderr, "bench_grammar: %s: %s\n", schemas[s][0], err.msg);
                return 1;
            }
            hai_sampler_params sp = hai_sampler_default_params();
            sp.temperature = 1, sp.top_p = 1, sp.top_k = 0, sp.min_p = 0, sp.seed = (uint64_t)r * 7919 + s;
            hai_sampler *smp;
            hai_sampler_create(&sp, nv, &smp, &err);
            char *text = malloc(1 << 16);
            size_t tl = 0;
            bool done = false;
            for (int step = 0; step < 1000 && !done; step++) {
                for (int32_t i = 0; i < nv; i++) { /* a random model's logits: normal, sd 2 */
                    rs = rs * 6364136223846793005ULL + 1442695040888963407ULL;
                    double u1 = ((rs >> 11) + 0.5) / 9007199254740992.0;
                    rs = rs * 6364136223846793005ULL + 1442695040888963407ULL;
                    double u2 = ((rs >> 11) + 0.5) / 9007199254740992.0;
                    base[i] = (float)(2.0 * sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2));
                }
                memcpy(logits, base, (size_t)nv * sizeof *logits);
                double t0 = now();
                const uint32_t *bits;
                if (hai_grammar_allowed(g, &bits, &err)) {
                    fprintf(stderr, "bench_grammar: %s: %s\n", schemas[s][0], err.msg);
                    return 1;
                }
                mask(nv, logits, bits); /* what generate.c does */
                double dt = now() - t0;
                if (step == 0) {
                    first_sum += dt;
                    if (n_first < 1024) first[n_first++] = dt;
                } else {
                    if (n_all == cap_t) all = realloc(all, (cap_t *= 2) * sizeof *all);
                    all[n_all++] = dt;
                }
                hai_token t = hai_sampler_sample(smp, logits);
                if (hai_tokenizer_is_eog(tok, t)) {
                    done = true;
                    break;
                }
                if (hai_grammar_accept_token(g, t, &err)) {
                    fprintf(stderr, "bench_grammar: %s: %s\n", schemas[s][0], err.msg);
                    return 1;
                }
                size_t k = 0;
                hai_token_to_piece(tok, t, HAI_DETOK_KEEP_LEADING_SPACE, piece, hai_tokenizer_max_piece(tok) + 16, &k, NULL);
                if (tl + k < (1 << 16)) memcpy(text + tl, piece, k), tl += k;
            }
            text[tl] = 0;
            if (!done) {
                truncated++;
            } else {
                cJSON *j = cJSON_Parse(text);
                if (!j) {
                    bad++;
                    fprintf(stderr, "not JSON (%s): %.200s\n", schemas[s][0], text);
                }
                cJSON_Delete(j);
            }
            walks += hai_grammar_get_stats(g).walks;
            free(text);
            hai_sampler_free(smp);
            hai_grammar_free(g);
        }
        size_t n = n_all - n0;
        qsort(all + n0, n, sizeof *all, cmp_d);
        double sum = 0;
        for (size_t i = n0; i < n_all; i++) sum += all[i];
        printf("%-12s %7zu %9.1f %9.1f %9.1f %9.1f %10.2f %8.1f\n", schemas[s][0], n, n ? sum / (double)n * 1e6 : 0, n ? all[n0 + n / 2] * 1e6 : 0,
               n ? all[n0 + (size_t)(0.99 * (double)(n - 1))] * 1e6 : 0, n ? all[n_all - 1] * 1e6 : 0, first_sum / runs * 1e3, (double)walks / runs);
        free(gbnf);
    }
    qsort(all, n_all, sizeof *all, cmp_d);
    double sum = 0;
    for (size_t i = 0; i < n_all; i++) sum += all[i];
    printf("%-12s %7zu %9.1f %9.1f %9.1f %9.1f\n", "all", n_all, sum / (double)n_all * 1e6, all[n_all / 2] * 1e6,
           all[(size_t)(0.99 * (double)(n_all - 1))] * 1e6, all[n_all - 1] * 1e6);
    printf("\n(per token after the first of each output; 'first' is the first token's mask, which fills the caches;\n"
           " 'walks' are trie walks per output. %d outputs not JSON, %d cut at 1000 tokens)\n", bad, truncated);
    free(logits), free(base), free(all), free(first), free(piece);
    hai_tokenizer_free(tok);
    hai_gguf_free(gg);
    return bad ? 1 : 0;
}
