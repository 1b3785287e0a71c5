/* JSON Schema to GBNF (grammar.h). Each schema node becomes a rule named after its path
 * (root, root-name, root-items, ...); $refs become a rule per target, so recursive schemas are
 * recursive rules. Values are followed by `ws`, a bounded run of whitespace: a model cannot
 * spend its tokens on blanks, and the output is plain JSON any parser reads.
 *
 * Objects list their properties in the schema's order; optional ones may be left out (rules
 * root-r<i>: "what may follow once a property has been written", so the grammar stays linear in
 * the number of properties). Extra keys only when additionalProperties allows them. Integer
 * bounds become digit patterns (a range of numbers as ranges of digits, length by length).
 * Keywords that would constrain a value and are not enforced here are refused by name; the
 * annotations (title, description, default, examples, ...) are ignored. */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/text.h"
#include "grammar.h"
#include "base/unicode.h"

#define MAX_RULES 20000
#define MAX_DEPTH 128 /* nested schemas (a $ref is one step) */


typedef struct refdef {
    char *ptr;  /* "#/$defs/x" */
    char *rule; /* its rule */
} refdef;

typedef struct sctx {
    hai_text out;
    char **names; /* rules made so far */
    uint32_t n_names, cap_names;
    refdef *refs;
    uint32_t n_refs, cap_refs;
    unsigned used; /* primitives written: bit per prim */
    void **own;    /* scratch arrays, freed at the end either way (an error longjmps past their users) */
    uint32_t n_own, cap_own;
    hai_text all;
    hai_text arr;  /* gen_array's rule while it is built (here, not on the stack: an error longjmps past it) */
    const cJSON *root;
    bool lenient; /* keywords not enforced are ignored rather than refused (tools that are not strict) */
    int depth;
    jmp_buf fail;
    hai_error *err;
    hai_status st;
} sctx;

HAI_PRINTF(3, 4) static _Noreturn void die(sctx *c, hai_status st, const char *fmt, ...) {
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->st = hai_fail(c->err, st, "json schema: %s", msg);
    longjmp(c->fail, 1);
}

static void put(sctx *c, hai_text *b, const char *s, size_t n) {
    if (!text_put(b, s, n)) die(c, HAI_ERR_NOMEM, "out of memory");
}

HAI_PRINTF(3, 4) static void putf(sctx *c, hai_text *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) die(c, HAI_ERR_INTERNAL, "a rule piece too long");
    put(c, b, tmp, (size_t)n);
}

static void puts_(sctx *c, hai_text *b, const char *s) { put(c, b, s, strlen(s)); }

/* A GBNF string literal of bytes s[0..n): quotes, backslashes and control bytes escaped. */
static void put_literal(sctx *c, hai_text *b, const char *s, size_t n) {
    put(c, b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            char e[2] = {'\\', (char)ch};
            put(c, b, e, 2);
        } else if (ch < 0x20 || ch == 0x7F) {
            putf(c, b, "\\x%02X", ch);
        } else {
            put(c, b, (const char *)&ch, 1);
        }
    }
    put(c, b, "\"", 1);
}

/* Room for one more owned pointer (before what it will hold is made: nothing leaks if this fails). */
static void own_reserve(sctx *c) {
    if (c->n_own < c->cap_own) return;
    uint32_t cap = c->cap_own ? c->cap_own * 2 : 16;
    void **p = realloc(c->own, cap * sizeof *p);
    if (!p) die(c, HAI_ERR_NOMEM, "out of memory");
    c->own = p, c->cap_own = cap;
}

static void *own(sctx *c, size_t n, size_t size) {
    own_reserve(c);
    void *q = calloc(n + 1, size);
    if (!q) die(c, HAI_ERR_NOMEM, "out of memory");
    return c->own[c->n_own++] = q;
}

/* A JSON value's text (owned: freed with the rest, whatever happens after). */
static const char *json_text(sctx *c, const cJSON *v) {
    own_reserve(c);
    char *t = cJSON_PrintUnformatted(v);
    if (!t) die(c, HAI_ERR_NOMEM, "out of memory");
    return c->own[c->n_own++] = t;
}

