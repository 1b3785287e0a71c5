/* The server's idle grammars (grammars.h): a short list under a mutex, most recent last. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "grammars.h"

typedef struct idle {
    char *text;
    hai_grammar *g;
} idle;

struct grammar_pool {
    const hai_tokenizer *tok;
    pthread_mutex_t mu;
    idle *v;
    int n, max;
};

grammar_pool *gpool_new(const hai_tokenizer *tok, int max_idle) {
    grammar_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    if (!(p->v = calloc((size_t)(max_idle > 0 ? max_idle : 1), sizeof *p->v))) {
        free(p);
        return NULL;
    }
    p->tok = tok;
    p->max = max_idle > 0 ? max_idle : 1;
    pthread_mutex_init(&p->mu, NULL);
    return p;
}

void gpool_free(grammar_pool *p) {
    if (!p) return;
    for (int i = 0; i < p->n; i++) free(p->v[i].text), hai_grammar_free(p->v[i].g);
    pthread_mutex_destroy(&p->mu);
    free(p->v);
    free(p);
}

hai_status gpool_take(grammar_pool *p, const char *text, hai_grammar **g, hai_error *err) {
    pthread_mutex_lock(&p->mu);
    for (int i = p->n - 1; i >= 0; i--) {
        if (strcmp(p->v[i].text, text)) continue;
        *g = p->v[i].g;
        free(p->v[i].text);
        memmove(p->v + i, p->v + i + 1, (size_t)(p->n - i - 1) * sizeof *p->v);
        p->n--;
        pthread_mutex_unlock(&p->mu);
        hai_grammar_reset(*g);
        return HAI_OK;
    }
    pthread_mutex_unlock(&p->mu);
    return hai_grammar_create(p->tok, text, strlen(text), NULL, g, err);
}

void gpool_give(grammar_pool *p, const char *text, hai_grammar *g) {
    char *t = strdup(text);
    if (!t) {
        hai_grammar_free(g);
        return;
    }
    pthread_mutex_lock(&p->mu);
    idle gone = {0};
    if (p->n == p->max) { /* the least recently used leaves */
        gone = p->v[0];
        memmove(p->v, p->v + 1, (size_t)(p->n - 1) * sizeof *p->v);
        p->n--;
    }
    p->v[p->n++] = (idle){t, g};
    pthread_mutex_unlock(&p->mu);
    free(gone.text);
    hai_grammar_free(gone.g); /* outside the lock: it may be large */
}
