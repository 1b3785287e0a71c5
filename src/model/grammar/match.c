/* The grammar's parser as interned stacks and states (grammar.h). A state is normalized: every
 * stack's top is a byte element (or ACCEPT / CTX), reached by expanding rule calls (a node per
 * call: where to return) and returning from finished alternatives. A call in tail position
 * returns straight to its caller's parent, so right recursion (x* is r ::= x r) keeps stacks
 * flat. Limits (nodes, states, members, expansion depth) make a hostile or very ambiguous
 * grammar an error instead of unbounded memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "grammar.h"

#define MAX_NODES (1u << 22)
#define MAX_STATES (1u << 20)
#define MAX_POOL ((size_t)1 << 26)
#define MAX_MEMBERS 4096 /* stacks in one state */
#define MAX_DEPTH 2000   /* nested expansions in one step */
#define MAX_ROWS 32768   /* states with a direct row of transitions (1 KiB each) */

static void gm_limit(gm *m, const char *what) {
    if (!m->st) {
        m->st = HAI_ERR_LIMIT;
        snprintf(m->msg, sizeof m->msg, "grammar: %s (the grammar is too ambiguous or the output nests too deeply)", what);
    }
}

static void gm_oom(gm *m) {
    if (!m->st) {
        m->st = HAI_ERR_NOMEM;
        snprintf(m->msg, sizeof m->msg, "grammar: out of memory");
    }
}

static inline uint64_t mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    return x ^ (x >> 33);
}

static bool grow_table(uint32_t **t, uint32_t *mask, uint32_t n, uint64_t (*hash)(gm *, uint32_t), gm *m) {
    if ((uint64_t)(n + 1) * 2 <= (uint64_t)*mask + 1) return true;
    uint32_t nm = *mask ? *mask * 2 + 1 : 1023;
    uint32_t *nt = calloc((size_t)nm + 1, sizeof *nt);
    if (!nt) return false;
    for (uint32_t i = 0; i <= *mask && *t; i++) {
        if (!(*t)[i]) continue;
        uint32_t h = (uint32_t)hash(m, (*t)[i] - 1) & nm;
        while (nt[h]) h = (h + 1) & nm;
        nt[h] = (*t)[i];
    }
    free(*t);
    *t = nt;
    *mask = nm;
    return true;
}

static uint64_t node_hash_of(uint32_t pos, int32_t par) { return mix((uint64_t)pos << 32 ^ (uint32_t)par); }
static uint64_t node_hash(gm *m, uint32_t id) { return node_hash_of(m->npos[id], m->npar[id]); }

static uint32_t node(gm *m, uint32_t pos, int32_t par) {
    if (m->st) return 0;
    if (m->nht) {
        for (uint32_t h = (uint32_t)node_hash_of(pos, par) & m->nht_mask; m->nht[h]; h = (h + 1) & m->nht_mask) {
            uint32_t id = m->nht[h] - 1;
            if (m->npos[id] == pos && m->npar[id] == par) return id;
        }
    }
    if (m->n_nodes >= MAX_NODES) return gm_limit(m, "too many parser stacks"), 0;
    if (m->n_nodes == m->cap_nodes) {
        uint32_t c = m->cap_nodes ? m->cap_nodes * 2 : 1024;
        uint32_t *p = realloc(m->npos, c * sizeof *p);
        if (p) m->npos = p;
        int32_t *q = realloc(m->npar, c * sizeof *q);
        if (q) m->npar = q;
        uint32_t *d = realloc(m->ndist, c * sizeof *d);
        if (d) m->ndist = d;
        if (!p || !q || !d) return gm_oom(m), 0;
        m->cap_nodes = c;
    }
    uint32_t id = m->n_nodes;
    m->npos[id] = pos, m->npar[id] = par, m->ndist[id] = UINT32_MAX;
    if (!grow_table(&m->nht, &m->nht_mask, id + 1, node_hash, m)) return gm_oom(m), 0;
    m->n_nodes++;
    uint32_t h = (uint32_t)node_hash_of(pos, par) & m->nht_mask;
    while (m->nht[h]) h = (h + 1) & m->nht_mask;
    m->nht[h] = id + 1;
    return id;
}

