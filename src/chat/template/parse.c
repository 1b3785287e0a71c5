/* Template text to a tree. Whitespace follows @huggingface/jinja (what transformers.js and the
 * Hub's chat-template widget render): one trailing newline of the template dropped, blocks'
 * leading spaces and tabs on their line stripped (lstrip_blocks) and the newline after a block
 * removed (trim_blocks), {%- / -%} / {{- / -}} / {#- / -#} strip the whitespace beside them, and
 * {% generation %} markers vanish. Expressions take Jinja's precedence: or < and < not <
 * comparisons (in, is) < ~ < + - < * / // % < ** < unary < filters and postfix. */
#include <stdlib.h>
#include <string.h>

#include "tpl.h"

#define MAX_TEMPLATE (4u << 20)
#define MAX_NEST 200 /* brackets and blocks inside each other */

/* ---- preprocessing: the text with each byte's source line ------------------------------------- */

typedef struct src {
    char *s;
    int *line;
    size_t n;
} src;

static void emit(src *o, char ch, int line) { o->s[o->n] = ch, o->line[o->n++] = line; }

static bool is_ws(char ch) { return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f'; }

/* {%-? \s* (end)?generation \s* -?%} at s[i]: its length, and its dashes */
static size_t generation_tag(const char *s, size_t n, size_t i, bool *l, bool *r) {
    if (i + 2 > n || s[i] != '{' || s[i + 1] != '%') return 0;
    size_t j = i + 2;
    *l = j < n && s[j] == '-';
    if (*l) j++;
    while (j < n && is_ws(s[j])) j++;
    if (j + 3 <= n && !memcmp(s + j, "end", 3)) j += 3;
    if (j + 10 > n || memcmp(s + j, "generation", 10)) return 0;
    j += 10;
    while (j < n && is_ws(s[j])) j++;
    *r = j < n && s[j] == '-';
    if (*r) j++;
    if (j + 2 > n || s[j] != '%' || s[j + 1] != '}') return 0;
    return j + 2 - i;
}

static void preprocess(tpl_ctx *c, const char *in, size_t n, src *out) {
    if (n && in[n - 1] == '\n') n--;
    src a = {tpl_alloc(c, n + 1), tpl_alloc(c, (n + 1) * sizeof(int)), 0};
    int line = 1;
    /* lstrip_blocks: spaces and tabs from a line's start up to {#, {% or {- */
    for (size_t i = 0; i < n;) {
        if (i == 0 || in[i - 1] == '\n' || in[i - 1] == '\r') {
            size_t j = i;
            while (j < n && (in[j] == ' ' || in[j] == '\t')) j++;
            if (j + 1 < n && in[j] == '{' && (in[j + 1] == '#' || in[j + 1] == '%' || in[j + 1] == '-')) i = j;
        }
        emit(&a, in[i], line);
        if (in[i++] == '\n') line++;
    }
    /* trim_blocks: the newline after #}, %} or -} */
    src b = {tpl_alloc(c, a.n + 1), tpl_alloc(c, (a.n + 1) * sizeof(int)), 0};
    for (size_t i = 0; i < a.n; i++) {
        emit(&b, a.s[i], a.line[i]);
        if (a.s[i] == '}' && i > 0 && (a.s[i - 1] == '#' || a.s[i - 1] == '%' || a.s[i - 1] == '-') && i + 1 < a.n && a.s[i + 1] == '\n') i++;
    }
    /* generation markers, with the whitespace around them unless a dash says otherwise */
    src o = {tpl_alloc(c, b.n + 1), tpl_alloc(c, (b.n + 1) * sizeof(int)), 0};
    for (size_t i = 0; i < b.n;) {
        size_t ws = i;
        while (ws < b.n && is_ws(b.s[ws])) ws++;
        bool l, r;
        size_t g = generation_tag(b.s, b.n, ws, &l, &r);
        if (!g) {
            emit(&o, b.s[i], b.line[i]);
            i++;
            continue;
        }
        if (!l)
            for (size_t k = i; k < ws; k++) emit(&o, b.s[k], b.line[k]);
        size_t after = ws + g, end = after;
        while (end < b.n && is_ws(b.s[end])) end++;
        if (!r)
            for (size_t k = after; k < end; k++) emit(&o, b.s[k], b.line[k]);
        i = end;
    }
    o.s[o.n] = 0;
    *out = o;
}

/* ---- tokens ---------------------------------------------------------------------------------- */

typedef enum { T_TEXT, T_COMMENT, T_OPEN_STMT, T_CLOSE_STMT, T_OPEN_EXPR, T_CLOSE_EXPR, T_NAME, T_STR, T_INT, T_FLOAT, T_OP, T_EOF } ttype;

typedef struct tok {
    ttype t;
    int line;
    jstr *s;     /* text, name, string */
    char op[3];  /* T_OP */
    int64_t i;
    double f;
} tok;

typedef struct lexer {
    tpl_ctx *c;
    src in;
    size_t pos;
    tok *v;
    size_t n, cap;
} lexer;

static tok *push(lexer *L, ttype t, int line) {
    if (L->n == L->cap) {
        size_t cap = L->cap ? 2 * L->cap : 256;
        tok *nv = tpl_alloc(L->c, cap * sizeof *nv);
        if (L->n) memcpy(nv, L->v, L->n * sizeof *nv);
        L->v = nv, L->cap = cap;
    }
    tok *k = &L->v[L->n++];
    memset(k, 0, sizeof *k);
    k->t = t, k->line = line;
    return k;
}

static void strip_last_text(lexer *L) {
    if (!L->n || L->v[L->n - 1].t != T_TEXT) return;
    jstr *s = L->v[L->n - 1].s;
    while (s->n && is_ws(s->s[s->n - 1])) s->n--;
    s->s[s->n] = 0;
    if (!s->n) L->n--;
}

static void skip_ws(lexer *L) {
    while (L->pos < L->in.n && is_ws(L->in.s[L->pos])) L->pos++;
}

static int hexval(char ch) { return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1; }

static void put_utf8(tpl_ctx *c, tpl_buf *b, uint32_t cp) {
    char u[4];
    size_t k;
    if (cp < 0x80) u[0] = (char)cp, k = 1;
    else if (cp < 0x800) u[0] = (char)(0xC0 | cp >> 6), u[1] = (char)(0x80 | (cp & 0x3F)), k = 2;
    else u[0] = (char)(0xE0 | cp >> 12), u[1] = (char)(0x80 | ((cp >> 6) & 0x3F)), u[2] = (char)(0x80 | (cp & 0x3F)), k = 3;
    tpl_put(c, b, u, k);
}

static void lex_string(lexer *L, int line) {
    char q = L->in.s[L->pos++];
    tpl_buf b = {0};
    for (;;) {
        if (L->pos >= L->in.n) tpl_fail(L->c, HAI_ERR_FORMAT, line, "a string literal is not closed");
        char ch = L->in.s[L->pos++];
        if (ch == q) break;
        if (ch != '\\') {
            tpl_put(L->c, &b, &ch, 1);
            continue;
        }
        if (L->pos >= L->in.n) tpl_fail(L->c, HAI_ERR_FORMAT, line, "a string literal is not closed");
        char e = L->in.s[L->pos++], r;
        switch (e) {
        case 'n': r = '\n'; break;
        case 't': r = '\t'; break;
        case 'r': r = '\r'; break;
        case 'b': r = '\b'; break;
        case 'f': r = '\f'; break;
        case 'v': r = '\v'; break;
        case '\'': case '"': case '\\': r = e; break;
        case 'x': case 'u': {
            int len = e == 'x' ? 2 : 4;
            uint32_t cp = 0;
            for (int k = 0; k < len; k++) {
                int h = L->pos < L->in.n ? hexval(L->in.s[L->pos]) : -1;
                if (h < 0) tpl_fail(L->c, HAI_ERR_FORMAT, line, "a \\%c escape needs %d hexadecimal digits", e, len);
                cp = cp * 16 + (uint32_t)h, L->pos++;
            }
            put_utf8(L->c, &b, cp);
            continue;
        }
        default: tpl_fail(L->c, HAI_ERR_FORMAT, line, "unknown escape \\%c in a string literal", e);
        }
        tpl_put(L->c, &b, &r, 1);
    }
    push(L, T_STR, line)->s = tpl_buf_str(L->c, &b);
}

static void lex(lexer *L) {
    const char *s = L->in.s;
    size_t n = L->in.n;
    int curly = 0;
    while (L->pos < n) {
        int line = L->in.line[L->pos];
        ttype last = L->n ? L->v[L->n - 1].t : T_EOF;
        if (last == T_EOF || last == T_CLOSE_STMT || last == T_CLOSE_EXPR || last == T_COMMENT) {
            size_t st = L->pos;
            while (L->pos < n && !(s[L->pos] == '{' && L->pos + 1 < n && (s[L->pos + 1] == '%' || s[L->pos + 1] == '{' || s[L->pos + 1] == '#'))) L->pos++;
            if (L->pos > st) {
                push(L, T_TEXT, line)->s = tpl_str(L->c, s + st, L->pos - st);
                continue;
            }
        }
        if (s[L->pos] == '{' && L->pos + 1 < n && s[L->pos + 1] == '#') { /* a comment */
            L->pos += 2;
            bool before = L->pos < n && s[L->pos] == '-';
            size_t end = L->pos;
            while (end + 1 < n && !(s[end] == '#' && s[end + 1] == '}')) end++;
            if (end + 1 >= n) tpl_fail(L->c, HAI_ERR_FORMAT, line, "a comment is not closed");
            bool after = end > L->pos && s[end - 1] == '-';
            if (before) strip_last_text(L);
            push(L, T_COMMENT, line); /* a text after it is a text of its own ({%- strips only that) */
            L->pos = end + 2;
            if (after) skip_ws(L);
            continue;
        }
        if (L->pos + 2 < n + 1 && s[L->pos] == '{' && (s[L->pos + 1] == '%' || s[L->pos + 1] == '{')) {
            bool stmt = s[L->pos + 1] == '%';
            bool dash = L->pos + 2 < n && s[L->pos + 2] == '-';
            if (dash) strip_last_text(L);
            push(L, stmt ? T_OPEN_STMT : T_OPEN_EXPR, line);
            L->pos += dash ? 3 : 2;
            curly = 0;
            /* inside the tag */
            for (;;) {
                skip_ws(L);
                if (L->pos >= n) tpl_fail(L->c, HAI_ERR_FORMAT, line, "a %s is not closed", stmt ? "{% block %}" : "{{ expression }}");
                line = L->in.line[L->pos];
                char ch = s[L->pos], c1 = L->pos + 1 < n ? s[L->pos + 1] : 0, c2 = L->pos + 2 < n ? s[L->pos + 2] : 0;
                if (ch == '-' && ((c1 == '%' && c2 == '}') || (c1 == '}' && c2 == '}' && curly == 0))) {
                    push(L, c1 == '%' ? T_CLOSE_STMT : T_CLOSE_EXPR, line);
                    L->pos += 3;
                    skip_ws(L);
                    break;
                }
                if ((ch == '%' && c1 == '}') || (ch == '}' && c1 == '}' && curly == 0)) {
                    push(L, ch == '%' ? T_CLOSE_STMT : T_CLOSE_EXPR, line);
                    L->pos += 2;
                    break;
                }
                if (ch == '\'' || ch == '"') {
                    lex_string(L, line);
                    continue;
                }
                /* a sign right before digits is the number's own where no operand precedes it
                 * (-3|abs is (-3)|abs, as @huggingface/jinja reads it) */
                bool sign = false;
                if ((ch == '-' || ch == '+') && c1 >= '0' && c1 <= '9') {
                    tok *pv = L->n ? &L->v[L->n - 1] : NULL;
                    sign = pv && !(pv->t == T_NAME || pv->t == T_STR || pv->t == T_INT || pv->t == T_FLOAT || (pv->t == T_OP && (pv->op[0] == ')' || pv->op[0] == ']')));
                    if (sign) L->pos++;
                }
                if (sign || (ch >= '0' && ch <= '9')) {
                    size_t st = L->pos;
                    while (L->pos < n && s[L->pos] >= '0' && s[L->pos] <= '9') L->pos++;
                    bool fl = L->pos + 1 < n && s[L->pos] == '.' && s[L->pos + 1] >= '0' && s[L->pos + 1] <= '9' &&
                              !(L->n && L->v[L->n - 1].t == T_OP && !strcmp(L->v[L->n - 1].op, "."));
                    if (fl) {
                        L->pos++;
                        while (L->pos < n && s[L->pos] >= '0' && s[L->pos] <= '9') L->pos++;
                    }
                    char num[64];
                    size_t len = L->pos - st < 63 ? L->pos - st : 63;
                    memcpy(num, s + st, len), num[len] = 0;
                    tok *k = push(L, fl ? T_FLOAT : T_INT, line);
                    bool neg = sign && ch == '-';
                    if (fl) k->f = neg ? -strtod(num, NULL) : strtod(num, NULL);
                    else {
                        char *e;
                        unsigned long long v = strtoull(num, &e, 10);
                        if (L->pos - st > 18 && v > (unsigned long long)INT64_MAX) tpl_fail(L->c, HAI_ERR_FORMAT, line, "an integer literal is too large");
                        k->i = neg ? -(int64_t)v : (int64_t)v;
                    }
                    continue;
                }
                if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_') {
                    size_t st = L->pos;
                    while (L->pos < n && ((s[L->pos] >= 'a' && s[L->pos] <= 'z') || (s[L->pos] >= 'A' && s[L->pos] <= 'Z') || s[L->pos] == '_' ||
                                          (s[L->pos] >= '0' && s[L->pos] <= '9')))
                        L->pos++;
                    push(L, T_NAME, line)->s = tpl_str(L->c, s + st, L->pos - st);
                    continue;
                }
                static const char *ops2[] = {"==", "!=", "<=", ">=", "//", "**"};
                tok *k = NULL;
                for (size_t o = 0; o < sizeof ops2 / sizeof *ops2; o++)
                    if (ch == ops2[o][0] && c1 == ops2[o][1]) {
                        k = push(L, T_OP, line);
                        memcpy(k->op, ops2[o], 2);
                        L->pos += 2;
                        break;
                    }
                if (k) continue;
                if (!strchr("()[]{},.:|~+-*/%<>=!", ch)) tpl_fail(L->c, HAI_ERR_FORMAT, line, "unexpected character '%c'", ch);
                if (ch == '{') curly++;
                if (ch == '}') curly--;
                k = push(L, T_OP, line);
                k->op[0] = ch;
                L->pos++;
            }
            continue;
        }
        tpl_fail(L->c, HAI_ERR_INTERNAL, line, "lexer stuck");
    }
    push(L, T_EOF, L->in.n ? L->in.line[L->in.n - 1] : 1);
}

