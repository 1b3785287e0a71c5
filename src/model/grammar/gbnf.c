/* GBNF, as llama.cpp writes it, compiled to a byte-level grammar (grammar.h).
 *
 *   name ::= alternatives        one rule per line (newlines are free after ::=, after | and
 *                                inside brackets); # starts a comment
 *   "literal"  [a-z0-9_]  [^"\\]  .  name  ( group )  x*  x+  x?  x{m}  x{m,}  x{m,n}
 *
 * Escapes: \n \r \t \\ \" \[ \] \xHH \uHHHH \UHHHHHHHH (and any other ASCII character as itself).
 * Groups and repetitions become rules of their own, named <rule>_<k> as llama.cpp names them:
 * x* is r ::= x r | (empty); x{m,n} is m copies of x and a chain of n - m optional ones.
 * Character classes over code points become alternatives of UTF-8 byte-range sequences.
 *
 * Refused with the line: undefined or twice-defined rules, left recursion (the parser would
 * expand it forever), counts over GRAM_MAX_REPEAT, a grammar over GRAM_MAX_ELEMENTS. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "grammar.h"

typedef struct item {
    uint32_t type, arg;
} item;

typedef struct balt {
    item *it;
    uint32_t n, cap;
} balt;

typedef struct brule {
    char *name;
    balt *alts;
    uint32_t n, cap;
    int line;      /* where defined, or first used */
    bool defined;
    uint32_t n_sub; /* rules made for its groups and repetitions */
} brule;

typedef struct bld {
    brule *rules;
    uint32_t n_rules, cap_rules;
    uint8_t (*sets)[32];
    uint32_t n_sets, cap_sets;
    size_t n_items; /* elements so far, against GRAM_MAX_ELEMENTS */
    /* scratch that an error may leave behind (freed with the rest) */
    struct cprange *cr;
    uint32_t n_cr, cap_cr;
    struct bseq *sq;
    uint32_t n_sq, cap_sq;
    item *tmp;
    uint32_t cap_tmp;
    const char *p, *end;
    int line;
    int nest; /* brackets open (the parser recurses on them) */
    jmp_buf fail;
    hai_error *err;
    hai_status st;
} bld;

HAI_PRINTF(3, 4) static _Noreturn void die(bld *b, hai_status st, const char *fmt, ...) {
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    b->st = hai_fail(b->err, st, "grammar: %s", msg);
    longjmp(b->fail, 1);
}

static void *grow(bld *b, void *p, uint32_t *cap, uint32_t need, size_t size) {
    if (need <= *cap) return p;
    uint32_t c = *cap ? *cap : 4;
    while (c < need) c *= 2;
    void *q = realloc(p, (size_t)c * size);
    if (!q) die(b, HAI_ERR_NOMEM, "out of memory");
    *cap = c;
    return q;
}

static uint32_t new_rule(bld *b, const char *name, size_t n, int line) {
    b->rules = grow(b, b->rules, &b->cap_rules, b->n_rules + 1, sizeof *b->rules);
    brule *r = &b->rules[b->n_rules];
    memset(r, 0, sizeof *r);
    if (!(r->name = malloc(n + 1))) die(b, HAI_ERR_NOMEM, "out of memory");
    memcpy(r->name, name, n);
    r->name[n] = 0;
    r->line = line;
    return b->n_rules++;
}

/* A rule for a group or repetition inside rule `of`. */
static uint32_t sub_rule(bld *b, uint32_t of) {
    char name[96];
    int n = snprintf(name, sizeof name, "%.64s_%u", b->rules[of].name, ++b->rules[of].n_sub);
    uint32_t r = new_rule(b, name, (size_t)n, b->line);
    b->rules[r].defined = true;
    return r;
}

static uint32_t find_rule(bld *b, const char *name, size_t n) {
    for (uint32_t i = 0; i < b->n_rules; i++)
        if (strlen(b->rules[i].name) == n && !memcmp(b->rules[i].name, name, n)) return i;
    return new_rule(b, name, n, b->line);
}