/* A fresh rule name from a hint (characters GBNF names cannot hold become '-'). */
static char *rule_name(sctx *c, const char *hint) {
    if (c->n_names >= MAX_RULES) die(c, HAI_ERR_LIMIT, "the schema needs more than %d rules", MAX_RULES);
    char base[80];
    size_t k = 0;
    for (const char *p = hint; *p && k < 60; p++) base[k++] = (char)(((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')) ? *p : '-');
    if (!k) base[k++] = 'x';
    base[k] = 0;
    char name[96];
    snprintf(name, sizeof name, "%s", base);
    for (unsigned n = 2;; n++) {
        bool taken = false;
        for (uint32_t i = 0; i < c->n_names && !taken; i++) taken = !strcmp(c->names[i], name);
        if (!taken) break;
        snprintf(name, sizeof name, "%s%u", base, n);
    }
    if (c->n_names == c->cap_names) {
        uint32_t cap = c->cap_names ? c->cap_names * 2 : 64;
        char **p = realloc(c->names, cap * sizeof *p);
        if (!p) die(c, HAI_ERR_NOMEM, "out of memory");
        c->names = p, c->cap_names = cap;
    }
    char *s = strdup(name);
    if (!s) die(c, HAI_ERR_NOMEM, "out of memory");
    c->names[c->n_names++] = s;
    return s;
}

/* ---- primitives ------------------------------------------------------------------------------ */

enum { P_WS, P_CHAR, P_STRING, P_INTEGER, P_NUMBER, P_BOOLEAN, P_NULL, P_VALUE, P_OBJECT, P_ARRAY, P_COUNT };

static const char *const prim_name[P_COUNT] = {"ws", "char", "string", "integer", "number", "boolean", "null", "value", "object", "array"};

static const char *const prim_rule[P_COUNT] = {
    "ws ::= | \" \" | \"\\n\" [ \\t]{0,20}\n",
    "char ::= [^\"\\\\\\x00-\\x1F\\x7F] | \"\\\\\" ([\"\\\\/bfnrt] | \"u\" [0-9a-fA-F]{4})\n",
    "string ::= \"\\\"\" char* \"\\\"\" ws\n",
    "integer ::= \"-\"? ([0-9] | [1-9] [0-9]{1,15}) ws\n",
    "number ::= \"-\"? ([0-9] | [1-9] [0-9]{1,15}) (\".\" [0-9]{1,15})? ([eE] [-+]? [0-9]{1,3})? ws\n",
    "boolean ::= (\"true\" | \"false\") ws\n",
    "null ::= \"null\" ws\n",
    "value ::= object | array | string | number | boolean | null\n",
    "object ::= \"{\" ws (string \":\" ws value (\",\" ws string \":\" ws value)*)? \"}\" ws\n",
    "array ::= \"[\" ws (value (\",\" ws value)*)? \"]\" ws\n",
};

static const unsigned prim_needs[P_COUNT] = {
    0, 0, 1u << P_CHAR | 1u << P_WS, 1u << P_WS, 1u << P_WS, 1u << P_WS, 1u << P_WS,
    1u << P_OBJECT | 1u << P_ARRAY | 1u << P_STRING | 1u << P_NUMBER | 1u << P_BOOLEAN | 1u << P_NULL,
    1u << P_STRING | 1u << P_VALUE | 1u << P_WS, 1u << P_VALUE | 1u << P_WS,
};

static const char *prim(sctx *c, int p) {
    c->used |= 1u << p;
    return prim_name[p];
}

/* ---- integer ranges ------------------------------------------------------------------------- */

/* Digit strings lo..hi of the same length n (leading zeros kept: these are suffixes). */
static void digits_range(sctx *c, hai_text *b, const char *lo, const char *hi, int n) {
    if (!n) return;
    if (lo[0] == hi[0]) {
        putf(c, b, "\"%c\" ", lo[0]);
        digits_range(c, b, lo + 1, hi + 1, n - 1);
        return;
    }
    bool lo_zero = true, hi_nine = true;
    for (int i = 1; i < n; i++) lo_zero &= lo[i] == '0', hi_nine &= hi[i] == '9';
    char a = lo[0], z = hi[0];
    char nines[24], zeros[24];
    memset(nines, '9', sizeof nines), memset(zeros, '0', sizeof zeros);
    puts_(c, b, "(");
    bool first = true;
    if (!lo_zero) {
        putf(c, b, "\"%c\" ", a);
        digits_range(c, b, lo + 1, nines, n - 1);
        a++;
        first = false;
    }
    char z2 = hi_nine ? z : (char)(z - 1);
    if (a <= z2) {
        putf(c, b, "%s[%c-%c]", first ? "" : "| ", a, z2);
        if (n > 1) putf(c, b, " [0-9]{%d}", n - 1);
        puts_(c, b, " ");
        first = false;
    }
    if (!hi_nine) {
        putf(c, b, "%s\"%c\" ", first ? "" : "| ", z);
        digits_range(c, b, zeros, hi + 1, n - 1);
    }
    puts_(c, b, ") ");
}

static int n_digits(uint64_t v) {
    int d = 1;
    while (v >= 10) v /= 10, d++;
    return d;
}

#define MAX_INT_DIGITS 16

/* Non-negative integers lo..hi (hi == UINT64_MAX: no bound, up to MAX_INT_DIGITS digits), as
 * alternatives of one length each. */
static void uint_range(sctx *c, hai_text *b, uint64_t lo, uint64_t hi) {
    int dl = n_digits(lo), dh = hi == UINT64_MAX ? MAX_INT_DIGITS : n_digits(hi);
    if (dl > dh) dh = dl;
    puts_(c, b, "(");
    for (int d = dl; d <= dh; d++) {
        uint64_t p = 1;
        for (int i = 1; i < d; i++) p *= 10;
        uint64_t l = d == 1 ? 0 : p, h = p * 10 - 1;
        if (l < lo) l = lo;
        if (hi != UINT64_MAX && h > hi) h = hi;
        if (l > h) continue;
        char ls[24], hs[24];
        snprintf(ls, sizeof ls, "%0*" PRIu64, d, l);
        snprintf(hs, sizeof hs, "%0*" PRIu64, d, h);
        if (d > dl) puts_(c, b, "| ");
        digits_range(c, b, ls, hs, d);
    }
    puts_(c, b, ")");
}

/* Integers in [lo, hi] (has_lo / has_hi: bounds given); |bounds| below 10^15. */
static void int_range(sctx *c, hai_text *b, bool has_lo, int64_t lo, bool has_hi, int64_t hi) {
    bool alt = false;
    puts_(c, b, "(");
    if (!has_lo || lo < 0) { /* negatives: "-" then -hi' .. -lo */
        uint64_t nlo = has_hi && hi < 0 ? (uint64_t)-hi : 1, nhi = has_lo ? (uint64_t)-lo : UINT64_MAX;
        if (nlo <= nhi) {
            puts_(c, b, "\"-\" ");
            uint_range(c, b, nlo, nhi);
            alt = true;
        }
    }
    if (!has_hi || hi >= 0) {
        uint64_t plo = has_lo && lo > 0 ? (uint64_t)lo : 0, phi = has_hi ? (uint64_t)hi : UINT64_MAX;
        if (alt) puts_(c, b, " | ");
        uint_range(c, b, plo, phi);
    }
    puts_(c, b, ")");
}

/* ---- schema nodes ---------------------------------------------------------------------------- */

static const char *gen(sctx *c, const cJSON *s, const char *hint, const char *path);

static const cJSON *kw(const cJSON *s, const char *k) { return cJSON_GetObjectItemCaseSensitive(s, k); }

/* Keywords that constrain values and that this does not enforce. */
static void refuse_unsupported(sctx *c, const cJSON *s, const char *path) {
    if (c->lenient) return;
    static const char *const no[] = {"pattern", "patternProperties", "minProperties", "maxProperties", "contains", "minContains",
                                     "maxContains", "not", "if", "then", "else", "dependentRequired", "dependentSchemas",
                                     "dependencies", "multipleOf", "propertyNames", "unevaluatedProperties", "unevaluatedItems",
                                     "$dynamicRef", "$recursiveRef"};
    for (size_t i = 0; i < sizeof no / sizeof *no; i++)
        if (kw(s, no[i])) die(c, HAI_ERR_UNSUPPORTED, "'%s' (at %s) is not supported", no[i], path);
    const cJSON *u = kw(s, "uniqueItems");
    if (u && !cJSON_IsFalse(u)) die(c, HAI_ERR_UNSUPPORTED, "'uniqueItems' (at %s) is not supported", path);
}

static void rule_begin(sctx *c, const char *name) { putf(c, &c->out, "%s ::= ", name); }
static void rule_end(sctx *c) { puts_(c, &c->out, "\n"); }

/* A JSON value written literally (enum, const), then ws. */
static void put_json_literal(sctx *c, hai_text *b, const cJSON *v) {
    const char *txt = json_text(c, v);
    put_literal(c, b, txt, strlen(txt));
    puts_(c, b, " ");
    puts_(c, b, prim(c, P_WS));
}

static bool get_count(sctx *c, const cJSON *s, const char *k, const char *path, uint64_t *out) {
    const cJSON *v = kw(s, k);
    if (!v) return false;
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) || v->valuedouble != __builtin_floor(v->valuedouble))
        die(c, HAI_ERR_FORMAT, "'%s' (at %s) must be a non-negative integer", k, path);
    if (v->valuedouble > GRAM_MAX_REPEAT) die(c, HAI_ERR_UNSUPPORTED, "'%s' (at %s) above %d is not supported", k, path, GRAM_MAX_REPEAT);
    *out = (uint64_t)v->valuedouble;
    return true;
}

/* x{min,max} as GBNF (max UINT64_MAX: none). */
static void put_repeat(sctx *c, hai_text *b, uint64_t min, uint64_t max) {
    if (max == UINT64_MAX) {
        if (min == 0) puts_(c, b, "*");
        else if (min == 1) puts_(c, b, "+");
        else putf(c, b, "{%" PRIu64 ",}", min);
    } else {
        putf(c, b, "{%" PRIu64 ",%" PRIu64 "}", min, max);
    }
}

static void gen_string(sctx *c, const cJSON *s, const char *name, const char *path) {
    const cJSON *f = kw(s, "format");
    if (f) {
        if (!cJSON_IsString(f)) die(c, HAI_ERR_FORMAT, "'format' (at %s) must be a string", path);
        static const char *const fmt[][2] = {
            {"date", "[0-9]{4} \"-\" (\"0\" [1-9] | \"1\" [0-2]) \"-\" (\"0\" [1-9] | [12] [0-9] | \"3\" [01])"},
            {"time", "([01] [0-9] | \"2\" [0-3]) \":\" [0-5] [0-9] \":\" [0-5] [0-9] (\".\" [0-9]{1,6})? (\"Z\" | [+-] ([01] [0-9] | \"2\" [0-3]) \":\" [0-5] [0-9])"},
            {"date-time", "[0-9]{4} \"-\" (\"0\" [1-9] | \"1\" [0-2]) \"-\" (\"0\" [1-9] | [12] [0-9] | \"3\" [01]) \"T\" ([01] [0-9] | \"2\" [0-3]) \":\" [0-5] [0-9] \":\" [0-5] [0-9] (\".\" [0-9]{1,6})? (\"Z\" | [+-] ([01] [0-9] | \"2\" [0-3]) \":\" [0-5] [0-9])"},
            {"uuid", "[0-9a-f]{8} \"-\" [0-9a-f]{4} \"-\" [0-9a-f]{4} \"-\" [0-9a-f]{4} \"-\" [0-9a-f]{12}"},
        };
        for (size_t i = 0; i < sizeof fmt / sizeof *fmt; i++) {
            if (strcmp(f->valuestring, fmt[i][0])) continue;
            if (kw(s, "minLength") || kw(s, "maxLength")) die(c, HAI_ERR_UNSUPPORTED, "'minLength'/'maxLength' with 'format' (at %s) is not supported", path);
            rule_begin(c, name);
            putf(c, &c->out, "\"\\\"\" %s \"\\\"\" %s", fmt[i][1], prim(c, P_WS));
            rule_end(c);
            return;
        }
        die(c, HAI_ERR_UNSUPPORTED, "'format': '%.40s' (at %s) is not supported (date, time, date-time, uuid are)", f->valuestring, path);
    }
    uint64_t mn = 0, mx = UINT64_MAX;
    bool has_mn = get_count(c, s, "minLength", path, &mn), has_mx = get_count(c, s, "maxLength", path, &mx);
    if (has_mn && has_mx && mn > mx) die(c, HAI_ERR_FORMAT, "'minLength' is above 'maxLength' (at %s)", path);
    rule_begin(c, name);
    if (!has_mn && !has_mx) {
        puts_(c, &c->out, prim(c, P_STRING));
    } else {
        putf(c, &c->out, "\"\\\"\" %s", prim(c, P_CHAR));
        put_repeat(c, &c->out, mn, mx);
        putf(c, &c->out, " \"\\\"\" %s", prim(c, P_WS));
    }
    rule_end(c);
}

static bool get_int_bound(sctx *c, const cJSON *s, const char *k, const char *path, int64_t *out) {
    const cJSON *v = kw(s, k);
    if (!v) return false;
    if (!cJSON_IsNumber(v)) die(c, HAI_ERR_FORMAT, "'%s' (at %s) must be a number", k, path);
    double d = v->valuedouble;
    if (d > 9.99e15 || d < -9.99e15) { /* beyond the digits the grammar writes: no bound in practice */
        if ((d > 0) == (!strcmp(k, "minimum") || !strcmp(k, "exclusiveMinimum")))
            die(c, HAI_ERR_UNSUPPORTED, "'%s': %g (at %s) is beyond the supported integers (|n| < 10^16)", k, d, path);
        return false;
    }
    bool is_min = !strcmp(k, "minimum") || !strcmp(k, "exclusiveMinimum"), excl = !strncmp(k, "exclusive", 9);
    /* a fractional bound: the nearest integer inside it */
    double r = is_min ? __builtin_ceil(d) : __builtin_floor(d);
    if (excl && r == d) r += is_min ? 1 : -1;
    *out = (int64_t)r;
    return true;
}

static void gen_integer(sctx *c, const cJSON *s, const char *name, const char *path) {
    int64_t lo = 0, hi = 0, v;
    bool has_lo = false, has_hi = false;
    if (get_int_bound(c, s, "minimum", path, &v)) lo = v, has_lo = true;
    if (get_int_bound(c, s, "exclusiveMinimum", path, &v) && (!has_lo || v > lo)) lo = v, has_lo = true;
    if (get_int_bound(c, s, "maximum", path, &v)) hi = v, has_hi = true;
    if (get_int_bound(c, s, "exclusiveMaximum", path, &v) && (!has_hi || v < hi)) hi = v, has_hi = true;
    if (has_lo && has_hi && lo > hi) die(c, HAI_ERR_FORMAT, "no integer lies within the bounds (at %s)", path);
    rule_begin(c, name);
    if (!has_lo && !has_hi) {
        puts_(c, &c->out, prim(c, P_INTEGER));
    } else {
        int_range(c, &c->out, has_lo, lo, has_hi, hi);
        putf(c, &c->out, " %s", prim(c, P_WS));
    }
    rule_end(c);
}

static void gen_number(sctx *c, const cJSON *s, const char *name, const char *path) {
    static const char *const bounds[] = {"minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"};
    bool nonneg = false;
    for (size_t i = 0; i < 4; i++) {
        const cJSON *b = kw(s, bounds[i]);
        if (!b) continue;
        if (i == 0 && cJSON_IsNumber(b) && b->valuedouble == 0) { /* minimum 0: no sign */
            nonneg = true;
            continue;
        }
        if (cJSON_IsNumber(b) && ((i < 2 && b->valuedouble < -9.99e15) || (i >= 2 && b->valuedouble > 9.99e15))) continue;
        die(c, HAI_ERR_UNSUPPORTED, "'%s' on a number (at %s) is not supported (integer bounds and 'minimum': 0 are)", bounds[i], path);
    }
    rule_begin(c, name);
    if (nonneg) putf(c, &c->out, "([0-9] | [1-9] [0-9]{1,15}) (\".\" [0-9]{1,15})? ([eE] [-+]? [0-9]{1,3})? %s", prim(c, P_WS));
    else puts_(c, &c->out, prim(c, P_NUMBER));
    rule_end(c);
}

static void gen_array(sctx *c, const cJSON *s, const char *name, const char *path) {
    const cJSON *items = kw(s, "items"), *prefix = kw(s, "prefixItems");
    if (cJSON_IsArray(items)) prefix = items, items = kw(s, "additionalItems"); /* the draft-04 tuple form */
    uint64_t mn = 0, mx = UINT64_MAX;
    bool has_mn = get_count(c, s, "minItems", path, &mn), has_mx = get_count(c, s, "maxItems", path, &mx);
    (void)has_mn;
    if (has_mx && mn > mx) die(c, HAI_ERR_FORMAT, "'minItems' is above 'maxItems' (at %s)", path);
    char sub[600];
    const char **pre = NULL;
    int np = 0;
    if (prefix) {
        if (!cJSON_IsArray(prefix)) die(c, HAI_ERR_FORMAT, "'prefixItems' (at %s) must be an array", path);
        np = cJSON_GetArraySize(prefix);
        if (np > 1000) die(c, HAI_ERR_LIMIT, "'prefixItems' (at %s) has more than 1000 schemas", path);
        pre = own(c, (size_t)np, sizeof *pre);
        int i = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, prefix) {
            char h[80];
            snprintf(h, sizeof h, "%.60s-%d", name, i);
            snprintf(sub, sizeof sub, "%.280s/prefixItems/%d", path, i);
            pre[i++] = gen(c, it, h, sub);
        }
    }
    const char *item = NULL;
    bool more = !(cJSON_IsFalse(items));
    if (more) {
        char h[80];
        snprintf(h, sizeof h, "%.60s-item", name);
        snprintf(sub, sizeof sub, "%.280s/items", path);
        item = items ? gen(c, items, h, sub) : prim(c, P_VALUE);
    }
    hai_text *b = &c->arr;
    b->n = 0;
    putf(c, b, "\"[\" %s ", prim(c, P_WS));
    /* the prefix items first, then the rest; counts cover both */
    uint64_t min_rest = mn > (uint64_t)np ? mn - (uint64_t)np : 0;
    uint64_t max_rest = !more ? 0 : mx == UINT64_MAX ? UINT64_MAX : (mx > (uint64_t)np ? mx - (uint64_t)np : 0);
    int n_pre = np;
    if (has_mx && mx < (uint64_t)np) n_pre = (int)mx;
    int n_pre_req = (int)(mn < (uint64_t)n_pre ? mn : (uint64_t)n_pre);
    /* prefix items: the first n_pre_req required, the others optional in a nest */
    int opened = 0;
    for (int i = 0; i < n_pre; i++) {
        if (i >= n_pre_req) put(c, b, "(", 1), opened++;
        if (i) putf(c, b, "\",\" %s ", prim(c, P_WS));
        putf(c, b, "%s ", pre[i]);
    }
    if (item && max_rest > 0) {
        if (n_pre == 0) { /* item (, item){min-1, max-1}, optional when min is 0 */
            if (min_rest == 0) put(c, b, "(", 1);
            putf(c, b, "%s (\",\" %s %s)", item, prim(c, P_WS), item);
            put_repeat(c, b, min_rest ? min_rest - 1 : 0, max_rest == UINT64_MAX ? UINT64_MAX : max_rest - 1);
            if (min_rest == 0) put(c, b, ")?", 2);
        } else if (n_pre == np) {
            putf(c, b, "(\",\" %s %s)", prim(c, P_WS), item);
            put_repeat(c, b, min_rest, max_rest);
        }
        put(c, b, " ", 1);
    }
    for (int i = 0; i < opened; i++) put(c, b, ")? ", 3);
    putf(c, b, "\"]\" %s", prim(c, P_WS));
    rule_begin(c, name);
    put(c, &c->out, b->p, b->n);
    rule_end(c);
}