/* ---- parser ---------------------------------------------------------------------------------- */

typedef struct parser {
    tpl_ctx *c;
    tok *v;
    size_t i;
    int depth;
} parser;

static tok *peek(parser *P) { return &P->v[P->i]; }
static tok *next(parser *P) { return P->v[P->i].t == T_EOF ? &P->v[P->i] : &P->v[P->i++]; }
static bool is_op(const tok *k, const char *op) { return k->t == T_OP && !strcmp(k->op, op); }
static bool is_name(const tok *k, const char *name) { return k->t == T_NAME && !strcmp(k->s->s, name); }

static const char *tok_desc(const tok *k) {
    switch (k->t) {
    case T_TEXT: return "text";
    case T_COMMENT: return "a comment";
    case T_OPEN_STMT: return "'{%'";
    case T_CLOSE_STMT: return "'%}'";
    case T_OPEN_EXPR: return "'{{'";
    case T_CLOSE_EXPR: return "'}}'";
    case T_NAME: return k->s->s;
    case T_STR: return "a string";
    case T_INT: case T_FLOAT: return "a number";
    case T_OP: return k->op;
    default: return "the end of the template";
    }
}

static void expect_op(parser *P, const char *op) {
    tok *k = next(P);
    if (!is_op(k, op)) tpl_fail(P->c, HAI_ERR_FORMAT, k->line, "expected '%s', found %s", op, tok_desc(k));
}