static balt *add_alt(bld *b, uint32_t r) {
    brule *ru = &b->rules[r];
    ru->alts = grow(b, ru->alts, &ru->cap, ru->n + 1, sizeof *ru->alts);
    balt *a = &ru->alts[ru->n++];
    memset(a, 0, sizeof *a);
    return a;
}

static void push(bld *b, balt *a, uint32_t type, uint32_t arg) {
    if (++b->n_items > GRAM_MAX_ELEMENTS) die(b, HAI_ERR_LIMIT, "the grammar is too large (over %u elements)", GRAM_MAX_ELEMENTS);
    a->it = grow(b, a->it, &a->cap, a->n + 1, sizeof *a->it);
    a->it[a->n++] = (item){type, arg};
}

static uint32_t new_set(bld *b) {
    b->sets = grow(b, b->sets, &b->cap_sets, b->n_sets + 1, sizeof *b->sets);
    memset(b->sets[b->n_sets], 0, 32);
    return b->n_sets++;
}

static void set_range(bld *b, uint32_t s, unsigned lo, unsigned hi) {
    for (unsigned c = lo; c <= hi; c++) b->sets[s][c >> 3] |= (uint8_t)(1u << (c & 7));
}

static uint32_t byte_set(bld *b, unsigned c) {
    uint32_t s = new_set(b);
    set_range(b, s, c, c);
    return s;
}

/* ---- code points to UTF-8 byte ranges --------------------------------------------------------- */

typedef struct cprange { /* a class's code points */
    uint32_t lo, hi;
} cprange;

typedef struct bseq { /* a sequence of byte ranges matching a run of code points */
    int n;
    uint8_t lo[4], hi[4];
} bseq;


static int utf8_len(uint32_t c) { return c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4; }

static int utf8_put(uint32_t c, uint8_t *o) {
    if (c < 0x80) return o[0] = (uint8_t)c, 1;
    if (c < 0x800) return o[0] = (uint8_t)(0xC0 | c >> 6), o[1] = (uint8_t)(0x80 | (c & 63)), 2;
    if (c < 0x10000) return o[0] = (uint8_t)(0xE0 | c >> 12), o[1] = (uint8_t)(0x80 | (c >> 6 & 63)), o[2] = (uint8_t)(0x80 | (c & 63)), 3;
    o[0] = (uint8_t)(0xF0 | c >> 18), o[1] = (uint8_t)(0x80 | (c >> 12 & 63)), o[2] = (uint8_t)(0x80 | (c >> 6 & 63));
    o[3] = (uint8_t)(0x80 | (c & 63));
    return 4;
}

/* [lo, hi] of one encoded length as sequences where each byte position is a plain range: split
 * until every continuation byte below the first differing one spans its whole 80-BF. */
static void split_same_len(bld *b, uint32_t lo, uint32_t hi) {
    int n = utf8_len(lo);
    for (int i = 1; i < n; i++) {
        uint32_t m = (1u << (6 * i)) - 1;
        if ((lo & ~m) != (hi & ~m)) {
            if (lo & m) {
                split_same_len(b, lo, lo | m);
                split_same_len(b, (lo | m) + 1, hi);
                return;
            }
            if ((hi & m) != m) {
                split_same_len(b, lo, (hi & ~m) - 1);
                split_same_len(b, hi & ~m, hi);
                return;
            }
        }
    }
    bseq s = {.n = n};
    utf8_put(lo, s.lo);
    utf8_put(hi, s.hi);
    b->sq = grow(b, b->sq, &b->cap_sq, b->n_sq + 1, sizeof *b->sq);
    b->sq[b->n_sq++] = s;
}

