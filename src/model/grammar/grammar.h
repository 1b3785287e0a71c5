/* Constrained decoding's insides, shared by its parts: gbnf.c (GBNF text to a byte-level
 * grammar), match.c (the parser's stacks, interned, and the states they form), mask.c (which
 * tokens of a vocabulary may come next, over a trie of the vocabulary, cached), schema.c (JSON
 * Schema to GBNF).
 *
 * The grammar is compiled to bytes: a character class over code points becomes alternatives of
 * byte-range sequences (UTF-8), so a token's bytes are matched one at a time with no pending
 * partial character. A rule is a list of alternatives; an alternative a run of elements ending
 * in GE_END; an element matches one byte from a set (GE_BYTES) or calls a rule (GE_REF). */
#ifndef HAI_GRAMMAR_H
#define HAI_GRAMMAR_H

#include <stdbool.h>
#include <stdint.h>

#include "hai.h"

enum { GE_END = 0, GE_BYTES = 1, GE_REF = 2 };

typedef struct gelem {
    uint32_t type;
    uint32_t arg; /* GE_BYTES: the byte set's index; GE_REF: the rule */
} gelem;

typedef struct gram {
    gelem *el;          /* every alternative's elements, each run ending in GE_END */
    uint32_t n_el;
    uint32_t *alt;      /* alternatives' first elements; rule r has alt[alt0[r] .. alt0[r + 1]) */
    uint32_t *alt0;     /* [n_rules + 1] */
    uint32_t n_rules;
    uint8_t (*sets)[32]; /* byte sets: bit b of set s is sets[s][b >> 3] >> (b & 7) & 1 */
    uint32_t n_sets;
    uint32_t root;
    uint32_t *rest;     /* [n_el] the fewest bytes that finish the alternative from each element on */
} gram;

#define GRAM_INF (1u << 30) /* no finite completion (saturating lengths) */

#define GRAM_MAX_ELEMENTS (1u << 21) /* of a compiled grammar (a hostile {m,n} is refused, not built) */
#define GRAM_MAX_REPEAT 10000        /* the largest count in x{m,n} */
#define GRAM_MAX_NEST 256            /* brackets inside brackets */

/* Compiles GBNF (llama.cpp's syntax) with the given root rule. A grammar whose root has no finite
 * sentence (every way through it recurses forever) is refused. */
hai_status gram_compile(const char *text, size_t len, const char *root, gram *out, hai_error *err);
void gram_free(gram *g);

static inline bool gram_set_has(const gram *g, uint32_t set, unsigned b) { return g->sets[set][b >> 3] >> (b & 7) & 1; }

/* The fewest bytes that complete the grammar after token t (GRAM_INF when t is not allowed; 0 for
 * end-of-generation when complete): generation keeps every output finishable within its budget. */
uint32_t grammar_dist_after(hai_grammar *g, hai_token t);

/* ---- JSON Schema ------------------------------------------------------------------------------ */

/* GBNF (root rule "root") for the JSON values the schema allows; a schema keyword this cannot
 * enforce is HAI_ERR_UNSUPPORTED naming it. *out is malloc'd. */
hai_status schema_to_gbnf(const char *schema, size_t len, char **out, hai_error *err);
/* Several schemas in one grammar: rule names[i] (names with '_', which schema rules never have)
 * for the values schemas[i] allows, the primitives shared; no root rule. lenient[i] (lenient may
 * be NULL): keywords of schema i that are not enforced are ignored instead of refused (the values
 * stay JSON of the right shape). */
hai_status schema_to_gbnf_rules(const char *const *schemas, const size_t *lens, const char *const *names, size_t n, const bool *lenient,
                                char **out, hai_error *err);

#endif

/* ---- the matcher (match.c) ---------------------------------------------------------------------
 * A parse is a set of stacks. A stack is a chain of nodes (pos: the next element to match,
 * parent: where to go on after this rule), interned so that equal stacks are one id; a set of
 * stacks is a state, interned too, so a step (state, byte) -> state is computed once and then
 * looked up. Two nodes are special: ACCEPT (the root rule is complete) and CTX (a stack cut
 * short by gm_trunc ran out: what follows depends on the context that was cut off). */

#define GM_POS_ACCEPT 0xFFFFFFFFu
#define GM_POS_CTX 0xFFFFFFFEu
#define GM_NONE (-1) /* parent of a root-level node */
#define GM_CUT (-2)  /* parent of a node whose context was cut */
#define GM_DEAD 0u   /* the empty state: no parse survives */

enum { GS_LIVE = 1, GS_ACCEPT = 2, GS_CTX = 4 }; /* a state's flags */

typedef struct gm {
    const gram *g;
    uint32_t *npos;
    int32_t *npar;
    uint32_t n_nodes, cap_nodes;
    uint32_t *nht; /* node id + 1 by hash of (pos, parent) */
    uint32_t nht_mask;
    uint32_t *soff, *slen, *strunc; /* a state's members in pool; its truncation (+1; 0 unknown) */
    uint32_t *sdist, *ndist;        /* gm_dist of states and of stacks (UINT32_MAX: not yet known) */
    uint8_t *sflags;
    uint32_t n_states, cap_states;
    uint32_t *pool;
    size_t n_pool, cap_pool;
    uint32_t *sht; /* state id + 1 by hash of its members */
    uint32_t sht_mask;
    uint32_t **rows; /* transitions of the first MAX_ROWS states as rows of 256 (next + 1; 0 unknown) */
    uint32_t cap_rows;
    uint64_t *tkey; /* the other states' transitions: (state << 8 | byte) + 1 -> next state */
    uint32_t *tval;
    uint32_t tmask, n_trans;
    uint32_t *scr; /* the state being built */
    uint32_t n_scr, cap_scr;
    int depth;
    hai_status st; /* sticky: a limit was hit (then every step is GM_DEAD) */
    char msg[160];
} gm;

hai_status gm_init(gm *m, const gram *g, hai_error *err);
void gm_free(gm *m);
uint32_t gm_start(gm *m);                    /* the state before any byte */
uint32_t gm_step(gm *m, uint32_t s, unsigned b); /* GM_DEAD when no stack takes b */
uint32_t gm_trunc(gm *m, uint32_t s);        /* s with each stack cut below its top GM_KEEP nodes */
uint32_t gm_dist(gm *m, uint32_t s);         /* the fewest bytes that complete the grammar from s */
static inline uint8_t gm_flags(const gm *m, uint32_t s) { return m->sflags[s]; }
/* gm_step, with a known step of a state that has a row answered inline (a walk's inner loop). */
static inline uint32_t gm_next(gm *m, uint32_t s, unsigned b) {
    if (s < m->cap_rows && m->rows[s] && m->rows[s][b]) return m->rows[s][b] - 1;
    return gm_step(m, s, b);
}

#define GM_KEEP 3