static jstr *expect_name(parser *P) {
    tok *k = next(P);
    if (k->t != T_NAME) tpl_fail(P->c, HAI_ERR_FORMAT, k->line, "expected a name, found %s", tok_desc(k));
    return k->s;
}

static void expect_close(parser *P) {
    tok *k = next(P);
    if (k->t != T_CLOSE_STMT) tpl_fail(P->c, HAI_ERR_FORMAT, k->line, "expected '%%}', found %s", tok_desc(k));
}

static node *mk(parser *P, nkind kind, int line) {
    node *e = tpl_alloc(P->c, sizeof *e);
    memset(e, 0, sizeof *e);
    e->kind = (uint8_t)kind, e->line = line;
    return e;
}

static void list_push(parser *P, nlist *l, node *e) {
    if ((l->n & (l->n - 1)) == 0) { /* capacity: powers of two */
        node **nv = tpl_alloc(P->c, (size_t)(l->n ? 2 * l->n : 1) * sizeof *nv);
        if (l->n) memcpy(nv, l->v, (size_t)l->n * sizeof *nv);
        l->v = nv;
    }
    l->v[l->n++] = e;
}

static void names_push(parser *P, node *e, jstr *s) {
    jstr **nv = tpl_alloc(P->c, (size_t)(e->nnames + 1) * sizeof *nv);
    if (e->nnames) memcpy(nv, e->names, (size_t)e->nnames * sizeof *nv);
    nv[e->nnames++] = s;
    e->names = nv;
}