static void split_utf8(bld *b, uint32_t lo, uint32_t hi) {
    static const uint32_t edge[4][2] = {{0, 0x7F}, {0x80, 0x7FF}, {0x800, 0xFFFF}, {0x10000, 0x10FFFF}};
    for (int k = 0; k < 4; k++) {
        uint32_t a = lo > edge[k][0] ? lo : edge[k][0], z = hi < edge[k][1] ? hi : edge[k][1];
        if (a > z) continue;
        if (a <= 0xDFFF && z >= 0xD800) { /* surrogates are not characters: never matched */
            if (a < 0xD800) split_same_len(b, a, 0xD7FF);
            if (z > 0xDFFF) split_same_len(b, 0xE000, z);
        } else {
            split_same_len(b, a, z);
        }
    }
}

static int cmp_range(const void *x, const void *y) {
    const cprange *a = x, *c = y;
    return a->lo < c->lo ? -1 : a->lo > c->lo;
}

/* A class of code points as an item: one byte set when every member is ASCII, else a rule with an
 * alternative per shape of UTF-8 sequence (sequences differing only in their first byte merged). */
static item class_item(bld *b, uint32_t in_rule, cprange *r, uint32_t n, bool negate) {
    if (n > 1) qsort(r, n, sizeof *r, cmp_range);
    uint32_t k = 0; /* merged, sorted */
    for (uint32_t i = 0; i < n; i++) {
        if (k && r[i].lo <= r[k - 1].hi + 1) {
            if (r[i].hi > r[k - 1].hi) r[k - 1].hi = r[i].hi;
        } else {
            r[k++] = r[i];
        }
    }
    b->n_sq = 0;
    if (negate) {
        uint32_t next = 0;
        for (uint32_t i = 0; i < k; i++) {
            if (r[i].lo > next) split_utf8(b, next, r[i].lo - 1);
            next = r[i].hi + 1;
        }
        if (next <= 0x10FFFF) split_utf8(b, next, 0x10FFFF);
    } else {
        for (uint32_t i = 0; i < k; i++) split_utf8(b, r[i].lo, r[i].hi > 0x10FFFF ? 0x10FFFF : r[i].hi);
    }
    uint32_t single = UINT32_MAX;
    bool multi = false;
    for (uint32_t i = 0; i < b->n_sq; i++) {
        if (b->sq[i].n == 1) {
            if (single == UINT32_MAX) single = new_set(b);
            set_range(b, single, b->sq[i].lo[0], b->sq[i].hi[0]);
        } else {
            multi = true;
        }
    }
    if (!multi) {
        if (single == UINT32_MAX) single = new_set(b); /* matches nothing */
        return (item){GE_BYTES, single};
    }
    uint32_t rule = sub_rule(b, in_rule);
    if (single != UINT32_MAX) push(b, add_alt(b, rule), GE_BYTES, single);
    for (uint32_t i = 0; i < b->n_sq; i++) {
        bseq *s = &b->sq[i];
        if (s->n == 1 || !s->n) continue;
        uint32_t first = new_set(b);
        set_range(b, first, s->lo[0], s->hi[0]);
        for (uint32_t j = i + 1; j < b->n_sq; j++) { /* same tail: one alternative */
            bseq *t = &b->sq[j];
            if (t->n == s->n && !memcmp(t->lo + 1, s->lo + 1, (size_t)s->n - 1) && !memcmp(t->hi + 1, s->hi + 1, (size_t)s->n - 1)) {
                set_range(b, first, t->lo[0], t->hi[0]);
                t->n = 0;
            }
        }
        balt *a = add_alt(b, rule);
        push(b, a, GE_BYTES, first);
        for (int p = 1; p < s->n; p++) {
            uint32_t set = new_set(b);
            set_range(b, set, s->lo[p], s->hi[p]);
            push(b, a, GE_BYTES, set);
        }
    }
    return (item){GE_REF, rule};
}

/* ---- the parser ------------------------------------------------------------------------------ */