static void gen_object(sctx *c, const cJSON *s, const char *name, const char *path) {
    const cJSON *props = kw(s, "properties"), *req = kw(s, "required"), *addl = kw(s, "additionalProperties");
    if (props && !cJSON_IsObject(props)) die(c, HAI_ERR_FORMAT, "'properties' (at %s) must be an object", path);
    if (req && !cJSON_IsArray(req)) die(c, HAI_ERR_FORMAT, "'required' (at %s) must be an array", path);
    int n = props ? cJSON_GetArraySize(props) : 0;
    if (n > 1000) die(c, HAI_ERR_LIMIT, "'properties' (at %s) has more than 1000 entries", path);
    char sub[600], h[96];
    const cJSON *r;
    cJSON_ArrayForEach(r, req) {
        if (!cJSON_IsString(r)) die(c, HAI_ERR_FORMAT, "'required' (at %s) must hold strings", path);
        if (!props || !kw(props, r->valuestring))
            die(c, HAI_ERR_UNSUPPORTED, "'required' names '%.40s' (at %s), which is not in 'properties'", r->valuestring, path);
    }
    /* extra keys: additionalProperties true or a schema; with no properties, absent means any */
    const char *extra = NULL;
    bool allow_extra = addl ? !cJSON_IsFalse(addl) : n == 0;
    if (allow_extra) {
        if (addl && cJSON_IsObject(addl)) {
            snprintf(h, sizeof h, "%.60s-additional", name);
            snprintf(sub, sizeof sub, "%.280s/additionalProperties", path);
            extra = gen(c, addl, h, sub);
        } else {
            extra = prim(c, P_VALUE);
        }
        prim(c, P_STRING);
    }
    /* a rule per property: its key and value */
    char **kv = own(c, (size_t)n, sizeof *kv);
    bool *required = own(c, (size_t)n, sizeof *required);
    int i = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, props) {
        snprintf(h, sizeof h, "%.40s-%.40s", name, p->string);
        snprintf(sub, sizeof sub, "%.200s/properties/%.200s", path, p->string);
        const char *val = gen(c, p, h, sub);
        snprintf(h, sizeof h, "%.40s-%.40s-kv", name, p->string);
        char *k = rule_name(c, h);
        rule_begin(c, k);
        own_reserve(c);
        cJSON *key = cJSON_CreateStringReference(p->string); /* the key, as JSON text */
        char *kt = key ? cJSON_PrintUnformatted(key) : NULL;
        cJSON_Delete(key);
        if (!kt) die(c, HAI_ERR_NOMEM, "out of memory");
        c->own[c->n_own++] = kt;
        put_literal(c, &c->out, kt, strlen(kt));
        putf(c, &c->out, " %s \":\" %s %s", prim(c, P_WS), prim(c, P_WS), val);
        rule_end(c);
        kv[i] = k;
        const cJSON *q;
        cJSON_ArrayForEach(q, req) if (!strcmp(q->valuestring, p->string)) required[i] = true;
        i++;
    }
    /* rest_i: what may follow once something was written, for properties i.. */
    char **rest = own(c, (size_t)n, sizeof *rest);
    for (int j = n; j >= 0; j--) {
        snprintf(h, sizeof h, "%.60s-r%d", name, j);
        rest[j] = rule_name(c, h);
        rule_begin(c, rest[j]);
        if (j == n) {
            if (extra) putf(c, &c->out, "(\",\" %s string \":\" %s %s)*", prim(c, P_WS), prim(c, P_WS), extra);
            else puts_(c, &c->out, "\"\""); /* nothing (a rule cannot end its line empty: the next line would continue it) */
        } else if (required[j]) {
            putf(c, &c->out, "\",\" %s %s %s", prim(c, P_WS), kv[j], rest[j + 1]);
        } else {
            putf(c, &c->out, "(\",\" %s %s)? %s", prim(c, P_WS), kv[j], rest[j + 1]);
        }
        rule_end(c);
    }
    /* the body: the first property written is the first present one (no comma before it) */
    rule_begin(c, name);
    putf(c, &c->out, "\"{\" %s ", prim(c, P_WS));
    int opened = 0;
    bool closed = false;
    for (int j = 0; j < n; j++) {
        if (required[j]) {
            putf(c, &c->out, "%s %s", kv[j], rest[j + 1]);
            closed = true;
            break;
        }
        putf(c, &c->out, "(%s %s | ", kv[j], rest[j + 1]);
        opened++;
    }
    if (!closed) { /* no property at all: the extra keys, or nothing */
        if (extra) putf(c, &c->out, "(string \":\" %s %s %s)?", prim(c, P_WS), extra, rest[n]);
    }
    for (int j = 0; j < opened; j++) puts_(c, &c->out, ")");
    putf(c, &c->out, " \"}\" %s", prim(c, P_WS));
    rule_end(c);
}