static node *expr(parser *P);
static node *or_expr(parser *P);

static void enter(parser *P, int line) {
    if (++P->depth > MAX_NEST) tpl_fail(P->c, HAI_ERR_LIMIT, line, "nested more than %d deep", MAX_NEST);
}

/* call arguments after '(': positional, then name=value */
static void call_args(parser *P, node *e) {
    while (!is_op(peek(P), ")")) {
        tok *k = peek(P);
        if (is_op(k, "*") || is_op(k, "**")) tpl_fail(P->c, HAI_ERR_UNSUPPORTED, k->line, "argument unpacking (*, **) is not supported");
        if (k->t == T_NAME && is_op(&P->v[P->i + 1], "=")) {
            P->i += 2;
            list_push(P, &e->kw, expr(P));
            names_push(P, e, k->s);
        } else {
            if (e->kw.n) tpl_fail(P->c, HAI_ERR_FORMAT, k->line, "a positional argument after keyword arguments");
            list_push(P, &e->args, expr(P));
        }
        if (!is_op(peek(P), ",")) break;
        next(P);
    }
    expect_op(P, ")");
}

static node *primary(parser *P) {
    tok *k = next(P);
    node *e;
    switch (k->t) {
    case T_INT: e = mk(P, E_LIT, k->line), e->lit = jv_int(k->i); return e;
    case T_FLOAT: e = mk(P, E_LIT, k->line), e->lit = jv_float(k->f); return e;
    case T_STR: {
        e = mk(P, E_LIT, k->line);
        if (peek(P)->t != T_STR) {
            e->lit = jv_str(k->s);
            return e;
        }
        tpl_buf b = {0}; /* adjacent literals join */
        tpl_put(P->c, &b, k->s->s, k->s->n);
        while (peek(P)->t == T_STR) {
            tok *s = next(P);
            tpl_put(P->c, &b, s->s->s, s->s->n);
        }
        e->lit = jv_str(tpl_buf_str(P->c, &b));
        return e;
    }
    case T_NAME: {
        const char *s = k->s->s;
        e = mk(P, E_LIT, k->line);
        if (!strcmp(s, "true") || !strcmp(s, "True")) e->lit = jv_bool(true);
        else if (!strcmp(s, "false") || !strcmp(s, "False")) e->lit = jv_bool(false);
        else if (!strcmp(s, "none") || !strcmp(s, "None")) e->lit = jv_none();
        else e->kind = E_NAME, e->str = k->s;
        return e;
    }
    case T_OP:
        if (is_op(k, "(")) {
            enter(P, k->line);
            if (is_op(peek(P), ")")) { /* () */
                next(P);
                P->depth--;
                return mk(P, E_TUPLE, k->line);
            }
            node *first = expr(P);
            if (!is_op(peek(P), ",")) {
                expect_op(P, ")");
                P->depth--;
                return first;
            }
            e = mk(P, E_TUPLE, k->line);
            list_push(P, &e->args, first);
            while (is_op(peek(P), ",")) {
                next(P);
                if (is_op(peek(P), ")")) break;
                list_push(P, &e->args, expr(P));
            }
            expect_op(P, ")");
            P->depth--;
            return e;
        }
        if (is_op(k, "[")) {
            enter(P, k->line);
            e = mk(P, E_LIST, k->line);
            while (!is_op(peek(P), "]")) {
                list_push(P, &e->args, expr(P));
                if (!is_op(peek(P), ",")) break;
                next(P);
            }
            expect_op(P, "]");
            P->depth--;
            return e;
        }
        if (is_op(k, "{")) {
            enter(P, k->line);
            e = mk(P, E_DICT, k->line);
            while (!is_op(peek(P), "}")) {
                list_push(P, &e->args, expr(P));
                expect_op(P, ":");
                list_push(P, &e->kw, expr(P));
                if (!is_op(peek(P), ",")) break;
                next(P);
            }
            expect_op(P, "}");
            P->depth--;
            return e;
        }
        break;
    default: break;
    }
    tpl_fail(P->c, HAI_ERR_FORMAT, k->line, "unexpected %s in an expression", tok_desc(k));
}