static void skip_space(bld *b, bool newline_ok) {
    while (b->p < b->end) {
        char c = *b->p;
        if (c == ' ' || c == '\t' || c == '\r') {
            b->p++;
        } else if (c == '#') {
            while (b->p < b->end && *b->p != '\n') b->p++;
        } else if (c == '\n' && newline_ok) {
            b->p++;
            b->line++;
        } else {
            break;
        }
    }
}

static bool is_word(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_'; }

static size_t word_len(const bld *b) {
    const char *q = b->p;
    while (q < b->end && is_word(*q)) q++;
    return (size_t)(q - b->p);
}

static uint32_t hex(bld *b, int digits) {
    uint32_t v = 0;
    for (int i = 0; i < digits; i++) {
        char c = b->p < b->end ? *b->p : 0;
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) die(b, HAI_ERR_FORMAT, "line %d: an escape needs %d hex digits", b->line, digits);
        v = v << 4 | (uint32_t)d;
        b->p++;
    }
    return v;
}

/* One character of a literal or class (an escape, or a UTF-8 sequence) as a code point. */
static uint32_t parse_char(bld *b) {
    if (b->p >= b->end) die(b, HAI_ERR_FORMAT, "line %d: unexpected end of the grammar", b->line);
    unsigned char c = (unsigned char)*b->p;
    if (c == '\\') {
        b->p++;
        if (b->p >= b->end) die(b, HAI_ERR_FORMAT, "line %d: the grammar ends in an escape", b->line);
        char e = *b->p++;
        switch (e) {
        case 'n': return '\n';
        case 'r': return '\r';
        case 't': return '\t';
        case 'x': return hex(b, 2);
        case 'u': return hex(b, 4);
        case 'U': {
            uint32_t v = hex(b, 8);
            if (v > 0x10FFFF) die(b, HAI_ERR_FORMAT, "line %d: \\U%08X is not a code point", b->line, v);
            return v;
        }
        default:
            if ((unsigned char)e >= 0x80 || (unsigned char)e < 0x20) die(b, HAI_ERR_FORMAT, "line %d: a bad escape", b->line);
            return (unsigned char)e;
        }
    }
    if (c == '\n') die(b, HAI_ERR_FORMAT, "line %d: a literal or class is not closed on its line", b->line);
    int n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (!n || b->end - b->p < n) die(b, HAI_ERR_FORMAT, "line %d: the grammar is not valid UTF-8", b->line);
    uint32_t v = n == 1 ? c : c & (0xFFu >> (n + 1));
    for (int i = 1; i < n; i++) {
        unsigned char k = (unsigned char)b->p[i];
        if ((k & 0xC0) != 0x80) die(b, HAI_ERR_FORMAT, "line %d: the grammar is not valid UTF-8", b->line);
        v = v << 6 | (k & 63);
    }
    static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (v < min[n] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) die(b, HAI_ERR_FORMAT, "line %d: the grammar is not valid UTF-8", b->line);
    b->p += n;
    return v;
}

static void parse_alternates(bld *b, uint32_t rule, bool nested);

static uint64_t parse_count(bld *b) {
    uint64_t v = 0;
    const char *s = b->p;
    while (b->p < b->end && *b->p >= '0' && *b->p <= '9') {
        v = v * 10 + (uint64_t)(*b->p++ - '0');
        if (v > GRAM_MAX_REPEAT) die(b, HAI_ERR_LIMIT, "line %d: a repetition count over %u", b->line, GRAM_MAX_REPEAT);
    }
    if (b->p == s) die(b, HAI_ERR_FORMAT, "line %d: a repetition {m,n} needs numbers", b->line);
    return v;
}