/* A JSON pointer ("#/$defs/x") resolved in the root schema. */
static const cJSON *resolve(sctx *c, const char *ref, const char *path) {
    if (ref[0] != '#') die(c, HAI_ERR_UNSUPPORTED, "'$ref': '%.80s' (at %s): only references inside the schema (#...) are supported", ref, path);
    const cJSON *cur = c->root;
    const char *p = ref + 1;
    while (*p) {
        if (*p != '/') die(c, HAI_ERR_FORMAT, "'$ref': '%.80s' (at %s) is not a JSON pointer", ref, path);
        p++;
        char tok[256];
        size_t k = 0;
        while (*p && *p != '/' && k < sizeof tok - 1) {
            if (p[0] == '~' && p[1] == '0') tok[k++] = '~', p += 2;
            else if (p[0] == '~' && p[1] == '1') tok[k++] = '/', p += 2;
            else tok[k++] = *p++;
        }
        tok[k] = 0;
        if (cJSON_IsArray(cur)) {
            char *e;
            long idx = strtol(tok, &e, 10);
            cur = *e || e == tok ? NULL : cJSON_GetArrayItem(cur, (int)idx);
        } else {
            cur = cJSON_IsObject(cur) ? cJSON_GetObjectItemCaseSensitive(cur, tok) : NULL;
        }
        if (!cur) die(c, HAI_ERR_FORMAT, "'$ref': '%.80s' (at %s) points at nothing", ref, path);
    }
    return cur;
}

