/* Which tokens may come next under a grammar: the public hai_grammar.
 *
 * The vocabulary is a byte trie (built once per tokenizer, on the first grammar): tokens sorted by
 * their bytes, so a trie node's subtree is a range of that order. The allowed set of a parser
 * state is a walk down the trie that steps the state byte by byte (steps are memoized in the
 * matcher, so a walk is mostly lookups) and prunes a subtree as soon as no parse survives.
 *
 * A walk of the whole trie is ~10^6 steps, too slow per token; two caches make it rare:
 *   - by the state cut to its stacks' top GM_KEEP nodes (gm_trunc): most of what a token can do
 *     happens inside the innermost rules (a string's characters, a number's digits), and the cut
 *     state is the same wherever that rule is used. Its walk splits the vocabulary into tokens
 *     valid in any context, invalid in any, and the few "uncertain" ones whose bytes run out of
 *     the kept part (e.g. `",` closing a string);
 *   - by the full state: the uncertain tokens that are valid in it.
 * The mask of a state is then the cut state's bitmap plus its valid uncertain tokens, plus the
 * end-of-generation tokens when the grammar is complete. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/error.h"
#include "grammar.h"
#include "tokenizer/tokenizer.h"

#define MAX_TOKEN_BYTES 1024 /* longer tokens (none in real vocabularies) are never allowed */

/* A node of the trie, in depth-first order: a walk is a forward scan that skips pruned subtrees
 * (node i's subtree is nodes i .. i + size - 1; its tokens sorted[lo .. nodes[i + size].lo)). */
typedef struct tnode {
    uint32_t size;  /* nodes in its subtree, itself included */
    uint32_t lo;    /* its first token in sorted order; the first n_end end at this node */
    uint16_t n_end;
    uint16_t depth; /* bytes from the root */
    uint8_t byte;   /* the byte on the edge into it */
} tnode;

struct gtrie {
    int32_t n_vocab;
    uint32_t n_nodes;  /* and a sentinel after them (lo: the number of tokens) */
    tnode *nodes;
    int32_t *sorted;
    uint32_t *off;     /* a token's bytes: bytes[off[t] .. off[t] + len[t]) */
    uint16_t *len;
    uint8_t *bytes;
    hai_token *eog;
    uint32_t n_eog;
};

void gtrie_free(struct gtrie *t) {
    if (!t) return;
    free(t->nodes);
    free(t->sorted), free(t->off), free(t->len), free(t->bytes), free(t->eog);
    free(t);
}

static const struct gtrie *sort_trie; /* qsort has no context argument; under trie_lock */

static int cmp_tok(const void *a, const void *b) {
    const struct gtrie *t = sort_trie;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    size_t lx = t->len[x], ly = t->len[y], n = lx < ly ? lx : ly;
    int c = n ? memcmp(t->bytes + t->off[x], t->bytes + t->off[y], n) : 0;
    if (c) return c;
    if (lx != ly) return lx < ly ? -1 : 1; /* a prefix first: it ends at the node above */
    return x < y ? -1 : x > y;
}

/* The node for sorted[lo .. hi), whose first `depth` bytes are the path to it, and its subtree,
 * in depth-first order from t->n_nodes. */
static void build_node(struct gtrie *t, uint8_t byte, uint32_t lo, uint32_t hi, uint32_t depth) {
    uint32_t nd = t->n_nodes++, end = lo;
    while (end < hi && t->len[t->sorted[end]] == depth) end++;
    t->nodes[nd] = (tnode){.lo = lo, .n_end = (uint16_t)(end - lo), .depth = (uint16_t)depth, .byte = byte};
    for (uint32_t i = end; i < hi;) {
        uint8_t b = t->bytes[t->off[t->sorted[i]] + depth];
        uint32_t j = i + 1;
        while (j < hi && t->bytes[t->off[t->sorted[j]] + depth] == b) j++;
        build_node(t, b, i, j, depth + 1);
        i = j;
    }
    t->nodes[nd].size = t->n_nodes - nd;
}

static pthread_mutex_t trie_lock = PTHREAD_MUTEX_INITIALIZER;