/* Applies a repetition to the items a->it[start ..] (the last symbol). */
static void repeat(bld *b, uint32_t rule, uint32_t alt_i, uint32_t start, uint64_t m, uint64_t n, bool unbounded) {
    balt *a = &b->rules[rule].alts[alt_i];
    if (start == a->n) die(b, HAI_ERR_FORMAT, "line %d: a repetition with nothing before it", b->line);
    item x;
    if (a->n - start == 1) {
        x = a->it[start];
    } else { /* several items (a literal of several bytes): one rule */
        uint32_t g = sub_rule(b, rule);
        a = &b->rules[rule].alts[alt_i];
        uint32_t cnt = a->n - start;
        b->tmp = grow(b, b->tmp, &b->cap_tmp, cnt, sizeof *b->tmp);
        memcpy(b->tmp, a->it + start, cnt * sizeof *b->tmp);
        add_alt(b, g);
        for (uint32_t i = 0; i < cnt; i++) push(b, &b->rules[g].alts[0], b->tmp[i].type, b->tmp[i].arg);
        x = (item){GE_REF, g};
    }
    a = &b->rules[rule].alts[alt_i];
    a->n = start;
    for (uint64_t i = 0; i < m; i++) push(b, &b->rules[rule].alts[alt_i], x.type, x.arg);
    if (unbounded) { /* r ::= x r | (empty) */
        uint32_t r = sub_rule(b, rule);
        balt *ra = add_alt(b, r);
        push(b, ra, x.type, x.arg);
        push(b, &b->rules[r].alts[0], GE_REF, r);
        add_alt(b, r);
        push(b, &b->rules[rule].alts[alt_i], GE_REF, r);
    } else if (n > m) { /* o_1 ::= x | (empty); o_k ::= x o_{k-1} | (empty) */
        uint32_t prev = UINT32_MAX;
        for (uint64_t k = 0; k < n - m; k++) {
            uint32_t o = sub_rule(b, rule);
            balt *oa = add_alt(b, o);
            push(b, oa, x.type, x.arg);
            if (prev != UINT32_MAX) push(b, &b->rules[o].alts[0], GE_REF, prev);
            add_alt(b, o);
            prev = o;
        }
        push(b, &b->rules[rule].alts[alt_i], GE_REF, prev);
    }
}