/* a name after | or is, and its arguments: (...) or, for a test, one bare argument */
static void filter_or_test(parser *P, node *e, bool test) {
    e->str = expect_name(P);
    if (is_op(peek(P), "(")) {
        next(P);
        call_args(P, e);
        return;
    }
    tok *k = peek(P);
    static const char *stop[] = {"and", "or", "else", "if", "not", "in", "is"};
    bool kw = false;
    for (size_t i = 0; i < sizeof stop / sizeof *stop; i++) kw = kw || is_name(k, stop[i]);
    if (test && !kw && (k->t == T_NAME || k->t == T_STR || k->t == T_INT || k->t == T_FLOAT)) list_push(P, &e->args, primary(P));
}

static node *postfix(parser *P) {
    node *e = primary(P);
    for (;;) {
        tok *k = peek(P);
        if (is_op(k, ".")) {
            next(P);
            node *a = mk(P, E_ATTR, k->line);
            a->a = e;
            tok *nk = next(P);
            if (nk->t == T_NAME) a->str = nk->s;
            else if (nk->t == T_INT) { /* x.0 */
                a->kind = E_INDEX;
                a->b = mk(P, E_LIT, nk->line);
                a->b->lit = jv_int(nk->i);
            } else
                tpl_fail(P->c, HAI_ERR_FORMAT, nk->line, "expected a name after '.', found %s", tok_desc(nk));
            e = a;
        } else if (is_op(k, "[")) {
            next(P);
            enter(P, k->line);
            node *s[3] = {NULL, NULL, NULL};
            int parts = 0;
            bool slice = false;
            for (;;) {
                if (!is_op(peek(P), ":") && !is_op(peek(P), "]")) s[parts] = expr(P);
                if (is_op(peek(P), ":") && parts < 2) {
                    next(P);
                    slice = true;
                    parts++;
                    continue;
                }
                break;
            }
            expect_op(P, "]");
            P->depth--;
            node *x = mk(P, slice ? E_SLICE : E_INDEX, k->line);
            x->a = e;
            if (slice)
                for (int i = 0; i < 3; i++) list_push(P, &x->args, s[i]);
            else if (!s[0])
                tpl_fail(P->c, HAI_ERR_FORMAT, k->line, "an empty subscript []");
            else
                x->b = s[0];
            e = x;
        } else if (is_op(k, "(")) {
            next(P);
            enter(P, k->line);
            node *x = mk(P, E_CALL, k->line);
            x->a = e;
            call_args(P, x);
            P->depth--;
            e = x;
        } else if (is_op(k, "|")) {
            next(P);
            node *x = mk(P, E_FILTER, k->line);
            x->a = e;
            filter_or_test(P, x, false);
            e = x;
        } else if (is_name(k, "is")) {
            next(P);
            node *x = mk(P, E_TEST, k->line);
            x->a = e;
            if (is_name(peek(P), "not")) next(P), x->op = 1;
            filter_or_test(P, x, true);
            e = x;
        } else
            return e;
    }
}