static hai_status trie_build(const hai_tokenizer *tok, struct gtrie **out, hai_error *err) {
    struct gtrie *t = calloc(1, sizeof *t);
    if (!t) return hai_fail(err, HAI_ERR_NOMEM, "grammar: out of memory");
    int32_t n = tok->n_vocab;
    t->n_vocab = n;
    size_t cap = hai_tokenizer_max_piece(tok) + 16, total = 0;
    char *buf = malloc(cap);
    t->off = malloc((size_t)n * sizeof *t->off);
    t->len = calloc((size_t)n, sizeof *t->len);
    t->sorted = malloc((size_t)n * sizeof *t->sorted);
    t->eog = malloc((size_t)n * sizeof *t->eog);
    size_t bcap = 1 << 20;
    t->bytes = malloc(bcap);
    hai_status st = HAI_OK;
    if (!buf || !t->off || !t->len || !t->sorted || !t->eog || !t->bytes) st = hai_fail(err, HAI_ERR_NOMEM, "grammar: out of memory");
    uint32_t n_in = 0;
    for (int32_t id = 0; id < n && !st; id++) {
        t->off[id] = (uint32_t)total;
        if (hai_tokenizer_is_eog(tok, id)) {
            t->eog[t->n_eog++] = id;
            continue;
        }
        hai_token_attr a = hai_tokenizer_attr(tok, id);
        if (a == HAI_TOKEN_CONTROL || a == HAI_TOKEN_UNUSED || a == HAI_TOKEN_UNKNOWN) continue;
        size_t k = 0;
        if (hai_token_to_piece(tok, id, HAI_DETOK_KEEP_LEADING_SPACE, buf, cap, &k, NULL) || !k || k > MAX_TOKEN_BYTES) continue;
        if (total + k > bcap) {
            while (total + k > bcap) bcap *= 2;
            uint8_t *p = realloc(t->bytes, bcap);
            if (!p) {
                st = hai_fail(err, HAI_ERR_NOMEM, "grammar: out of memory");
                break;
            }
            t->bytes = p;
        }
        memcpy(t->bytes + total, buf, k);
        t->len[id] = (uint16_t)k;
        total += k;
        t->sorted[n_in++] = id;
    }
    free(buf);
    if (!st) {
        sort_trie = t;
        qsort(t->sorted, n_in, sizeof *t->sorted, cmp_tok);
        size_t nodes = total + 2; /* at most a node per byte, the root and the sentinel */
        if (!(t->nodes = malloc(nodes * sizeof *t->nodes))) {
            st = hai_fail(err, HAI_ERR_NOMEM, "grammar: out of memory for the vocabulary trie");
        } else {
            build_node(t, 0, 0, n_in, 0);
            t->nodes[t->n_nodes] = (tnode){.lo = n_in};
            tnode *fit = realloc(t->nodes, ((size_t)t->n_nodes + 1) * sizeof *fit);
            if (fit) t->nodes = fit;
        }
    }
    if (st) {
        gtrie_free(t);
        return st;
    }
    *out = t;
    return HAI_OK;
}

static hai_status trie_get(const hai_tokenizer *tok, struct gtrie **out, hai_error *err) {
    pthread_mutex_lock(&trie_lock);
    hai_status st = HAI_OK;
    if (!tok->gtrie) st = trie_build(tok, &((hai_tokenizer *)tok)->gtrie, err); /* a cache inside the shared tokenizer, under the lock */
    *out = tok->gtrie;
    pthread_mutex_unlock(&trie_lock);
    return st;
}

/* ---- masks ----------------------------------------------------------------------------------- */

typedef struct cut_mask { /* what a cut state allows */
    uint32_t *bits;
    int32_t *unc; /* uncertain tokens */
    uint32_t n_unc;
} cut_mask;

typedef struct full_mask { /* a full state: its cut state and its valid uncertain tokens */
    uint32_t cut;
    int32_t *ok;
    uint32_t n_ok;
    bool done;
} full_mask;

#define MAX_CUT_MASKS 256
#define MAX_FULL_MASKS 4096

struct hai_grammar {
    gram g;
    gm m;
    struct gtrie *trie;
    int32_t n_vocab;
    size_t words;
    uint32_t start, cur;
    cut_mask **cut;   /* by state id */
    full_mask **full; /* by state id */
    uint32_t cap_cache, n_cut, n_full;
    uint32_t *bits;   /* the mask handed out */
    uint32_t *walk;   /* a walk's state at each depth */
    const uint32_t **walk_rows;
    hai_grammar_stats stats;
};