static const char *gen_ref(sctx *c, const char *ref, const char *path) {
    for (uint32_t i = 0; i < c->n_refs; i++)
        if (!strcmp(c->refs[i].ptr, ref)) return c->refs[i].rule;
    const cJSON *target = resolve(c, ref, path);
    const char *last = strrchr(ref, '/');
    char h[80];
    snprintf(h, sizeof h, "ref-%.60s", last && last[1] ? last + 1 : "root");
    if (c->n_refs == c->cap_refs) {
        uint32_t cap = c->cap_refs ? c->cap_refs * 2 : 16;
        refdef *p = realloc(c->refs, cap * sizeof *p);
        if (!p) die(c, HAI_ERR_NOMEM, "out of memory");
        c->refs = p, c->cap_refs = cap;
    }
    char *rule = rule_name(c, h), *ptr = strdup(ref);
    if (!ptr) die(c, HAI_ERR_NOMEM, "out of memory");
    c->refs[c->n_refs++] = (refdef){ptr, rule}; /* before the body: a reference to itself finds it */
    const char *body = gen(c, target, h, ref);
    rule_begin(c, rule);
    puts_(c, &c->out, body);
    rule_end(c);
    return rule;
}

static void gen_typed(sctx *c, const cJSON *s, const char *type, const char *name, const char *path) {
    if (!strcmp(type, "string")) return gen_string(c, s, name, path);
    if (!strcmp(type, "integer")) return gen_integer(c, s, name, path);
    if (!strcmp(type, "number")) return gen_number(c, s, name, path);
    if (!strcmp(type, "object")) return gen_object(c, s, name, path);
    if (!strcmp(type, "array")) return gen_array(c, s, name, path);
    rule_begin(c, name);
    if (!strcmp(type, "boolean")) puts_(c, &c->out, prim(c, P_BOOLEAN));
    else if (!strcmp(type, "null")) puts_(c, &c->out, prim(c, P_NULL));
    else die(c, HAI_ERR_FORMAT, "'type': '%.40s' (at %s) is not a JSON Schema type", type, path);
    rule_end(c);
}

