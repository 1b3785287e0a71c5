/* The tree rendered, with @huggingface/jinja's semantics where they differ from Python Jinja's:
 * == is JavaScript's loose equality (an undefined equals none), ~ and + join strings with the
 * JavaScript form of numbers, a for loop has one scope for all its iterations (and its else runs
 * when no iteration finished its body), macros see the variables of the place they are called
 * from. Work and nesting are bounded (template.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "tpl.h"

#define MAX_CALL_DEPTH 64
#define MAX_EVAL_DEPTH 1000

enum { CTL_NONE, CTL_BREAK, CTL_CONTINUE };

static void step(tpl_run *r, int line) {
    if (++r->steps > HAI_TPL_MAX_STEPS) tpl_fail(r->c, HAI_ERR_LIMIT, line, "more than %u steps (a loop that does not end?)", HAI_TPL_MAX_STEPS);
}

static jv lookup(tpl_run *r, frame *f, const jstr *name) {
    for (; f; f = f->up) {
        jv *v = tpl_obj_get(&f->vars, name->s, name->n);
        if (v) return *v;
    }
    int fn = tpl_global_fn(name->s);
    (void)r;
    return fn >= 0 ? (jv){.t = V_FUNC, .fn = fn} : jv_undef();
}

static frame *new_frame(tpl_run *r, frame *up) {
    frame *f = tpl_alloc(r->c, sizeof *f);
    f->up = up;
    f->vars.n = 0, f->vars.cap = 4, f->vars.data = false;
    f->vars.k = tpl_alloc(r->c, 4 * sizeof *f->vars.k);
    f->vars.v = tpl_alloc(r->c, 4 * sizeof *f->vars.v);
    return f;
}

static void set_var(tpl_run *r, frame *f, jstr *k, jv v) { tpl_obj_set(r->c, &f->vars, k, v); }

/* v as @huggingface/jinja joins it with ~ or string +, into b: JavaScript's String() of the value
 * inside (a number in JavaScript's form, an object as "[object Map]", a list as its items printed
 * and joined by commas); a string keeps its data ranges */
static void js_put(tpl_run *r, tpl_buf *b, jv v, int line) {
    char num[64];
    switch (v.t) {
    case V_STR: tpl_put_v(r->c, b, v); return;
    case V_OBJ: case V_NS: tpl_put(r->c, b, "[object Map]", 12); return;
    case V_ARR:
        for (size_t i = 0; i < v.a->n; i++) {
            if (i) tpl_put(r->c, b, ",", 1);
            jv x = v.a->v[i];
            if (x.t == V_UNDEF) tpl_put(r->c, b, "undefined", 9);
            else tpl_print(r->c, b, x);
        }
        return;
    case V_INT: snprintf(num, sizeof num, "%lld", (long long)v.i); break;
    case V_FLOAT: tpl_json(r->c, b, v, -1, 0, ",", ":", false, false, true); return; /* the digits of JSON.stringify */
    case V_BOOL: snprintf(num, sizeof num, "%s", v.b ? "true" : "false"); break;
    default: tpl_fail(r->c, HAI_ERR_INVALID, line, "cannot join a %s to a string", tpl_type_name(v));
    }
    tpl_put(r->c, b, num, strlen(num));
}

static double num_of(jv v) { return v.t == V_INT ? (double)v.i : v.t == V_FLOAT ? v.f : v.t == V_BOOL ? (double)v.b : NAN; }