void hai_grammar_free(hai_grammar *g) {
    if (!g) return;
    for (uint32_t i = 0; i < g->cap_cache; i++) {
        if (g->cut && g->cut[i]) free(g->cut[i]->bits), free(g->cut[i]->unc), free(g->cut[i]);
        if (g->full && g->full[i]) free(g->full[i]->ok), free(g->full[i]);
    }
    free(g->cut), free(g->full), free(g->bits), free(g->walk), free(g->walk_rows);
    gm_free(&g->m);
    gram_free(&g->g);
    free(g);
}

static hai_status matcher_error(hai_grammar *g, hai_error *err) { return hai_fail(err, g->m.st, "%s", g->m.msg); }

hai_status hai_grammar_create(const hai_tokenizer *tok, const char *gbnf, size_t len, const char *root, hai_grammar **out, hai_error *err) {
    if (!tok || !gbnf || !out) return hai_fail(err, HAI_ERR_INVALID, "grammar: NULL argument");
    *out = NULL;
    hai_grammar *g = calloc(1, sizeof *g);
    if (!g) return hai_fail(err, HAI_ERR_NOMEM, "grammar: out of memory");
    hai_status st = gram_compile(gbnf, len, root ? root : "root", &g->g, err);
    if (!st) st = gm_init(&g->m, &g->g, err);
    if (!st) st = trie_get(tok, &g->trie, err);
    if (st) {
        hai_grammar_free(g);
        return st;
    }
    g->n_vocab = tok->n_vocab;
    g->words = ((size_t)g->n_vocab + 31) / 32;
    if (!(g->bits = malloc(g->words * sizeof *g->bits))) {
        hai_grammar_free(g);
        return hai_fail(err, HAI_ERR_NOMEM, "grammar: out of memory");
    }
    g->start = g->cur = gm_start(&g->m);
    if (g->m.st || g->start == GM_DEAD) {
        st = g->m.st ? matcher_error(g, err) : hai_fail(err, HAI_ERR_FORMAT, "grammar: the root rule matches nothing");
        hai_grammar_free(g);
        return st;
    }
    *out = g;
    return HAI_OK;
}

void hai_grammar_reset(hai_grammar *g) {
    if (g) g->cur = g->start;
}

bool hai_grammar_complete(const hai_grammar *g) { return g && (gm_flags(&g->m, g->cur) & GS_ACCEPT); }

/* The per-state cache arrays cover every state id. */
static bool cache_fit(hai_grammar *g) {
    uint32_t need = g->m.n_states;
    if (need <= g->cap_cache) return true;
    uint32_t c = g->cap_cache ? g->cap_cache : 256;
    while (c < need) c *= 2;
    cut_mask **a = realloc(g->cut, c * sizeof *a);
    if (a) g->cut = a;
    full_mask **b = realloc(g->full, c * sizeof *b);
    if (b) g->full = b;
    if (!a || !b) return false;
    memset(g->cut + g->cap_cache, 0, (c - g->cap_cache) * sizeof *a);
    memset(g->full + g->cap_cache, 0, (c - g->cap_cache) * sizeof *b);
    g->cap_cache = c;
    return true;
}

static void drop_caches(hai_grammar *g) {
    for (uint32_t i = 0; i < g->cap_cache; i++) {
        if (g->cut[i]) free(g->cut[i]->bits), free(g->cut[i]->unc), free(g->cut[i]), g->cut[i] = NULL;
        if (g->full[i]) free(g->full[i]->ok), free(g->full[i]), g->full[i] = NULL;
    }
    g->n_cut = g->n_full = 0;
}

static bool list_add(int32_t **v, uint32_t *n, uint32_t *cap, int32_t x) {
    if (*n == *cap) {
        uint32_t c = *cap ? *cap * 2 : 64;
        int32_t *p = realloc(*v, c * sizeof *p);
        if (!p) return false;
        *v = p, *cap = c;
    }
    (*v)[(*n)++] = x;
    return true;
}