static node *unary(parser *P) {
    tok *k = peek(P);
    if (is_op(k, "-") || is_op(k, "+")) {
        next(P);
        enter(P, k->line);
        node *e = mk(P, is_op(k, "-") ? E_NEG : E_POS, k->line);
        e->a = unary(P);
        P->depth--;
        return e;
    }
    return postfix(P);
}

/* The binary operators from ** up to ~, each level left-associative over the next tighter one:
 * a table and one loop instead of a function a level. */
static const struct {
    const char *ops[4];
    int codes[4];
} levels[] = {
    {{"~"}, {OP_CONCAT}},
    {{"+", "-"}, {OP_ADD, OP_SUB}},
    {{"*", "/", "//", "%"}, {OP_MUL, OP_DIV, OP_FLOORDIV, OP_MOD}},
    {{"**"}, {OP_POW}},
};

static node *binary(parser *P, size_t level) {
    if (level == sizeof levels / sizeof *levels) return unary(P);
    node *e = binary(P, level + 1);
    for (;;) {
        tok *k = peek(P);
        int op = 0;
        for (int i = 0; i < 4 && levels[level].ops[i] && !op; i++)
            if (is_op(k, levels[level].ops[i])) op = levels[level].codes[i];
        if (!op) return e;
        next(P);
        node *x = mk(P, E_BIN, k->line);
        x->op = op, x->a = e, x->b = binary(P, level + 1);
        e = x;
    }
}

static node *compare(parser *P) {
    node *e = binary(P, 0);
    for (;;) {
        tok *k = peek(P);
        int op = is_op(k, "==") ? OP_EQ : is_op(k, "!=") ? OP_NE : is_op(k, "<") ? OP_LT : is_op(k, "<=") ? OP_LE : is_op(k, ">") ? OP_GT
               : is_op(k, ">=") ? OP_GE : is_name(k, "in") ? OP_IN : 0;
        if (!op && is_name(k, "not") && is_name(&P->v[P->i + 1], "in")) {
            next(P);
            op = OP_NOTIN;
        }
        if (!op) return e;
        next(P);
        node *x = mk(P, E_BIN, k->line);
        x->op = op, x->a = e, x->b = binary(P, 0);
        e = x;
    }
}

static node *not_expr(parser *P) {
    tok *k = peek(P);
    if (is_name(k, "not")) {
        next(P);
        enter(P, k->line);
        node *e = mk(P, E_NOT, k->line);
        e->a = not_expr(P);
        P->depth--;
        return e;
    }
    return compare(P);
}

/* a left-associative chain of the keyword operator `word` (E_AND, E_OR) over `operand` */
static node *logic_chain(parser *P, const char *word, nkind kind, node *(*operand)(parser *)) {
    node *e = operand(P);
    while (is_name(peek(P), word)) {
        int line = next(P)->line;
        node *x = mk(P, kind, line);
        x->a = e, x->b = operand(P);
        e = x;
    }
    return e;
}