/* JavaScript's == on the values (objects and lists: the same one) */
static bool loose_eq(jv a, jv b) {
    bool an = a.t == V_UNDEF || a.t == V_NONE, bn = b.t == V_UNDEF || b.t == V_NONE;
    if (an || bn) return an && bn;
    bool anum = a.t == V_INT || a.t == V_FLOAT || a.t == V_BOOL, bnum = b.t == V_INT || b.t == V_FLOAT || b.t == V_BOOL;
    if (a.t == V_STR && b.t == V_STR) return a.s->n == b.s->n && !memcmp(a.s->s, b.s->s, a.s->n);
    if (anum && bnum) {
        if (a.t == V_INT && b.t == V_INT) return a.i == b.i;
        return num_of(a) == num_of(b);
    }
    if ((a.t == V_STR && bnum) || (anum && b.t == V_STR)) { /* the string as a number */
        const jstr *s = a.t == V_STR ? a.s : b.s;
        char *end;
        const char *p = s->s;
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
        double d = *p ? strtod(p, &end) : 0;
        if (*p) {
            while (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r') end++;
            if (*end) return false;
        }
        return d == num_of(a.t == V_STR ? b : a);
    }
    if (a.t != b.t) return false;
    switch (a.t) {
    case V_ARR: return a.a == b.a;
    case V_OBJ: case V_NS: return a.o == b.o;
    case V_MACRO: return a.m == b.m;
    case V_FUNC: return a.fn == b.fn;
    default: return false;
    }
}

/* === on primitives (list membership) */
static bool strict_eq(jv a, jv b) {
    if ((a.t == V_INT || a.t == V_FLOAT) && (b.t == V_INT || b.t == V_FLOAT)) return num_of(a) == num_of(b);
    if (a.t != b.t) return false;
    return loose_eq(a, b);
}

static jv binop(tpl_run *r, int op, jv a, jv b, int line) {
    if (op == OP_EQ) return jv_bool(loose_eq(a, b));
    if (op == OP_NE) return jv_bool(!loose_eq(a, b));
    if (a.t == V_UNDEF || b.t == V_UNDEF) {
        if (b.t == V_UNDEF && (op == OP_IN || op == OP_NOTIN)) return jv_bool(op == OP_NOTIN);
        tpl_fail(r->c, HAI_ERR_INVALID, line, "an operation on an undefined value");
    }
    if (a.t == V_NONE || b.t == V_NONE) tpl_fail(r->c, HAI_ERR_INVALID, line, "an operation on none");
    if (op == OP_CONCAT) {
        tpl_buf buf = {0};
        js_put(r, &buf, a, line);
        js_put(r, &buf, b, line);
        return tpl_buf_val(r->c, &buf);
    }
    bool an = a.t == V_INT || a.t == V_FLOAT, bn = b.t == V_INT || b.t == V_FLOAT;
    if (an && bn) {
        bool fl = a.t == V_FLOAT || b.t == V_FLOAT;
        double x = num_of(a), y = num_of(b);
        switch (op) {
        case OP_ADD: return fl ? jv_float(x + y) : jv_int((int64_t)((uint64_t)a.i + (uint64_t)b.i));
        case OP_SUB: return fl ? jv_float(x - y) : jv_int((int64_t)((uint64_t)a.i - (uint64_t)b.i));
        case OP_MUL: return fl ? jv_float(x * y) : jv_int((int64_t)((uint64_t)a.i * (uint64_t)b.i));
        case OP_DIV: return jv_float(x / y);
        case OP_FLOORDIV:
            if (!fl) {
                if (b.i == 0) tpl_fail(r->c, HAI_ERR_INVALID, line, "integer division by zero");
                if (b.i == -1) return jv_int((int64_t)(0 - (uint64_t)a.i)); /* INT64_MIN / -1 wraps instead of trapping */
                int64_t q = a.i / b.i;
                if ((a.i % b.i != 0) && ((a.i < 0) != (b.i < 0))) q--;
                return jv_int(q);
            }
            return jv_float(floor(x / y));
        case OP_MOD:
            if (!fl) {
                if (b.i == 0) tpl_fail(r->c, HAI_ERR_INVALID, line, "modulo by zero");
                return jv_int(b.i == -1 ? 0 : a.i % b.i); /* JavaScript's %: the sign of the dividend */
            }
            return jv_float(fmod(x, y));
        case OP_POW: {
            if (x == 0 && y < 0) tpl_fail(r->c, HAI_ERR_INVALID, line, "0 cannot be raised to a negative power");
            double p = pow(x, y);
            if (!isfinite(p)) tpl_fail(r->c, HAI_ERR_INVALID, line, "a power that is not a finite number");
            return fl || y < 0 || fabs(p) >= 9.2e18 ? jv_float(p) : jv_int((int64_t)p);
        }
        case OP_LT: return jv_bool(x < y);
        case OP_LE: return jv_bool(x <= y);
        case OP_GT: return jv_bool(x > y);
        case OP_GE: return jv_bool(x >= y);
        default: break;
        }
    } else if (a.t == V_ARR && b.t == V_ARR && op == OP_ADD) {
        jarr *o = tpl_arr(r->c, a.a->n + b.a->n);
        for (size_t i = 0; i < a.a->n; i++) tpl_arr_push(r->c, o, a.a->v[i]);
        for (size_t i = 0; i < b.a->n; i++) tpl_arr_push(r->c, o, b.a->v[i]);
        return (jv){.t = V_ARR, .a = o};
    } else if (b.t == V_ARR && (op == OP_IN || op == OP_NOTIN)) {
        bool found = false;
        for (size_t i = 0; i < b.a->n && !found; i++) found = strict_eq(b.a->v[i], a);
        return jv_bool(found == (op == OP_IN));
    }
    if ((a.t == V_STR || b.t == V_STR) && op == OP_ADD) return binop(r, OP_CONCAT, a, b, line);
    if (a.t == V_STR && b.t == V_STR) {
        if (op == OP_IN || op == OP_NOTIN) {
            bool found = a.s->n == 0 || (b.s->n >= a.s->n && memmem(b.s->s, b.s->n, a.s->s, a.s->n));
            return jv_bool(found == (op == OP_IN));
        }
        int c = memcmp(a.s->s, b.s->s, a.s->n < b.s->n ? a.s->n : b.s->n);
        if (!c) c = (a.s->n > b.s->n) - (a.s->n < b.s->n);
        if (op == OP_LT) return jv_bool(c < 0);
        if (op == OP_LE) return jv_bool(c <= 0);
        if (op == OP_GT) return jv_bool(c > 0);
        if (op == OP_GE) return jv_bool(c >= 0);
    }
    if (a.t == V_STR && (b.t == V_OBJ || b.t == V_NS) && (op == OP_IN || op == OP_NOTIN))
        return jv_bool((tpl_obj_get(b.o, a.s->s, a.s->n) != NULL) == (op == OP_IN));
    static const char *names[] = {"", "+", "-", "*", "/", "//", "%", "**", "~", "==", "!=", "<", "<=", ">", ">=", "in", "not in"};
    tpl_fail(r->c, HAI_ERR_INVALID, line, "'%s' between a %s and a %s", names[op], tpl_type_name(a), tpl_type_name(b));
}

/* UTF-8 code points of s: their byte offsets, n + 1 of them */
static size_t *code_points(tpl_run *r, const jstr *s, size_t *count) {
    size_t *at = tpl_alloc(r->c, (s->n + 1) * sizeof *at), k = 0;
    for (size_t i = 0; i < s->n; i++)
        if (((unsigned char)s->s[i] & 0xC0) != 0x80) at[k++] = i;
    at[k] = s->n;
    *count = k;
    return at;
}

static jv member(tpl_run *r, jv o, jv key, int line) {
    if (o.t == V_OBJ || o.t == V_NS) {
        if (key.t != V_STR) tpl_fail(r->c, HAI_ERR_INVALID, line, "an object's member by a %s", tpl_type_name(key));
        jv *v = tpl_obj_get(o.o, key.s->s, key.s->n);
        return v ? *v : jv_undef();
    }
    if (o.t == V_ARR || o.t == V_STR) {
        if (key.t == V_INT) {
            if (o.t == V_ARR) {
                int64_t i = key.i < 0 ? key.i + (int64_t)o.a->n : key.i;
                return i >= 0 && i < (int64_t)o.a->n ? o.a->v[i] : jv_undef();
            }
            size_t nc;
            size_t *at = code_points(r, o.s, &nc);
            int64_t i = key.i < 0 ? key.i + (int64_t)nc : key.i;
            if (i < 0 || i >= (int64_t)nc) return jv_undef();
            jv ch = jv_str(tpl_str(r->c, o.s->s + at[i], at[i + 1] - at[i]));
            return tpl_has_data(o) ? tpl_all_data(r->c, ch) : ch;
        }
        if (key.t == V_STR && !strcmp(key.s->s, "length")) return jv_int((int64_t)(o.t == V_ARR ? o.a->n : 0));
        if (key.t != V_STR) tpl_fail(r->c, HAI_ERR_INVALID, line, "a %s indexed by a %s", tpl_type_name(o), tpl_type_name(key));
    }
    return jv_undef();
}

static int64_t clamp_index(int64_t i, int64_t n, bool neg_step) {
    if (i < 0) i += n;
    if (i < 0) i = neg_step ? -1 : 0;
    if (i > n) i = neg_step ? n - 1 : n;
    if (neg_step && i >= n) i = n - 1;
    return i;
}

static jv slice(tpl_run *r, jv o, const jv *s, int line) {
    int64_t step = s[2].t == V_INT ? s[2].i : 1;
    if (step == 0) tpl_fail(r->c, HAI_ERR_INVALID, line, "a slice step of 0");
    for (int i = 0; i < 3; i++)
        if (s[i].t != V_INT && s[i].t != V_UNDEF && s[i].t != V_NONE) tpl_fail(r->c, HAI_ERR_INVALID, line, "a slice bound that is a %s", tpl_type_name(s[i]));
    size_t nc = 0, *at = NULL;
    int64_t n;
    if (o.t == V_ARR) n = (int64_t)o.a->n;
    else if (o.t == V_STR) at = code_points(r, o.s, &nc), n = (int64_t)nc;
    else tpl_fail(r->c, HAI_ERR_INVALID, line, "a slice of a %s", tpl_type_name(o));
    int64_t lo = s[0].t == V_INT ? clamp_index(s[0].i, n, step < 0) : step > 0 ? 0 : n - 1;
    int64_t hi = s[1].t == V_INT ? clamp_index(s[1].i, n, step < 0) : step > 0 ? n : -1;
    jarr *out = o.t == V_ARR ? tpl_arr(r->c, 4) : NULL;
    tpl_buf b = {0};
    for (int64_t i = lo; step > 0 ? i < hi : i > hi;) {
        if (out) tpl_arr_push(r->c, out, o.a->v[i]);
        else tpl_put(r->c, &b, o.s->s + at[i], at[i + 1] - at[i]);
        if (__builtin_add_overflow(i, step, &i)) break;
    }
    if (out) return (jv){.t = V_ARR, .a = out};
    jv sub = jv_str(tpl_buf_str(r->c, &b));
    return tpl_has_data(o) ? tpl_all_data(r->c, sub) : sub;
}

typedef struct argv_ {
    jv *v, *kwv;
    jstr **kwn;
    int n, nkw;
} argv_;

static argv_ eval_args(tpl_run *r, frame *f, const node *e) {
    argv_ a = {tpl_alloc(r->c, (size_t)(e->args.n + 1) * sizeof(jv)), tpl_alloc(r->c, (size_t)(e->kw.n + 1) * sizeof(jv)), e->names, e->args.n, e->kw.n};
    for (int i = 0; i < e->args.n; i++) a.v[i] = tpl_eval(r, f, e->args.v[i]);
    for (int i = 0; i < e->kw.n; i++) a.kwv[i] = tpl_eval(r, f, e->kw.v[i]);
    return a;
}

static jv call_value(tpl_run *r, frame *f, jv fn, argv_ a, int line) {
    if (fn.t == V_MACRO) return tpl_call_macro(r, f, fn, a.v, a.n, a.kwn, a.kwv, a.nkw, line);
    if (fn.t == V_FUNC) return tpl_call_global(r, fn.fn, a.v, a.n, a.kwn, a.kwv, a.nkw, line);
    tpl_fail(r->c, HAI_ERR_INVALID, line, "a %s is not callable", tpl_type_name(fn));
}

static jv eval_node(tpl_run *r, frame *f, const node *e);

/* a tree may be deep without brackets (a + a + ... , x|f|f|...): its depth on the C stack is bounded */
jv tpl_eval(tpl_run *r, frame *f, const node *e) {
    if (++r->edepth > MAX_EVAL_DEPTH) tpl_fail(r->c, HAI_ERR_LIMIT, e->line, "an expression nested more than %d deep", MAX_EVAL_DEPTH);
    jv v = eval_node(r, f, e);
    r->edepth--;
    return v;
}

static jv eval_node(tpl_run *r, frame *f, const node *e) {
    step(r, e->line);
    switch ((nkind)e->kind) {
    case E_LIT: return e->lit;
    case E_NAME: return lookup(r, f, e->str);
    case E_LIST: case E_TUPLE: {
        jarr *a = tpl_arr(r->c, (size_t)e->args.n);
        for (int i = 0; i < e->args.n; i++) tpl_arr_push(r->c, a, tpl_eval(r, f, e->args.v[i]));
        return (jv){.t = V_ARR, .a = a, .tuple = e->kind == E_TUPLE};
    }
    case E_DICT: {
        jobj *o = tpl_obj(r->c, (size_t)e->args.n);
        for (int i = 0; i < e->args.n; i++) {
            jv k = tpl_eval(r, f, e->args.v[i]);
            if (k.t != V_STR) tpl_fail(r->c, HAI_ERR_INVALID, e->line, "an object key that is a %s", tpl_type_name(k));
            tpl_obj_set(r->c, o, k.s, tpl_eval(r, f, e->kw.v[i]));
        }
        return (jv){.t = V_OBJ, .o = o};
    }
    case E_ATTR: return member(r, tpl_eval(r, f, e->a), jv_str(e->str), e->line);
    case E_INDEX: return member(r, tpl_eval(r, f, e->a), tpl_eval(r, f, e->b), e->line);
    case E_SLICE: {
        jv o = tpl_eval(r, f, e->a), s[3];
        for (int i = 0; i < 3; i++) s[i] = e->args.v[i] ? tpl_eval(r, f, e->args.v[i]) : jv_undef();
        return slice(r, o, s, e->line);
    }
    case E_CALL: {
        if (e->a->kind == E_ATTR) { /* a method, unless the object holds a callable of that name */
            jv self = tpl_eval(r, f, e->a->a);
            jv *own = (self.t == V_OBJ || self.t == V_NS) ? tpl_obj_get(self.o, e->a->str->s, e->a->str->n) : NULL;
            argv_ a = eval_args(r, f, e);
            if (own) return call_value(r, f, *own, a, e->line);
            jv out;
            if (tpl_method(r, self, e->a->str->s, a.v, a.n, a.kwn, a.kwv, a.nkw, e->line, &out)) return out;
            tpl_fail(r->c, HAI_ERR_UNSUPPORTED, e->line, "a %s has no method '%s'", tpl_type_name(self), e->a->str->s);
        }
        jv fn = tpl_eval(r, f, e->a);
        if (fn.t == V_UNDEF && e->a->kind == E_NAME) tpl_fail(r->c, HAI_ERR_UNSUPPORTED, e->line, "unknown function '%s'", e->a->str->s);
        return call_value(r, f, fn, eval_args(r, f, e), e->line);
    }
    case E_FILTER: {
        jv v = tpl_eval(r, f, e->a);
        argv_ a = eval_args(r, f, e);
        return tpl_filter(r, e->str->s, v, a.v, a.n, a.kwn, a.kwv, a.nkw, e->line);
    }
    case E_TEST: {
        jv v = tpl_eval(r, f, e->a);
        argv_ a = eval_args(r, f, e);
        return jv_bool(tpl_test(r, e->str->s, v, a.v, a.n, e->line) != (e->op != 0));
    }
    case E_NEG: case E_POS: {
        jv v = tpl_eval(r, f, e->a);
        if (v.t == V_INT) return e->kind == E_NEG ? jv_int((int64_t)(0 - (uint64_t)v.i)) : v;
        if (v.t == V_FLOAT) return e->kind == E_NEG ? jv_float(-v.f) : v;
        tpl_fail(r->c, HAI_ERR_INVALID, e->line, "unary %c on a %s", e->kind == E_NEG ? '-' : '+', tpl_type_name(v));
    }
    case E_NOT: return jv_bool(!tpl_truthy(tpl_eval(r, f, e->a)));
    case E_AND: {
        jv a = tpl_eval(r, f, e->a);
        return tpl_truthy(a) ? tpl_eval(r, f, e->b) : a;
    }
    case E_OR: {
        jv a = tpl_eval(r, f, e->a);
        return tpl_truthy(a) ? a : tpl_eval(r, f, e->b);
    }
    case E_TERNARY: return tpl_truthy(tpl_eval(r, f, e->a)) ? tpl_eval(r, f, e->b) : e->c ? tpl_eval(r, f, e->c) : jv_undef();
    case E_BIN: {
        jv a = tpl_eval(r, f, e->a);
        return binop(r, e->op, a, tpl_eval(r, f, e->b), e->line);
    }
    default: tpl_fail(r->c, HAI_ERR_INTERNAL, e->line, "a statement where an expression belongs");
    }
}

/* the parameters of a macro (or a call block's caller) bound in f: positional, then by name,
 * then defaults (evaluated with the others bound); the rest as varargs and kwargs */
static void bind_params(tpl_run *r, frame *f, const node *m, const jv *args, int nargs, jstr **kwn, const jv *kwv, int nkw) {
    bool *used = tpl_alloc(r->c, (size_t)(nkw + 1) * sizeof *used);
    memset(used, 0, (size_t)(nkw + 1) * sizeof *used);
    for (int p = 0; p < m->nnames; p++) {
        jv v = jv_undef();
        bool got = p < nargs;
        if (got) v = args[p];
        for (int k = 0; k < nkw && !got; k++)
            if (kwn[k]->n == m->names[p]->n && !memcmp(kwn[k]->s, m->names[p]->s, kwn[k]->n)) v = kwv[k], used[k] = got = true;
        set_var(r, f, m->names[p], v);
    }
    for (int p = 0; p < m->nnames; p++) { /* defaults, for what no argument gave */
        bool given = p < nargs;
        for (int k = 0; k < nkw && !given; k++) given = kwn[k]->n == m->names[p]->n && !memcmp(kwn[k]->s, m->names[p]->s, kwn[k]->n);
        if (!given && p < m->args.n && m->args.v[p]) set_var(r, f, m->names[p], tpl_eval(r, f, m->args.v[p]));
    }
    jarr *va = tpl_arr(r->c, 4);
    for (int i = m->nnames; i < nargs; i++) tpl_arr_push(r->c, va, args[i]);
    jobj *kw = tpl_obj(r->c, 4);
    for (int k = 0; k < nkw; k++)
        if (!used[k]) tpl_obj_set(r->c, kw, kwn[k], kwv[k]);
    set_var(r, f, tpl_cstr(r->c, "varargs"), (jv){.t = V_ARR, .a = va});
    set_var(r, f, tpl_cstr(r->c, "kwargs"), (jv){.t = V_OBJ, .o = kw});
}

jv tpl_call_macro(tpl_run *r, frame *at, jv m, const jv *args, int nargs, jstr **kwn, const jv *kwv, int nkw, int line) {
    if (++r->depth > MAX_CALL_DEPTH) tpl_fail(r->c, HAI_ERR_LIMIT, line, "macro calls nested more than %d deep", MAX_CALL_DEPTH);
    /* a macro sees the variables where it is called; a call block's caller, where the block is */
    frame *f = new_frame(r, m.m->kind == N_CALLBLOCK ? m.env : at);
    bind_params(r, f, m.m, args, nargs, kwn, kwv, nkw);
    tpl_buf b = {0};
    int saved = r->ctl;
    r->ctl = CTL_NONE;
    tpl_exec(r, f, &m.m->body, &b);
    r->ctl = saved;
    r->depth--;
    return tpl_buf_val(r->c, &b);
}

static void exec_for(tpl_run *r, frame *f, const node *e, tpl_buf *out) {
    frame *scope = new_frame(r, f);
    jv it = tpl_eval(r, scope, e->a);
    jarr *src;
    if (it.t == V_ARR) src = it.a;
    else if (it.t == V_OBJ || it.t == V_NS) { /* its keys */
        src = tpl_arr(r->c, it.o->n);
        for (size_t i = 0; i < it.o->n; i++) tpl_arr_push(r->c, src, it.o->data ? tpl_all_data(r->c, jv_str(it.o->k[i])) : jv_str(it.o->k[i]));
    } else
        tpl_fail(r->c, HAI_ERR_INVALID, e->line, "a for loop over a %s", tpl_type_name(it));
    /* bind an item's targets into a scope */
    #define BIND(sc, item)                                                                                                        \
        do {                                                                                                                      \
            if (e->nnames == 1) set_var(r, sc, e->names[0], item);                                                               \
            else {                                                                                                                \
                if ((item).t != V_ARR) tpl_fail(r->c, HAI_ERR_INVALID, e->line, "cannot unpack a %s", tpl_type_name(item));     \
                if ((item).a->n != (size_t)e->nnames)                                                                             \
                    tpl_fail(r->c, HAI_ERR_INVALID, e->line, "too %s items to unpack", (item).a->n < (size_t)e->nnames ? "few" : "many"); \
                for (int ti = 0; ti < e->nnames; ti++) set_var(r, sc, e->names[ti], (item).a->v[ti]);                                 \
            }                                                                                                                     \
        } while (0)
    jarr *items = src;
    if (e->b) { /* for x in xs if cond: the items that pass, before the loop */
        items = tpl_arr(r->c, src->n);
        for (size_t i = 0; i < src->n; i++) {
            frame *tf = new_frame(r, scope);
            BIND(tf, src->v[i]);
            if (tpl_truthy(tpl_eval(r, tf, e->b))) tpl_arr_push(r->c, items, src->v[i]);
        }
    }
    bool none = true;
    jstr *kl = tpl_cstr(r->c, "loop");
    static const char *const keys[] = {"index", "index0", "revindex", "revindex0", "first", "last", "length", "previtem", "nextitem"};
    jstr *ks[9];
    for (int i = 0; i < 9; i++) ks[i] = tpl_cstr(r->c, keys[i]);
    int64_t n = (int64_t)items->n;
    jobj *loop = tpl_obj(r->c, 9); /* one for the loop, its values updated (iterations allocate nothing) */
    for (int64_t i = 0; i < n; i++) {
        step(r, e->line);
        jv vals[9] = {jv_int(i + 1), jv_int(i), jv_int(n - i), jv_int(n - i - 1), jv_bool(i == 0), jv_bool(i == n - 1), jv_int(n),
                      i > 0 ? items->v[i - 1] : jv_undef(), i < n - 1 ? items->v[i + 1] : jv_undef()};
        for (int k = 0; k < 9; k++) tpl_obj_set(r->c, loop, ks[k], vals[k]);
        set_var(r, scope, kl, (jv){.t = V_OBJ, .o = loop});
        BIND(scope, items->v[i]);
        r->ctl = CTL_NONE;
        tpl_exec(r, scope, &e->body, out);
        if (r->ctl == CTL_CONTINUE) {
            r->ctl = CTL_NONE;
            continue;
        }
        if (r->ctl == CTL_BREAK) {
            r->ctl = CTL_NONE;
            break;
        }
        none = false;
    }
    #undef BIND
    if (none) tpl_exec(r, scope, &e->orelse, out);
}

void tpl_exec(tpl_run *r, frame *f, const nlist *body, tpl_buf *out) {
    for (int i = 0; i < body->n && r->ctl == CTL_NONE; i++) {
        const node *e = body->v[i];
        step(r, e->line);
        switch ((nkind)e->kind) {
        case N_TEXT: tpl_put(r->c, out, e->str->s, e->str->n); break;
        case N_OUT: {
            jv v = tpl_eval(r, f, e->a);
            if (v.t != V_UNDEF && v.t != V_NONE) tpl_print(r->c, out, v);
            break;
        }
        case N_IF: tpl_exec(r, f, tpl_truthy(tpl_eval(r, f, e->a)) ? &e->body : &e->orelse, out); break;
        case N_FOR:
            if (++r->depth > MAX_CALL_DEPTH) tpl_fail(r->c, HAI_ERR_LIMIT, e->line, "loops nested more than %d deep", MAX_CALL_DEPTH);
            exec_for(r, f, e, out);
            r->depth--;
            break;
        case N_SET: {
            jv v = tpl_eval(r, f, e->b);
            if (e->op) {
                jv ns = tpl_eval(r, f, e->a);
                if (ns.t != V_NS && ns.t != V_OBJ) tpl_fail(r->c, HAI_ERR_INVALID, e->line, "cannot set an attribute of a %s", tpl_type_name(ns));
                tpl_obj_set(r->c, ns.o, e->str, v);
            } else if (e->nnames == 1)
                set_var(r, f, e->names[0], v);
            else {
                if (v.t != V_ARR || v.a->n != (size_t)e->nnames) tpl_fail(r->c, HAI_ERR_INVALID, e->line, "cannot unpack into %d names", e->nnames);
                for (int k = 0; k < e->nnames; k++) set_var(r, f, e->names[k], v.a->v[k]);
            }
            break;
        }
        case N_SETBLOCK: {
            tpl_buf b = {0};
            tpl_exec(r, f, &e->body, &b);
            set_var(r, f, e->names[0], tpl_buf_val(r->c, &b));
            break;
        }
        case N_MACRO: set_var(r, f, e->str, (jv){.t = V_MACRO, .m = e, .env = f}); break;
        case N_CALLBLOCK: {
            frame *at = new_frame(r, f);
            set_var(r, at, tpl_cstr(r->c, "caller"), (jv){.t = V_MACRO, .m = e, .env = f});
            jv fn = tpl_eval(r, f, e->a->a);
            if (fn.t != V_MACRO) tpl_fail(r->c, HAI_ERR_INVALID, e->line, "a call block calls a %s, not a macro", tpl_type_name(fn));
            argv_ a = eval_args(r, f, e->a);
            jv v = tpl_call_macro(r, at, fn, a.v, a.n, a.kwn, a.kwv, a.nkw, e->line);
            tpl_print(r->c, out, v);
            break;
        }
        case N_FILTERBLOCK: {
            tpl_buf b = {0};
            tpl_exec(r, f, &e->body, &b);
            argv_ a = eval_args(r, f, e->a);
            jv v = tpl_filter(r, e->a->str->s, tpl_buf_val(r->c, &b), a.v, a.n, a.kwn, a.kwv, a.nkw, e->line);
            if (v.t != V_UNDEF && v.t != V_NONE) tpl_print(r->c, out, v);
            break;
        }
        case N_BREAK: r->ctl = CTL_BREAK; break;
        case N_CONTINUE: r->ctl = CTL_CONTINUE; break;
        default: tpl_fail(r->c, HAI_ERR_INTERNAL, e->line, "an expression where a statement belongs");
        }
    }
}

/* ---- entry points ---------------------------------------------------------------------------- */

hai_status hai_tpl_parse(const char *src, size_t len, hai_tpl **out, hai_error *err) {
    if (!out || (!src && len)) return hai_fail(err, HAI_ERR_INVALID, "template: NULL argument");
    *out = NULL;
    hai_tpl *t = calloc(1, sizeof *t);
    if (!t) return hai_fail(err, HAI_ERR_NOMEM, "template: out of memory");
    jmp_buf jb;
    t->ctx.fail = &jb;
    t->ctx.limit = (size_t)256 << 20;
    if (setjmp(jb)) {
        hai_status st = hai_fail(err, t->ctx.status, "%s", t->ctx.msg);
        tpl_arena_free(&t->ctx);
        free(t);
        return st;
    }
    tpl_parse(&t->ctx, src ? src : "", len, &t->body);
    t->ctx.fail = NULL;
    *out = t;
    return HAI_OK;
}

hai_status hai_tpl_render(const hai_tpl *t, const cJSON *vars, char **out, size_t *out_len, hai_error *err) {
    return hai_tpl_render_marked(t, vars, NULL, out, out_len, NULL, NULL, err);
}

static bool trusted_name(const char *const *trusted, const char *name) {
    for (size_t i = 0; trusted && trusted[i]; i++)
        if (!strcmp(trusted[i], name)) return true;
    return false;
}

hai_status hai_tpl_render_marked(const hai_tpl *t, const cJSON *vars, const char *const *trusted, char **out, size_t *out_len,
                                 size_t (**data)[2], size_t *n_data, hai_error *err) {
    if (!t || !out) return hai_fail(err, HAI_ERR_INVALID, "template: NULL argument");
    *out = NULL;
    if (out_len) *out_len = 0;
    if (data) *data = NULL;
    if (n_data) *n_data = 0;
    if (vars && !cJSON_IsObject(vars)) return hai_fail(err, HAI_ERR_INVALID, "template: the variables must be a JSON object");
    tpl_ctx c = {0};
    jmp_buf jb;
    c.fail = &jb;
    c.limit = (size_t)512 << 20;
    if (setjmp(jb)) {
        hai_status st = hai_fail(err, c.status, "%s", c.msg);
        tpl_arena_free(&c);
        return st;
    }
    tpl_run r = {&c, 0, 0, CTL_NONE, 0};
    frame *g = new_frame(&r, NULL);
    const cJSON *e;
    if (vars)
        cJSON_ArrayForEach(e, vars) {
            const char *k = e->string ? e->string : "";
            set_var(&r, g, tpl_cstr(&c, k), tpl_from_cjson(&c, e, !trusted_name(trusted, k)));
        }
    tpl_buf b = {0};
    tpl_exec(&r, g, &t->body, &b);
    char *s = malloc(b.n + 1);
    size_t (*d)[2] = data && b.nsp ? malloc(b.nsp * sizeof *d) : NULL;
    if (!s || (data && b.nsp && !d)) {
        free(s), free(d);
        tpl_arena_free(&c);
        return hai_fail(err, HAI_ERR_NOMEM, "template: out of memory");
    }
    if (b.n) memcpy(s, b.p, b.n);
    s[b.n] = 0;
    for (size_t i = 0; d && i < b.nsp; i++) d[i][0] = b.sp[i].a, d[i][1] = b.sp[i].b;
    if (data) *data = d, *n_data = b.nsp;
    tpl_arena_free(&c);
    *out = s;
    if (out_len) *out_len = b.n;
    return HAI_OK;
}

void hai_tpl_free(hai_tpl *t) {
    if (!t) return;
    tpl_arena_free(&t->ctx);
    free(t);
}