/* The walk of the trie from cut state s. */
static hai_status walk_cut(hai_grammar *g, uint32_t s, cut_mask **out, hai_error *err) {
    const struct gtrie *t = g->trie;
    double t0 = hai_time_s();
    cut_mask *c = calloc(1, sizeof *c);
    if (!c || !(c->bits = calloc(g->words, sizeof *c->bits))) {
        free(c);
        return hai_fail(err, HAI_ERR_NOMEM, "grammar: out of memory");
    }
    uint32_t cap_unc = 0;
    bool oom = false;
    if (!g->walk || !g->walk_rows) {
        free(g->walk), free(g->walk_rows);
        g->walk = malloc((MAX_TOKEN_BYTES + 2) * sizeof *g->walk);
        g->walk_rows = malloc((MAX_TOKEN_BYTES + 2) * sizeof *g->walk_rows);
        if (!g->walk || !g->walk_rows) oom = true;
    }
    /* per depth of the path: the state, and its row of transitions when it has one (the inner
     * loop is then one load for the step, one for the flags) */
    uint32_t *at = g->walk;
    const uint32_t **row = g->walk_rows;
    gm *m = &g->m;
    uint64_t steps = 0;
    if (!oom) at[0] = s, row[0] = s < m->cap_rows ? m->rows[s] : NULL;
    for (uint32_t i = 1; i < t->n_nodes && !oom;) {
        const tnode *nd = &t->nodes[i];
        uint32_t d = nd->depth, st;
        const uint32_t *r = row[d - 1];
        if (r && r[nd->byte]) {
            st = r[nd->byte] - 1;
        } else {
            st = gm_step(m, at[d - 1], nd->byte);
            row[d - 1] = at[d - 1] < m->cap_rows ? m->rows[at[d - 1]] : NULL; /* it may have one now */
        }
        steps++;
        if (st == GM_DEAD) { /* no parse survives this byte: nothing below */
            if (m->st) break;
            i += nd->size;
            continue;
        }
        uint8_t f = gm_flags(m, st);
        uint32_t lo = nd->lo, ends = lo + nd->n_end;
        if (f == GS_CTX) { /* only the cut-off context is left: all below depends on it */
            for (uint32_t k = lo, last = t->nodes[i + nd->size].lo; k < last && !oom; k++) oom = !list_add(&c->unc, &c->n_unc, &cap_unc, t->sorted[k]);
            i += nd->size;
            continue;
        }
        if (f & (GS_LIVE | GS_ACCEPT)) {
            for (uint32_t k = lo; k < ends; k++) c->bits[t->sorted[k] >> 5] |= 1u << (t->sorted[k] & 31);
        } else {
            for (uint32_t k = lo; k < ends && !oom; k++) oom = !list_add(&c->unc, &c->n_unc, &cap_unc, t->sorted[k]);
        }
        at[d] = st;
        row[d] = st < m->cap_rows ? m->rows[st] : NULL;
        i++;
    }
    g->stats.steps += steps;
    if (oom || g->m.st) {
        free(c->bits), free(c->unc), free(c);
        return oom ? hai_fail(err, HAI_ERR_NOMEM, "grammar: out of memory") : matcher_error(g, err);
    }
    g->stats.walks++;
    g->stats.walk_s += hai_time_s() - t0;
    *out = c;
    return HAI_OK;
}

/* Whether token id's bytes can follow state s. */
/* The state after token id's bytes from state s, or GM_DEAD when they do not fit (a token with no
 * bytes, a control token, never fits). */
static uint32_t after_token(hai_grammar *g, uint32_t s, int32_t id) {
    const uint8_t *b = g->trie->bytes + g->trie->off[id];
    uint32_t n = g->trie->len[id];
    if (!n) return GM_DEAD;
    for (uint32_t i = 0; i < n && s != GM_DEAD; i++) s = gm_next(&g->m, s, b[i]);
    return s != GM_DEAD && (gm_flags(&g->m, s) & (GS_LIVE | GS_ACCEPT)) ? s : GM_DEAD;
}

static bool token_fits(hai_grammar *g, uint32_t s, int32_t id) { return after_token(g, s, id) != GM_DEAD; }

static hai_status full_for(hai_grammar *g, uint32_t s, full_mask **out, hai_error *err) {
    if (!cache_fit(g)) return hai_fail(err, HAI_ERR_NOMEM, "grammar: out of memory");
    if (g->full[s]) {
        *out = g->full[s];
        return HAI_OK;
    }
    uint32_t cs = gm_trunc(&g->m, s);
    if (g->m.st) return matcher_error(g, err);
    if (!cache_fit(g)) return hai_fail(err, HAI_ERR_NOMEM, "grammar: out of memory");
    if (g->n_cut >= MAX_CUT_MASKS || g->n_full >= MAX_FULL_MASKS) drop_caches(g);
    if (!g->cut[cs]) {
        hai_status st = walk_cut(g, cs, &g->cut[cs], err);
        if (st) return st;
        if (!cache_fit(g)) return hai_fail(err, HAI_ERR_NOMEM, "grammar: out of memory"); /* the walk made states */
        g->n_cut++;
    }
    const cut_mask *c = g->cut[cs];
    full_mask *f = calloc(1, sizeof *f);
    if (!f) return hai_fail(err, HAI_ERR_NOMEM, "grammar: out of memory");
    f->cut = cs;
    f->done = gm_flags(&g->m, s) & GS_ACCEPT;
    uint32_t cap = 0;
    for (uint32_t i = 0; i < c->n_unc; i++) {
        if (!token_fits(g, s, c->unc[i])) continue;
        if (!list_add(&f->ok, &f->n_ok, &cap, c->unc[i])) {
            free(f->ok), free(f);
            return hai_fail(err, HAI_ERR_NOMEM, "grammar: out of memory");
        }
    }
    if (g->m.st) {
        free(f->ok), free(f);
        return matcher_error(g, err);
    }
    g->full[s] = f;
    g->n_full++;
    *out = f;
    return HAI_OK;
}