static void add_member(gm *m, uint32_t id) {
    for (uint32_t i = 0; i < m->n_scr; i++)
        if (m->scr[i] == id) return;
    if (m->n_scr >= MAX_MEMBERS) return gm_limit(m, "too many parses at once");
    if (m->n_scr == m->cap_scr) {
        uint32_t c = m->cap_scr ? m->cap_scr * 2 : 64;
        uint32_t *p = realloc(m->scr, c * sizeof *p);
        if (!p) return gm_oom(m);
        m->scr = p, m->cap_scr = c;
    }
    m->scr[m->n_scr++] = id;
}

/* Adds the stacks that continue from element pos with parent par, tops on byte elements. */
static void expand(gm *m, uint32_t pos, int32_t par) {
    if (m->st) return;
    if (++m->depth > MAX_DEPTH) {
        m->depth--;
        return gm_limit(m, "expansion too deep");
    }
    const gram *g = m->g;
    for (;;) {
        gelem e = g->el[pos];
        if (e.type == GE_BYTES) {
            add_member(m, node(m, pos, par));
        } else if (e.type == GE_END) {
            if (par == GM_NONE) add_member(m, 0); /* node 0: ACCEPT */
            else if (par == GM_CUT) add_member(m, 1); /* node 1: CTX */
            else { /* return to the caller: loop instead of recursing */
                uint32_t p = (uint32_t)par;
                pos = m->npos[p], par = m->npar[p];
                continue;
            }
        } else {
            int32_t cont = g->el[pos + 1].type == GE_END ? par : (int32_t)node(m, pos + 1, par);
            for (uint32_t a = g->alt0[e.arg]; a < g->alt0[e.arg + 1] && !m->st; a++) expand(m, g->alt[a], cont);
        }
        break;
    }
    m->depth--;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t members_hash(const uint32_t *v, uint32_t n) {
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ n;
    for (uint32_t i = 0; i < n; i++) h = mix(h ^ v[i]);
    return h;
}

static uint64_t state_hash(gm *m, uint32_t s) { return members_hash(m->pool + m->soff[s], m->slen[s]); }

/* The scratch members as a state id. */
static uint32_t intern_state(gm *m) {
    if (m->st) return GM_DEAD;
    if (m->n_scr > 1) qsort(m->scr, m->n_scr, sizeof *m->scr, cmp_u32);
    uint64_t h = members_hash(m->scr, m->n_scr);
    if (m->sht) {
        for (uint32_t i = (uint32_t)h & m->sht_mask; m->sht[i]; i = (i + 1) & m->sht_mask) {
            uint32_t s = m->sht[i] - 1;
            if (m->slen[s] == m->n_scr && (!m->n_scr || !memcmp(m->pool + m->soff[s], m->scr, m->n_scr * sizeof *m->scr))) return s;
        }
    }
    if (m->n_states >= MAX_STATES || m->n_pool + m->n_scr > MAX_POOL) return gm_limit(m, "too many parser states"), GM_DEAD;
    if (m->n_states == m->cap_states) {
        uint32_t c = m->cap_states ? m->cap_states * 2 : 256;
        uint32_t *a = realloc(m->soff, c * sizeof *a);
        if (a) m->soff = a;
        uint32_t *b = realloc(m->slen, c * sizeof *b);
        if (b) m->slen = b;
        uint32_t *t = realloc(m->strunc, c * sizeof *t);
        if (t) m->strunc = t;
        uint8_t *f = realloc(m->sflags, c);
        if (f) m->sflags = f;
        uint32_t *d = realloc(m->sdist, c * sizeof *d);
        if (d) m->sdist = d;
        if (!a || !b || !t || !f || !d) return gm_oom(m), GM_DEAD;
        m->cap_states = c;
    }
    if (m->n_pool + m->n_scr > m->cap_pool) {
        size_t c = m->cap_pool ? m->cap_pool * 2 : 4096;
        while (c < m->n_pool + m->n_scr) c *= 2;
        uint32_t *p = realloc(m->pool, c * sizeof *p);
        if (!p) return gm_oom(m), GM_DEAD;
        m->pool = p, m->cap_pool = c;
    }
    uint32_t s = m->n_states;
    m->soff[s] = (uint32_t)m->n_pool;
    m->slen[s] = m->n_scr;
    m->strunc[s] = 0;
    m->sdist[s] = UINT32_MAX;
    if (m->n_scr) memcpy(m->pool + m->n_pool, m->scr, m->n_scr * sizeof *m->scr);
    m->n_pool += m->n_scr;
    uint8_t f = 0;
    for (uint32_t i = 0; i < m->n_scr; i++) f |= m->scr[i] == 0 ? GS_ACCEPT : m->scr[i] == 1 ? GS_CTX : GS_LIVE;
    m->sflags[s] = f;
    if (!grow_table(&m->sht, &m->sht_mask, s + 1, state_hash, m)) return gm_oom(m), GM_DEAD;
    m->n_states++;
    uint32_t i = (uint32_t)h & m->sht_mask;
    while (m->sht[i]) i = (i + 1) & m->sht_mask;
    m->sht[i] = s + 1;
    return s;
}

hai_status gm_init(gm *m, const gram *g, hai_error *err) {
    memset(m, 0, sizeof *m);
    m->g = g;
    node(m, GM_POS_ACCEPT, GM_NONE); /* 0 */
    node(m, GM_POS_CTX, GM_NONE);    /* 1 */
    m->n_scr = 0;
    intern_state(m); /* state 0: dead */
    if (m->st) return hai_fail(err, m->st, "%s", m->msg);
    return HAI_OK;
}

void gm_free(gm *m) {
    free(m->npos), free(m->npar), free(m->nht);
    free(m->soff), free(m->slen), free(m->strunc), free(m->sflags), free(m->pool), free(m->sht);
    free(m->sdist), free(m->ndist);
    free(m->tkey), free(m->tval), free(m->scr);
    for (uint32_t i = 0; i < m->cap_rows; i++) free(m->rows[i]);
    free(m->rows);
    memset(m, 0, sizeof *m);
}

uint32_t gm_start(gm *m) {
    m->n_scr = 0;
    const gram *g = m->g;
    for (uint32_t a = g->alt0[g->root]; a < g->alt0[g->root + 1]; a++) expand(m, g->alt[a], GM_NONE);
    return intern_state(m);
}

static uint32_t step_slow(gm *m, uint32_t s, unsigned b) {
    m->n_scr = 0;
    uint32_t n = m->slen[s];
    for (uint32_t i = 0; i < n && !m->st; i++) {
        uint32_t id = m->pool[m->soff[s] + i]; /* the pool is not written until intern_state */
        uint32_t pos = m->npos[id];
        if (pos == GM_POS_ACCEPT) continue;
        if (pos == GM_POS_CTX) { /* the unknown context may take anything */
            add_member(m, 1);
            continue;
        }
        if (gram_set_has(m->g, m->g->el[pos].arg, b)) expand(m, pos + 1, m->npar[id]);
    }
    return intern_state(m);
}

uint32_t gm_step(gm *m, uint32_t s, unsigned b) {
    if (m->st || s == GM_DEAD) return GM_DEAD;
    if (s < m->cap_rows && m->rows[s] && m->rows[s][b]) return m->rows[s][b] - 1;
    if (s < MAX_ROWS) { /* a row: a walk steps the same few states through every byte */
        if (s >= m->cap_rows) {
            uint32_t c = m->cap_rows ? m->cap_rows : 256;
            while (c <= s) c *= 2;
            uint32_t **r = realloc(m->rows, c * sizeof *r);
            if (!r) return gm_oom(m), GM_DEAD;
            memset(r + m->cap_rows, 0, (c - m->cap_rows) * sizeof *r);
            m->rows = r, m->cap_rows = c;
        }
        if (!m->rows[s] && !(m->rows[s] = calloc(256, sizeof **m->rows))) return gm_oom(m), GM_DEAD;
        uint32_t next = step_slow(m, s, b);
        if (m->st) return GM_DEAD;
        m->rows[s][b] = next + 1;
        return next;
    }
    uint64_t key = ((uint64_t)s << 8 | b) + 1;
    uint32_t h = (uint32_t)mix(key) & m->tmask;
    if (m->tkey)
        for (; m->tkey[h]; h = (h + 1) & m->tmask)
            if (m->tkey[h] == key) return m->tval[h];
    uint32_t next = step_slow(m, s, b);
    if (m->st) return GM_DEAD;
    if ((uint64_t)(m->n_trans + 1) * 2 > (uint64_t)m->tmask + 1) { /* grow (and rehash) the transitions */
        uint32_t nm = m->tmask ? m->tmask * 2 + 1 : 4095;
        if (nm >= (1u << 26)) return gm_limit(m, "too many parser transitions"), GM_DEAD;
        uint64_t *nk = calloc((size_t)nm + 1, sizeof *nk);
        uint32_t *nv = malloc(((size_t)nm + 1) * sizeof *nv);
        if (!nk || !nv) {
            free(nk), free(nv);
            return gm_oom(m), GM_DEAD;
        }
        for (uint32_t i = 0; m->tkey && i <= m->tmask; i++) {
            if (!m->tkey[i]) continue;
            uint32_t j = (uint32_t)mix(m->tkey[i]) & nm;
            while (nk[j]) j = (j + 1) & nm;
            nk[j] = m->tkey[i], nv[j] = m->tval[i];
        }
        free(m->tkey), free(m->tval);
        m->tkey = nk, m->tval = nv, m->tmask = nm;
    }
    h = (uint32_t)mix(key) & m->tmask;
    while (m->tkey[h]) h = (h + 1) & m->tmask;
    m->tkey[h] = key, m->tval[h] = next;
    m->n_trans++;
    return next;
}

/* A stack's top `keep` nodes, the rest replaced by GM_CUT. */
static uint32_t trunc_node(gm *m, uint32_t id, int keep) {
    if (id <= 1) return id;
    int32_t par = m->npar[id];
    if (par >= 0) par = keep <= 1 ? GM_CUT : (int32_t)trunc_node(m, (uint32_t)par, keep - 1);
    return node(m, m->npos[id], par);
}

uint32_t gm_trunc(gm *m, uint32_t s) {
    if (m->st || s == GM_DEAD) return GM_DEAD;
    if (m->strunc[s]) return m->strunc[s] - 1;
    uint32_t n = m->slen[s];
    m->n_scr = 0;
    for (uint32_t i = 0; i < n && !m->st; i++) add_member(m, trunc_node(m, m->pool[m->soff[s] + i], GM_KEEP));
    uint32_t t = intern_state(m);
    if (!m->st) m->strunc[s] = t + 1;
    return t;
}

/* A stack's fewest bytes to the end: what its top alternative still needs, then each caller's. */
static uint32_t node_dist(gm *m, uint32_t id) {
    if (id <= 1) return 0; /* ACCEPT; CTX (cut stacks are not measured) */
    if (m->ndist[id] != UINT32_MAX) return m->ndist[id];
    /* the chain can be deep: walk it, then fill the cache from the bottom */
    uint32_t n = 0, local[64], *chain = local;
    for (int32_t p = (int32_t)id; p >= 0 && m->ndist[p] == UINT32_MAX; p = m->npar[p]) n++;
    if (n > 64 && !(chain = malloc(n * sizeof *chain))) return GRAM_INF;
    n = 0;
    int32_t p = (int32_t)id;
    for (; p >= 0 && m->ndist[p] == UINT32_MAX; p = m->npar[p]) chain[n++] = (uint32_t)p;
    uint32_t d = p >= 0 ? m->ndist[p] : 0;
    while (n--) {
        uint32_t v = d + m->g->rest[m->npos[chain[n]]];
        d = m->ndist[chain[n]] = v > GRAM_INF ? GRAM_INF : v;
    }
    if (chain != local) free(chain);
    return d;
}

uint32_t gm_dist(gm *m, uint32_t s) {
    if (m->st || s == GM_DEAD) return GRAM_INF;
    if (m->sdist[s] != UINT32_MAX) return m->sdist[s];
    uint32_t best = GRAM_INF;
    for (uint32_t i = 0; i < m->slen[s]; i++) {
        uint32_t d = node_dist(m, m->pool[m->soff[s] + i]);
        if (d < best) best = d;
    }
    return m->sdist[s] = best;
}
