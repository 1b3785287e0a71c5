/* Reading the tokenizer test vectors of ../shared/vocab: NAME.gguf.inp holds the strings
 * separated by "\n__ggml_vocab_test__\n", NAME.gguf.out one line of ids per string. */
#ifndef HAI_VOCAB_IO_H
#define HAI_VOCAB_IO_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct vcase {
    char *text;
    size_t len;
    int32_t *ids;
    size_t n_ids;
} vcase;

static inline char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) buf[n] = '\0';
    if (len) *len = (size_t)n;
    return buf;
}

/* Returns the number of cases (or -1 when the files are missing or disagree). */
static inline int load_vectors(const char *dir, const char *name, vcase **out) {
    char p1[4096], p2[4096];
    snprintf(p1, sizeof p1, "%s/ggml-vocab-%s.gguf.inp", dir, name);
    snprintf(p2, sizeof p2, "%s/ggml-vocab-%s.gguf.out", dir, name);
    size_t ilen, olen;
    char *inp = slurp(p1, &ilen), *outs = slurp(p2, &olen);
    if (!inp || !outs) {
        free(inp);
        free(outs);
        return -1;
    }
    static const char sep[] = "\n__ggml_vocab_test__\n";
    const size_t seplen = sizeof sep - 1;
    vcase *cases = NULL;
    int n = 0;
    char *p = inp, *end = inp + ilen, *op = outs;
    while (p < end) {
        char *s = memmem(p, (size_t)(end - p), sep, seplen);
        if (!s) break;
        cases = realloc(cases, (size_t)(n + 1) * sizeof *cases);
        vcase *c = &cases[n++];
        c->len = (size_t)(s - p);
        c->text = malloc(c->len + 1);
        memcpy(c->text, p, c->len);
        c->text[c->len] = '\0';
        p = s + seplen;
        char *nl = strchr(op, '\n');
        if (!nl) nl = op + strlen(op);
        c->ids = NULL;
        c->n_ids = 0;
        for (char *q = op; q < nl;) {
            char *e;
            long v = strtol(q, &e, 10);
            if (e == q) break;
            c->ids = realloc(c->ids, (c->n_ids + 1) * sizeof *c->ids);
            c->ids[c->n_ids++] = (int32_t)v;
            q = e;
        }
        op = *nl ? nl + 1 : nl;
    }
    free(inp);
    free(outs);
    *out = cases;
    return n;
}

static inline void free_vectors(vcase *c, int n) {
    for (int i = 0; i < n; i++) {
        free(c[i].text);
        free(c[i].ids);
    }
    free(c);
}

#endif