/* Alternatives of sub-schemas (anyOf, oneOf, a list of types, nullable) as one rule. */
static const char *gen(sctx *c, const cJSON *s, const char *hint, const char *path) {
    if (++c->depth > MAX_DEPTH) die(c, HAI_ERR_LIMIT, "the schema nests deeper than %d (at %s)", MAX_DEPTH, path);
    char sub[600], h[96];
    const char *res;
    if (cJSON_IsTrue(s) || (cJSON_IsObject(s) && !s->child)) { /* any value */
        res = prim(c, P_VALUE);
        c->depth--;
        return res;
    }
    if (cJSON_IsFalse(s)) die(c, HAI_ERR_FORMAT, "the schema at %s allows no value", path);
    if (!cJSON_IsObject(s)) die(c, HAI_ERR_FORMAT, "the schema at %s must be an object or a boolean", path);
    refuse_unsupported(c, s, path);
    char *name = rule_name(c, hint);
    const cJSON *ref = kw(s, "$ref"), *en = kw(s, "enum"), *cn = kw(s, "const"), *type = kw(s, "type"), *nullable = kw(s, "nullable");
    const cJSON *any = kw(s, "anyOf") ? kw(s, "anyOf") : kw(s, "oneOf"), *all = kw(s, "allOf");
    bool or_null = cJSON_IsTrue(nullable);
    if (all && c->lenient && (!cJSON_IsArray(all) || cJSON_GetArraySize(all) != 1 || any || ref || type)) {
        rule_begin(c, name); /* not enforced: any value */
        puts_(c, &c->out, prim(c, P_VALUE));
    } else if (all) {
        if (!cJSON_IsArray(all) || cJSON_GetArraySize(all) != 1 || any || ref || type)
            die(c, HAI_ERR_UNSUPPORTED, "'allOf' (at %s) is supported only with one schema", path);
        snprintf(sub, sizeof sub, "%.280s/allOf/0", path);
        snprintf(h, sizeof h, "%.60s-all", name);
        const char *r = gen(c, cJSON_GetArrayItem(all, 0), h, sub);
        rule_begin(c, name);
        puts_(c, &c->out, r);
    } else if (ref) {
        if (!cJSON_IsString(ref)) die(c, HAI_ERR_FORMAT, "'$ref' (at %s) must be a string", path);
        const char *r = gen_ref(c, ref->valuestring, path);
        rule_begin(c, name);
        puts_(c, &c->out, r);
    } else if (cn) {
        rule_begin(c, name);
        put_json_literal(c, &c->out, cn);
    } else if (en) {
        if (!cJSON_IsArray(en) || !cJSON_GetArraySize(en)) die(c, HAI_ERR_FORMAT, "'enum' (at %s) must be a non-empty array", path);
        rule_begin(c, name);
        const cJSON *v;
        bool first = true;
        cJSON_ArrayForEach(v, en) {
            if (!first) puts_(c, &c->out, " | ");
            put_json_literal(c, &c->out, v);
            first = false;
        }
    } else if (any) {
        if (!cJSON_IsArray(any) || !cJSON_GetArraySize(any)) die(c, HAI_ERR_FORMAT, "'anyOf'/'oneOf' (at %s) must be a non-empty array", path);
        int n = cJSON_GetArraySize(any), i = 0;
        const char **alts = own(c, (size_t)n, sizeof *alts);
        const cJSON *v;
        cJSON_ArrayForEach(v, any) {
            snprintf(sub, sizeof sub, "%.280s/anyOf/%d", path, i);
            snprintf(h, sizeof h, "%.60s-%d", name, i);
            alts[i++] = gen(c, v, h, sub);
        }
        rule_begin(c, name);
        for (i = 0; i < n; i++) putf(c, &c->out, "%s%s", i ? " | " : "", alts[i]);
    } else if (cJSON_IsArray(type)) {
        int n = cJSON_GetArraySize(type), i = 0;
        if (!n) die(c, HAI_ERR_FORMAT, "'type' (at %s) is an empty list", path);
        char **alts = own(c, (size_t)n, sizeof *alts);
        const cJSON *t;
        cJSON_ArrayForEach(t, type) {
            if (!cJSON_IsString(t)) die(c, HAI_ERR_FORMAT, "'type' (at %s) must hold strings", path);
            snprintf(h, sizeof h, "%.60s-%.20s", name, t->valuestring);
            alts[i] = rule_name(c, h);
            gen_typed(c, s, t->valuestring, alts[i], path);
            i++;
        }
        rule_begin(c, name);
        for (i = 0; i < n; i++) putf(c, &c->out, "%s%s", i ? " | " : "", alts[i]);
    } else if (cJSON_IsString(type)) {
        if (!or_null) {
            gen_typed(c, s, type->valuestring, name, path);
            c->depth--;
            return name;
        }
        snprintf(h, sizeof h, "%.60s-v", name);
        char *v = rule_name(c, h);
        gen_typed(c, s, type->valuestring, v, path);
        rule_begin(c, name);
        puts_(c, &c->out, v);
    } else if (type) {
        die(c, HAI_ERR_FORMAT, "'type' (at %s) must be a string or a list of strings", path);
    } else { /* no type: what its keywords imply (properties: an object; items: an array), else any */
        const char *t = kw(s, "properties") || kw(s, "additionalProperties") || kw(s, "required") ? "object"
                        : kw(s, "items") || kw(s, "prefixItems")                                   ? "array"
                        : kw(s, "minLength") || kw(s, "maxLength") || kw(s, "format")               ? "string"
                                                                                                   : NULL;
        if (!t) {
            rule_begin(c, name);
            puts_(c, &c->out, prim(c, P_VALUE));
        } else {
            snprintf(h, sizeof h, "%.60s-v", name);
            char *v = rule_name(c, h);
            gen_typed(c, s, t, v, path);
            rule_begin(c, name);
            puts_(c, &c->out, v);
        }
    }
    if (or_null) putf(c, &c->out, " | %s", prim(c, P_NULL));
    rule_end(c);
    c->depth--;
    return name;
}