static node *and_expr(parser *P) { return logic_chain(P, "and", E_AND, not_expr); }

static node *or_expr(parser *P) { return logic_chain(P, "or", E_OR, and_expr); }

static node *expr(parser *P) {
    enter(P, peek(P)->line);
    node *e = or_expr(P);
    if (is_name(peek(P), "if")) {
        int line = next(P)->line;
        node *x = mk(P, E_TERNARY, line);
        x->b = e, x->a = or_expr(P);
        if (is_name(peek(P), "else")) next(P), x->c = expr(P);
        e = x;
    }
    P->depth--;
    return e;
}

/* ---- statements ------------------------------------------------------------------------------ */

static void block(parser *P, nlist *out, const char *const *ends, const char **ended);

/* the names after for / set: a, b or (a, b) */
static void targets(parser *P, node *e) {
    bool paren = is_op(peek(P), "(");
    if (paren) next(P);
    names_push(P, e, expect_name(P));
    while (is_op(peek(P), ",")) {
        next(P);
        names_push(P, e, expect_name(P));
    }
    if (paren) expect_op(P, ")");
}

static void end_tag(parser *P, const char *name, int line, const char *ended) {
    if (!ended) tpl_fail(P->c, HAI_ERR_FORMAT, line, "'%s' is not closed", name);
}

static node *statement(parser *P, tok *kw) {
    const char *w = kw->s->s;
    int line = kw->line;
    node *e;
    const char *ended = NULL;
    enter(P, line);
    if (!strcmp(w, "if")) {
        e = mk(P, N_IF, line);
        e->a = expr(P);
        expect_close(P);
        static const char *const ends[] = {"elif", "else", "endif", NULL};
        block(P, &e->body, ends, &ended);
        end_tag(P, "if", line, ended);
        if (!strcmp(ended, "elif")) {
            tok *k = &P->v[P->i - 1];
            list_push(P, &e->orelse, statement(P, &(tok){.t = T_NAME, .line = k->line, .s = tpl_cstr(P->c, "if")}));
        } else if (!strcmp(ended, "else")) {
            expect_close(P);
            static const char *const ends2[] = {"endif", NULL};
            block(P, &e->orelse, ends2, &ended);
            end_tag(P, "if", line, ended);
            expect_close(P);
        } else
            expect_close(P);
    } else if (!strcmp(w, "for")) {
        e = mk(P, N_FOR, line);
        targets(P, e);
        tok *in = next(P);
        if (!is_name(in, "in")) tpl_fail(P->c, HAI_ERR_FORMAT, in->line, "expected 'in' in a for loop, found %s", tok_desc(in));
        e->a = or_expr(P);
        if (is_name(peek(P), "if")) next(P), e->b = or_expr(P);
        if (is_name(peek(P), "recursive")) tpl_fail(P->c, HAI_ERR_UNSUPPORTED, line, "recursive for loops are not supported");
        expect_close(P);
        static const char *const ends[] = {"else", "endfor", NULL};
        block(P, &e->body, ends, &ended);
        end_tag(P, "for", line, ended);
        expect_close(P);
        if (!strcmp(ended, "else")) {
            static const char *const ends2[] = {"endfor", NULL};
            block(P, &e->orelse, ends2, &ended);
            end_tag(P, "for", line, ended);
            expect_close(P);
        }
    } else if (!strcmp(w, "set")) {
        e = mk(P, N_SET, line);
        jstr *first = expect_name(P);
        if (is_op(peek(P), ".")) { /* set ns.attr = value */
            next(P);
            e->op = 1;
            e->a = mk(P, E_NAME, line);
            e->a->str = first;
            e->str = expect_name(P);
        } else {
            names_push(P, e, first);
            while (is_op(peek(P), ",")) {
                next(P);
                names_push(P, e, expect_name(P));
            }
        }
        if (is_op(peek(P), "=")) {
            next(P);
            e->b = expr(P);
            if (is_op(peek(P), ",")) { /* set a, b = x, y */
                node *t = mk(P, E_TUPLE, line);
                list_push(P, &t->args, e->b);
                while (is_op(peek(P), ",")) next(P), list_push(P, &t->args, expr(P));
                e->b = t;
            }
            expect_close(P);
        } else {
            if (e->op || e->nnames != 1) tpl_fail(P->c, HAI_ERR_FORMAT, line, "a block set takes one name");
            e->kind = N_SETBLOCK;
            expect_close(P);
            static const char *const ends[] = {"endset", NULL};
            block(P, &e->body, ends, &ended);
            end_tag(P, "set", line, ended);
            expect_close(P);
        }
    } else if (!strcmp(w, "macro")) {
        e = mk(P, N_MACRO, line);
        e->str = expect_name(P);
        expect_op(P, "(");
        while (!is_op(peek(P), ")")) {
            names_push(P, e, expect_name(P));
            node *def = NULL;
            if (is_op(peek(P), "=")) next(P), def = expr(P);
            list_push(P, &e->args, def);
            if (!is_op(peek(P), ",")) break;
            next(P);
        }
        expect_op(P, ")");
        expect_close(P);
        static const char *const ends[] = {"endmacro", NULL};
        block(P, &e->body, ends, &ended);
        end_tag(P, "macro", line, ended);
        if (peek(P)->t == T_NAME) next(P); /* {% endmacro name %} */
        expect_close(P);
    } else if (!strcmp(w, "call")) {
        e = mk(P, N_CALLBLOCK, line);
        if (is_op(peek(P), "(")) {
            next(P);
            while (!is_op(peek(P), ")")) {
                names_push(P, e, expect_name(P));
                node *def = NULL;
                if (is_op(peek(P), "=")) next(P), def = expr(P);
                list_push(P, &e->args, def);
                if (!is_op(peek(P), ",")) break;
                next(P);
            }
            expect_op(P, ")");
        }
        e->a = expr(P);
        if (e->a->kind != E_CALL) tpl_fail(P->c, HAI_ERR_FORMAT, line, "a call block needs a macro call");
        expect_close(P);
        static const char *const ends[] = {"endcall", NULL};
        block(P, &e->body, ends, &ended);
        end_tag(P, "call", line, ended);
        expect_close(P);
    } else if (!strcmp(w, "filter")) {
        e = mk(P, N_FILTERBLOCK, line);
        node *f = mk(P, E_FILTER, line);
        filter_or_test(P, f, false);
        e->a = f;
        expect_close(P);
        static const char *const ends[] = {"endfilter", NULL};
        block(P, &e->body, ends, &ended);
        end_tag(P, "filter", line, ended);
        expect_close(P);
    } else if (!strcmp(w, "break") || !strcmp(w, "continue")) {
        e = mk(P, w[0] == 'b' ? N_BREAK : N_CONTINUE, line);
        expect_close(P);
    } else
        tpl_fail(P->c, HAI_ERR_UNSUPPORTED, line, "the statement '%s' is not supported", w);
    P->depth--;
    return e;
}