static void parse_sequence(bld *b, uint32_t rule, bool nested) {
    balt *a0 = add_alt(b, rule);
    (void)a0;
    uint32_t alt_i = b->rules[rule].n - 1, last = UINT32_MAX;
#define ALT (&b->rules[rule].alts[alt_i])
    while (b->p < b->end) {
        char c = *b->p;
        uint32_t start = ALT->n;
        if (c == '"') {
            b->p++;
            while (b->p < b->end && *b->p != '"') {
                uint8_t u[4];
                int k = utf8_put(parse_char(b), u);
                for (int i = 0; i < k; i++) push(b, ALT, GE_BYTES, byte_set(b, u[i]));
            }
            if (b->p >= b->end) die(b, HAI_ERR_FORMAT, "line %d: a string literal is not closed", b->line);
            b->p++;
            last = start;
        } else if (c == '[') {
            b->p++;
            bool neg = b->p < b->end && *b->p == '^';
            if (neg) b->p++;
            b->n_cr = 0;
            while (b->p < b->end && *b->p != ']') {
                uint32_t lo = parse_char(b), hi = lo;
                if (b->end - b->p >= 2 && b->p[0] == '-' && b->p[1] != ']') {
                    b->p++;
                    hi = parse_char(b);
                    if (hi < lo) die(b, HAI_ERR_FORMAT, "line %d: a class range runs backwards", b->line);
                }
                b->cr = grow(b, b->cr, &b->cap_cr, b->n_cr + 1, sizeof *b->cr);
                b->cr[b->n_cr++] = (cprange){lo, hi};
            }
            if (b->p >= b->end) die(b, HAI_ERR_FORMAT, "line %d: a character class is not closed", b->line);
            b->p++;
            item it = class_item(b, rule, b->cr, b->n_cr, neg);
            push(b, ALT, it.type, it.arg);
            last = start;
        } else if (c == '.') {
            b->p++;
            cprange any = {0, 0x10FFFF};
            item it = class_item(b, rule, &any, 1, false);
            push(b, ALT, it.type, it.arg);
            last = start;
        } else if (is_word(c)) {
            size_t n = word_len(b);
            uint32_t r = find_rule(b, b->p, n);
            b->p += n;
            push(b, ALT, GE_REF, r);
            last = start;
        } else if (c == '(') {
            b->p++;
            if (++b->nest > GRAM_MAX_NEST) die(b, HAI_ERR_LIMIT, "line %d: brackets nest deeper than %d", b->line, GRAM_MAX_NEST);
            skip_space(b, true);
            uint32_t g = sub_rule(b, rule);
            parse_alternates(b, g, true);
            if (b->p >= b->end || *b->p != ')') die(b, HAI_ERR_FORMAT, "line %d: a '(' is not closed", b->line);
            b->p++;
            b->nest--;
            push(b, ALT, GE_REF, g);
            last = start;
        } else if (c == '*' || c == '+' || c == '?') {
            b->p++;
            if (last == UINT32_MAX) die(b, HAI_ERR_FORMAT, "line %d: '%c' with nothing before it", b->line, c);
            repeat(b, rule, alt_i, last, c == '+' ? 1 : 0, c == '?' ? 1 : 0, c != '?');
            last = UINT32_MAX;
        } else if (c == '{') {
            b->p++;
            if (last == UINT32_MAX) die(b, HAI_ERR_FORMAT, "line %d: '{' with nothing before it", b->line);
            skip_space(b, nested);
            uint64_t m = parse_count(b), n = m;
            bool unb = false;
            skip_space(b, nested);
            if (b->p < b->end && *b->p == ',') {
                b->p++;
                skip_space(b, nested);
                if (b->p < b->end && *b->p == '}') unb = true;
                else n = parse_count(b);
                skip_space(b, nested);
            }
            if (b->p >= b->end || *b->p != '}') die(b, HAI_ERR_FORMAT, "line %d: a repetition {m,n} is not closed", b->line);
            b->p++;
            if (!unb && n < m) die(b, HAI_ERR_FORMAT, "line %d: a repetition {%llu,%llu} runs backwards", b->line, (unsigned long long)m, (unsigned long long)n);
            repeat(b, rule, alt_i, last, m, n, unb);
            last = UINT32_MAX;
        } else if (c == '<') {
            die(b, HAI_ERR_UNSUPPORTED, "line %d: token references (<...>) are not supported", b->line);
        } else {
            break;
        }
        skip_space(b, nested);
    }
#undef ALT
}

static void parse_alternates(bld *b, uint32_t rule, bool nested) {
    parse_sequence(b, rule, nested);
    while (b->p < b->end && *b->p == '|') {
        b->p++;
        skip_space(b, true);
        parse_sequence(b, rule, nested);
    }
}

static void parse_grammar(bld *b) {
    skip_space(b, true);
    while (b->p < b->end) {
        size_t n = word_len(b);
        if (!n) die(b, HAI_ERR_FORMAT, "line %d: expected a rule name, found '%c'", b->line, *b->p);
        uint32_t r = find_rule(b, b->p, n);
        if (b->rules[r].defined) die(b, HAI_ERR_FORMAT, "line %d: rule '%s' is defined twice", b->line, b->rules[r].name);
        b->rules[r].defined = true;
        b->rules[r].line = b->line;
        b->p += n;
        skip_space(b, false);
        if (b->end - b->p < 3 || memcmp(b->p, "::=", 3)) die(b, HAI_ERR_FORMAT, "line %d: expected '::=' after '%s'", b->line, b->rules[r].name);
        b->p += 3;
        skip_space(b, true);
        parse_alternates(b, r, false);
        if (b->p < b->end && *b->p != '\n') die(b, HAI_ERR_FORMAT, "line %d: unexpected '%c'", b->line, *b->p);
        skip_space(b, true);
    }
}

/* ---- checks ---------------------------------------------------------------------------------- */