static void sctx_free(sctx *c) {
    for (uint32_t i = 0; i < c->n_names; i++) free(c->names[i]);
    for (uint32_t i = 0; i < c->n_refs; i++) free(c->refs[i].ptr);
    for (uint32_t i = 0; i < c->n_own; i++) free(c->own[i]);
    free(c->names), free(c->refs), free(c->own), text_free(&c->out), text_free(&c->arr);
}

/* Parses one schema (UTF-8 checked, nothing after the value); NULL with the error set. */
static cJSON *parse_schema(const char *schema, size_t len, hai_status *st, hai_error *err) {
    /* the grammar describes UTF-8 text: a key or value that is not UTF-8 could never be written */
    for (size_t i = 0; i < len;) {
        int k = hai_utf8_valid_len((const unsigned char *)schema + i, len - i, NULL);
        if (!k) {
            *st = hai_fail(err, HAI_ERR_FORMAT, "json schema: not valid UTF-8 (byte %zu)", i);
            return NULL;
        }
        i += (size_t)k;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(schema, len, &end, false);
    while (root && end && end < schema + len && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')) end++;
    if (root && end && end < schema + len) {
        cJSON_Delete(root);
        root = NULL;
    }
    if (!root) *st = hai_fail(err, HAI_ERR_FORMAT, "json schema: not valid JSON");
    return root;
}

hai_status schema_to_gbnf_rules(const char *const *schemas, const size_t *lens, const char *const *names, size_t n, const bool *lenient,
                                char **out, hai_error *err) {
    *out = NULL;
    sctx c = {.err = err};
    cJSON *volatile root = NULL; /* the one being converted (freed on an error's longjmp) */
    if (setjmp(c.fail)) {
        cJSON_Delete(root);
        sctx_free(&c);
        text_free(&c.all);
        return c.st;
    }
    hai_text *all = &c.all;
    for (size_t i = 0; i < n; i++) {
        if (!(root = parse_schema(schemas[i], lens[i], &c.st, err))) longjmp(c.fail, 1);
        c.root = root;
        c.lenient = lenient && lenient[i];
        for (uint32_t k = 0; k < c.n_refs; k++) free(c.refs[k].ptr); /* a pointer means a place in its own schema */
        c.n_refs = 0;
        const char *top = gen(&c, root, "root-value", "#");
        putf(&c, all, "%s ::= %s\n", names[i], top);
        cJSON_Delete(root);
        root = NULL;
    }
    /* the schemas' rules, then the primitives used (with what they use) */
    put(&c, all, c.out.p, c.out.n);
    for (unsigned changed = 1; changed;) {
        changed = 0;
        for (int p = 0; p < P_COUNT; p++)
            if ((c.used >> p & 1) && (c.used | prim_needs[p]) != c.used) c.used |= prim_needs[p], changed = 1;
    }
    for (int p = 0; p < P_COUNT; p++)
        if (c.used >> p & 1) puts_(&c, all, prim_rule[p]);
    sctx_free(&c);
    *out = all->p;
    return HAI_OK;
}

hai_status schema_to_gbnf(const char *schema, size_t len, char **out, hai_error *err) {
    static const char *const root[] = {"root"};
    return schema_to_gbnf_rules(&schema, &len, root, 1, NULL, out, err);
}

hai_status hai_json_schema_to_gbnf(const char *schema, size_t len, char **gbnf, hai_error *err) {
    if (!schema || !gbnf) return hai_fail(err, HAI_ERR_INVALID, "json schema: NULL argument");
    return schema_to_gbnf(schema, len, gbnf, err);
}
