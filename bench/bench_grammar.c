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

typedef struct times { /* per-token timings of one mode */
    double *v;
    size_t n, cap;
    double first, lazy, lazy_miss;
    int outputs, bad, cut;
    uint64_t walks, steps, lazy_n;
    double walk_s;
} times;

static void add(times *t, double x) {
    if (t->n == t->cap) t->v = realloc(t->v, (t->cap = t->cap ? t->cap * 2 : 4096) * sizeof *t->v);
    t->v[t->n++] = x;
}

static hai_tokenizer *tok;
static int32_t nv;
static float *logits, *base;
static uint64_t rs = 42;
static bool (*mask)(int64_t, float *, const uint32_t *);

static void random_logits(void) { /* a random model's logits: normal, sd 2 */
    for (int32_t i = 0; i < nv; i++) {
        rs = rs * 6364136223846793005ULL + 1442695040888963407ULL;
        double u1 = ((rs >> 11) + 0.5) / 9007199254740992.0;
        rs = rs * 6364136223846793005ULL + 1442695040888963407ULL;
        double u2 = ((rs >> 11) + 0.5) / 9007199254740992.0;
        base[i] = (float)(2.0 * sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2));
    }
}

/* One output on g: at each step the full mask is timed (what the target measures), and apart the
 * lazy path hai_generate takes (a plain draw checked, the mask only on a miss). */
static void one_output(hai_grammar *g, uint64_t seed, times *t, const char *name) {
    hai_error err = {0};
    hai_sampler_params sp = hai_sampler_default_params();
    sp.temperature = 1, sp.top_p = 1, sp.top_k = 0, sp.min_p = 0, sp.seed = seed;
    hai_sampler *smp;
    hai_sampler_create(&sp, nv, &smp, &err);
    char *text = malloc(1 << 16), piece[1024];
    size_t tl = 0;
    bool done = false;
    for (int step = 0; step < 1000 && !done; step++) {
        random_logits();
        /* the lazy path first, on its own copy (its mask, on a miss, fills the same caches) */
        memcpy(logits, base, (size_t)nv * sizeof *logits);
        hai_token lt = hai_sampler_sample(smp, logits);
        double t0 = now();
        bool hit = hai_grammar_allows(g, lt);
        const uint32_t *bits;
        if (!hit) {
            if (hai_grammar_allowed(g, &bits, &err)) {
                fprintf(stderr, "bench_grammar: %s: %s\n", name, err.msg);
                exit(1);
            }
            mask(nv, logits, bits);
            lt = hai_sampler_sample(smp, logits);
        }
        double dl = now() - t0;
        t->lazy += dl, t->lazy_n++;
        if (!hit) t->lazy_miss++;
        /* the full mask: timed; its token is the one taken */
        memcpy(logits, base, (size_t)nv * sizeof *logits);
        t0 = now();
        if (hai_grammar_allowed(g, &bits, &err)) {
            fprintf(stderr, "bench_grammar: %s: %s\n", name, err.msg);
            exit(1);
        }
        mask(nv, logits, bits); /* what generate.c does */
        double dt = now() - t0;
        if (step == 0) t->first += dt;
        else add(t, dt);
        hai_token tk = hai_sampler_sample(smp, logits);
        if (hai_tokenizer_is_eog(tok, tk)) {
            done = true;
            break;
        }
        if (hai_grammar_accept_token(g, tk, &err)) {
            fprintf(stderr, "bench_grammar: %s: %s\n", name, err.msg);
            exit(1);
        }
        size_t k = 0;
        hai_token_to_piece(tok, tk, HAI_DETOK_KEEP_LEADING_SPACE, piece, sizeof piece, &k, NULL);
        if (tl + k < (1 << 16)) memcpy(text + tl, piece, k), tl += k;
    }
    text[tl] = 0;
    t->outputs++;
    if (!done) {
        t->cut++;
    } else {
        cJSON *j = cJSON_Parse(text);
        if (!j) {
            t->bad++;
            fprintf(stderr, "not JSON (%s): %.200s\n", name, text);
        }
        cJSON_Delete(j);
    }
    free(text);
    hai_sampler_free(smp);
}