/* A rule that can start with itself (through rules that may match nothing) would be expanded
 * forever; found by a depth-first walk over "may start with" edges. */
static void check_left_recursion(bld *b) {
    uint32_t n = b->n_rules;
    bool *nullable = calloc(n, 1);
    uint8_t *mark = calloc(n, 1);
    uint32_t *stack = malloc(n * sizeof *stack), *edge = malloc(n * sizeof *edge);
    if (!nullable || !mark || !stack || !edge) {
        free(nullable), free(mark), free(stack), free(edge);
        die(b, HAI_ERR_NOMEM, "out of memory");
    }
    for (bool changed = true; changed;) {
        changed = false;
        for (uint32_t r = 0; r < n; r++) {
            if (nullable[r]) continue;
            for (uint32_t a = 0; a < b->rules[r].n && !nullable[r]; a++) {
                balt *al = &b->rules[r].alts[a];
                uint32_t i = 0;
                while (i < al->n && al->it[i].type == GE_REF && nullable[al->it[i].arg]) i++;
                if (i == al->n) nullable[r] = changed = true;
            }
        }
    }
    /* iterative DFS; edge[r] walks r's alternatives' leading items as (alt << 16 | item) would be
     * too small, so the successors are recomputed: a rule's k-th leading reference */
    const char *bad = NULL;
    for (uint32_t s = 0; s < n && !bad; s++) {
        if (mark[s]) continue;
        uint32_t sp = 0;
        stack[sp] = s, edge[sp++] = 0, mark[s] = 1;
        while (sp && !bad) {
            uint32_t r = stack[sp - 1], k = edge[sp - 1]++, seen = 0, next = UINT32_MAX;
            for (uint32_t a = 0; a < b->rules[r].n && next == UINT32_MAX; a++) {
                balt *al = &b->rules[r].alts[a];
                for (uint32_t i = 0; i < al->n && al->it[i].type == GE_REF; i++) {
                    if (seen++ == k) {
                        next = al->it[i].arg;
                        break;
                    }
                    if (!nullable[al->it[i].arg]) break;
                }
            }
            if (next == UINT32_MAX) {
                mark[r] = 2;
                sp--;
            } else if (mark[next] == 1) {
                bad = b->rules[next].name;
            } else if (!mark[next]) {
                mark[next] = 1;
                stack[sp] = next, edge[sp++] = 0;
            }
        }
    }
    free(nullable), free(mark), free(stack), free(edge);
    if (bad) die(b, HAI_ERR_FORMAT, "rule '%s' is left-recursive (it can begin with itself, perhaps through a repetition of something that may be empty)", bad);
}

static void bld_free(bld *b) {
    for (uint32_t i = 0; i < b->n_rules; i++) {
        for (uint32_t a = 0; a < b->rules[i].n; a++) free(b->rules[i].alts[a].it);
        free(b->rules[i].alts);
        free(b->rules[i].name);
    }
    free(b->rules);
    free(b->sets);
    free(b->cr);
    free(b->sq);
    free(b->tmp);
}

void gram_free(gram *g) {
    if (!g) return;
    free(g->el);
    free(g->alt);
    free(g->alt0);
    free(g->sets);
    free(g->rest);
    memset(g, 0, sizeof *g);
}