/* statements until one of ends (its name in *ended, the tag's name consumed), or the end */
static void block(parser *P, nlist *out, const char *const *ends, const char **ended) {
    *ended = NULL;
    for (;;) {
        tok *k = next(P);
        switch (k->t) {
        case T_EOF: return;
        case T_COMMENT: break;
        case T_TEXT: {
            node *e = mk(P, N_TEXT, k->line);
            e->str = k->s;
            list_push(P, out, e);
            break;
        }
        case T_OPEN_EXPR: {
            node *e = mk(P, N_OUT, k->line);
            e->a = expr(P);
            tok *cl = next(P);
            if (cl->t != T_CLOSE_EXPR) tpl_fail(P->c, HAI_ERR_FORMAT, cl->line, "expected '}}', found %s", tok_desc(cl));
            list_push(P, out, e);
            break;
        }
        case T_OPEN_STMT: {
            tok *kw = next(P);
            if (kw->t != T_NAME) tpl_fail(P->c, HAI_ERR_FORMAT, kw->line, "expected a statement, found %s", tok_desc(kw));
            for (int i = 0; ends && ends[i]; i++)
                if (!strcmp(kw->s->s, ends[i])) {
                    *ended = ends[i];
                    return;
                }
            if (!strncmp(kw->s->s, "end", 3) || !strcmp(kw->s->s, "elif") || !strcmp(kw->s->s, "else"))
                tpl_fail(P->c, HAI_ERR_FORMAT, kw->line, "unexpected '%s'", kw->s->s);
            list_push(P, out, statement(P, kw));
            break;
        }
        default: tpl_fail(P->c, HAI_ERR_FORMAT, k->line, "unexpected %s", tok_desc(k));
        }
    }
}

void tpl_parse(tpl_ctx *c, const char *text, size_t len, nlist *out) {
    if (len > MAX_TEMPLATE) tpl_fail(c, HAI_ERR_LIMIT, 0, "%zu bytes, more than %u MiB", len, MAX_TEMPLATE >> 20);
    if (memchr(text, 0, len)) tpl_fail(c, HAI_ERR_FORMAT, 0, "a NUL byte in the template");
    lexer L = {c, {0}, 0, NULL, 0, 0};
    preprocess(c, text, len, &L.in);
    lex(&L);
    parser P = {c, L.v, 0, 0};
    const char *ended;
    memset(out, 0, sizeof *out);
    block(&P, out, NULL, &ended);
}