static void report_row(const char *name, const char *mode, times *t) {
    qsort(t->v, t->n, sizeof *t->v, cmp_d);
    double sum = 0;
    for (size_t i = 0; i < t->n; i++) sum += t->v[i];
    size_t n = t->n ? t->n : 1;
    printf("%-12s %-5s %7zu %8.1f %8.1f %8.1f %8.1f %9.2f %7.1f %8.2f %8.1f %6.1f%%\n", name, mode, t->n, sum / (double)n * 1e6, t->v[t->n / 2] * 1e6,
           t->v[(size_t)(0.99 * (double)(t->n ? t->n - 1 : 0))] * 1e6, t->n ? t->v[t->n - 1] * 1e6 : 0, t->first / t->outputs * 1e3,
           (double)t->walks / t->outputs, t->walks ? t->walk_s / (double)t->walks * 1e3 : 0, t->lazy / (double)t->lazy_n * 1e6,
           100.0 * t->lazy_miss / (double)t->lazy_n);
}

static void merge(times *all, const times *t) {
    for (size_t i = 0; i < t->n; i++) add(all, t->v[i]);
    all->lazy += t->lazy, all->lazy_n += t->lazy_n, all->lazy_miss += t->lazy_miss, all->first += t->first, all->outputs += t->outputs;
    all->walks += t->walks, all->walk_s += t->walk_s, all->bad += t->bad, all->cut += t->cut;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_grammar VOCAB.gguf [outputs per schema]\n");
        return 2;
    }
    int runs = argc > 2 ? atoi(argv[2]) : 10;
    hai_error err = {0};
    hai_gguf *gg;
    if (hai_gguf_open(argv[1], &gg, &err) || hai_tokenizer_from_gguf(gg, &tok, &err)) {
        fprintf(stderr, "bench_grammar: %s\n", err.msg);
        return 1;
    }
    nv = hai_tokenizer_n_vocab(tok);
    mask = hai_kernels_best()->logits_mask ? hai_kernels_best()->logits_mask : hai_kernels_ref()->logits_mask;
    logits = malloc((size_t)nv * sizeof *logits), base = malloc((size_t)nv * sizeof *base);
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
    printf("vocabulary: %d tokens (%s); trie built in %.1f ms; %d outputs per schema and mode\n\n", nv, hai_tokenizer_pre(tok), t_trie * 1e3, runs);
    printf("%-12s %-5s %7s %8s %8s %8s %8s %9s %7s %8s %8s %7s\n", "schema", "mode", "tokens", "mean us", "p50 us", "p99 us", "max us",
           "first ms", "walks", "walk ms", "lazy us", "misses");
    times all[2] = {0};
    for (size_t s = 0; s < sizeof schemas / sizeof *schemas; s++) {
        char *gbnf;
        if (hai_json_schema_to_gbnf(schemas[s][1], strlen(schemas[s][1]), &gbnf, &err)) {
            fprintf(stderr, "bench_grammar: %s: %s\n", schemas[s][0], err.msg);
            return 1;
        }
        for (int warm = 0; warm < 2; warm++) {
            times t = {0};
            hai_grammar *g = NULL;
            for (int r = 0; r < runs; r++) {
                /* cold: a new grammar per output (a first request, hai run); warm: one grammar reset
                 * between outputs (hai serve keeps compiled grammars for repeated schemas) */
                if (!g && hai_grammar_create(tok, gbnf, strlen(gbnf), NULL, &g, &err)) {
                    fprintf(stderr, "bench_grammar: %s: %s\n", schemas[s][0], err.msg);
                    return 1;
                }
                hai_grammar_stats before = hai_grammar_get_stats(g);
                one_output(g, (uint64_t)r * 7919 + s, &t, schemas[s][0]);
                hai_grammar_stats after = hai_grammar_get_stats(g);
                t.walks += after.walks - before.walks, t.walk_s += after.walk_s - before.walk_s;
                if (!warm) {
                    hai_grammar_free(g);
                    g = NULL;
                } else {
                    hai_grammar_reset(g);
                }
            }
            hai_grammar_free(g);
            report_row(schemas[s][0], warm ? "warm" : "cold", &t);
            merge(&all[warm], &t);
            free(t.v);
        }
        free(gbnf);
    }
    report_row("all", "cold", &all[0]);
    report_row("all", "warm", &all[1]);
    printf("\nmean/p50/p99/max: the full mask and its application to the logits, per token after the first of each output\n"
           "(first: the first token's); walks: trie walks per output (cache misses) and their mean time; lazy: what\n"
           "hai_generate adds per token (a plain draw checked, the mask only on a miss; misses: how often).\n"
           "%d outputs not JSON, %d cut at 1000 tokens.\n", all[0].bad + all[1].bad, all[0].cut + all[1].cut);
    free(all[0].v), free(all[1].v), free(logits), free(base);
    hai_tokenizer_free(tok);
    hai_gguf_free(gg);
    return all[0].bad + all[1].bad ? 1 : 0;
}