hai_status hai_grammar_allowed(hai_grammar *g, const uint32_t **bits, hai_error *err) {
    if (!g || !bits) return hai_fail(err, HAI_ERR_INVALID, "grammar: NULL argument");
    full_mask *f = NULL;
    hai_status st = full_for(g, g->cur, &f, err);
    if (st) return st;
    memcpy(g->bits, g->cut[f->cut]->bits, g->words * sizeof *g->bits);
    for (uint32_t i = 0; i < f->n_ok; i++) g->bits[f->ok[i] >> 5] |= 1u << (f->ok[i] & 31);
    if (f->done)
        for (uint32_t i = 0; i < g->trie->n_eog; i++) g->bits[g->trie->eog[i] >> 5] |= 1u << (g->trie->eog[i] & 31);
    g->stats.masks++;
    *bits = g->bits;
    return HAI_OK;
}

static bool is_eog(const hai_grammar *g, hai_token t) {
    for (uint32_t i = 0; i < g->trie->n_eog; i++)
        if (g->trie->eog[i] == t) return true;
    return false;
}

bool hai_grammar_allows(hai_grammar *g, hai_token t) {
    if (!g || t < 0 || t >= g->n_vocab) return false;
    if (is_eog(g, t)) return hai_grammar_complete(g);
    return token_fits(g, g->cur, t);
}

uint32_t grammar_dist_after(hai_grammar *g, hai_token t) {
    if (!g || t < 0 || t >= g->n_vocab) return GRAM_INF;
    if (is_eog(g, t)) return hai_grammar_complete(g) ? 0 : GRAM_INF;
    uint32_t s = after_token(g, g->cur, t);
    return s == GM_DEAD ? GRAM_INF : gm_dist(&g->m, s);
}

hai_status hai_grammar_accept_token(hai_grammar *g, hai_token t, hai_error *err) {
    if (!g) return hai_fail(err, HAI_ERR_INVALID, "grammar: NULL argument");
    if (t < 0 || t >= g->n_vocab) return hai_fail(err, HAI_ERR_INVALID, "grammar: token %d is outside the vocabulary", t);
    if (is_eog(g, t)) {
        if (!hai_grammar_complete(g)) return hai_fail(err, HAI_ERR_INVALID, "grammar: the end of the output comes before the grammar is complete");
        return HAI_OK;
    }
    uint32_t s = after_token(g, g->cur, t);
    if (s == GM_DEAD) {
        if (g->m.st) return matcher_error(g, err);
        return hai_fail(err, HAI_ERR_INVALID, "grammar: token %d does not fit the grammar here", t);
    }
    g->cur = s;
    return HAI_OK;
}

hai_status hai_grammar_accept_text(hai_grammar *g, const char *s, size_t n, hai_error *err) {
    if (!g || (!s && n)) return hai_fail(err, HAI_ERR_INVALID, "grammar: NULL argument");
    uint32_t cur = g->cur;
    for (size_t i = 0; i < n; i++) {
        cur = gm_step(&g->m, cur, (unsigned char)s[i]);
        if (cur == GM_DEAD) {
            if (g->m.st) return matcher_error(g, err);
            return hai_fail(err, HAI_ERR_INVALID, "grammar: the text does not fit at byte %zu", i);
        }
    }
    g->cur = cur;
    return HAI_OK;
}

hai_grammar_stats hai_grammar_get_stats(const hai_grammar *g) {
    hai_grammar_stats s = g ? g->stats : (hai_grammar_stats){0};
    if (g) s.states = g->m.n_states, s.stacks = g->m.n_nodes;
    return s;
}