hai_status gram_compile(const char *text, size_t len, const char *root, gram *out, hai_error *err) {
    memset(out, 0, sizeof *out);
    if (!text || !root) return hai_fail(err, HAI_ERR_INVALID, "grammar: NULL argument");
    bld b = {.p = text, .end = text + len, .line = 1, .err = err};
    if (setjmp(b.fail)) {
        bld_free(&b);
        gram_free(out);
        return b.st;
    }
    if (memchr(text, 0, len)) die(&b, HAI_ERR_FORMAT, "the grammar contains a NUL byte");
    parse_grammar(&b);
    uint32_t r_root = UINT32_MAX;
    for (uint32_t i = 0; i < b.n_rules; i++) {
        if (!b.rules[i].defined) die(&b, HAI_ERR_FORMAT, "line %d: rule '%s' is used but not defined", b.rules[i].line, b.rules[i].name);
        if (!strcmp(b.rules[i].name, root)) r_root = i;
    }
    if (r_root == UINT32_MAX) die(&b, HAI_ERR_FORMAT, "there is no '%s' rule to start from", root);
    check_left_recursion(&b);
    /* flatten */
    uint32_t n_alt = 0, n_el = 0;
    for (uint32_t i = 0; i < b.n_rules; i++) {
        n_alt += b.rules[i].n;
        for (uint32_t a = 0; a < b.rules[i].n; a++) n_el += b.rules[i].alts[a].n + 1;
    }
    out->el = malloc((size_t)n_el * sizeof *out->el);
    out->alt = malloc(((size_t)n_alt + 1) * sizeof *out->alt);
    out->alt0 = malloc(((size_t)b.n_rules + 1) * sizeof *out->alt0);
    out->sets = malloc(((size_t)b.n_sets + 1) * sizeof *out->sets);
    if (!out->el || !out->alt || !out->alt0 || !out->sets) die(&b, HAI_ERR_NOMEM, "out of memory");
    if (b.n_sets) memcpy(out->sets, b.sets, (size_t)b.n_sets * sizeof *b.sets);
    out->n_sets = b.n_sets;
    uint32_t e = 0, ai = 0;
    for (uint32_t i = 0; i < b.n_rules; i++) {
        out->alt0[i] = ai;
        for (uint32_t a = 0; a < b.rules[i].n; a++) {
            out->alt[ai++] = e;
            for (uint32_t k = 0; k < b.rules[i].alts[a].n; k++) out->el[e++] = (gelem){b.rules[i].alts[a].it[k].type, b.rules[i].alts[a].it[k].arg};
            out->el[e++] = (gelem){GE_END, 0};
        }
    }
    out->alt0[b.n_rules] = ai;
    out->n_el = e;
    out->n_rules = b.n_rules;
    out->root = r_root;
    /* the fewest bytes each rule can match (a fixpoint from "none"), then each element's rest */
    uint32_t *minlen = malloc(((size_t)out->n_rules + 1) * sizeof *minlen);
    out->rest = malloc(((size_t)out->n_el + 1) * sizeof *out->rest);
    if (!minlen || !out->rest) {
        free(minlen);
        die(&b, HAI_ERR_NOMEM, "out of memory");
    }
    for (uint32_t r = 0; r < out->n_rules; r++) minlen[r] = GRAM_INF;
    for (bool changed = true; changed;) {
        changed = false;
        for (uint32_t r = 0; r < out->n_rules; r++)
            for (uint32_t a = out->alt0[r]; a < out->alt0[r + 1]; a++) {
                uint32_t l = 0;
                for (uint32_t p = out->alt[a]; out->el[p].type != GE_END; p++) {
                    l += out->el[p].type == GE_BYTES ? 1 : minlen[out->el[p].arg];
                    if (l > GRAM_INF) l = GRAM_INF;
                }
                if (l < minlen[r]) minlen[r] = l, changed = true;
            }
    }
    for (uint32_t a = 0; a < out->alt0[out->n_rules]; a++) {
        uint32_t end = out->alt[a];
        while (out->el[end].type != GE_END) end++;
        out->rest[end] = 0;
        for (uint32_t p = end; p-- > out->alt[a];) {
            uint32_t v = out->rest[p + 1] + (out->el[p].type == GE_BYTES ? 1 : minlen[out->el[p].arg]);
            out->rest[p] = v > GRAM_INF ? GRAM_INF : v;
        }
    }
    bool finite = minlen[r_root] < GRAM_INF;
    free(minlen);
    if (!finite) die(&b, HAI_ERR_FORMAT, "rule '%s' has no finite sentence (every way through it recurses forever)", root);
    bld_free(&b);
    return HAI_OK;
}
