/* Values of the template engine: the arena they live in, strings, arrays and objects (keys in
 * insertion order, as JSON gives them), truth and equality, and how a value prints (as
 * @huggingface/jinja prints it: true/false, floats with at least one decimal, arrays and objects
 * as JSON) and how tojson writes it. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tpl.h"

struct tpl_chunk {
    tpl_chunk *next;
    size_t cap, used;
    _Alignas(16) unsigned char data[];
};

_Noreturn void tpl_fail(tpl_ctx *c, hai_status st, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int k = line > 0 ? snprintf(c->msg, sizeof c->msg, "template line %d: ", line) : snprintf(c->msg, sizeof c->msg, "template: ");
    vsnprintf(c->msg + k, sizeof c->msg - (size_t)k, fmt, ap);
    va_end(ap);
    c->status = st;
    longjmp(*c->fail, 1);
}

void *tpl_alloc(tpl_ctx *c, size_t n) {
    n = (n + 15) & ~(size_t)15;
    tpl_chunk *h = c->chunks;
    if (!h || h->cap - h->used < n) {
        size_t cap = n > (64u << 10) ? n : (64u << 10);
        if (c->bytes + cap > c->limit) tpl_fail(c, HAI_ERR_LIMIT, 0, "more than %zu MiB of memory", c->limit >> 20);
        h = malloc(sizeof *h + cap);
        if (!h) tpl_fail(c, HAI_ERR_NOMEM, 0, "out of memory");
        h->cap = cap, h->used = 0, h->next = c->chunks;
        c->chunks = h;
        c->bytes += cap;
    }
    void *p = h->data + h->used;
    h->used += n;
    return p;
}

void tpl_arena_free(tpl_ctx *c) {
    for (tpl_chunk *h = c->chunks, *nx; h; h = nx) nx = h->next, free(h);
    c->chunks = NULL;
    c->bytes = 0;
}

jstr *tpl_str(tpl_ctx *c, const char *s, size_t n) {
    jstr *j = tpl_alloc(c, sizeof *j + n + 1);
    j->n = n;
    if (n) memcpy(j->s, s, n);
    j->s[n] = 0;
    return j;
}

jstr *tpl_cstr(tpl_ctx *c, const char *s) { return tpl_str(c, s, strlen(s)); }

jarr *tpl_arr(tpl_ctx *c, size_t cap) {
    jarr *a = tpl_alloc(c, sizeof *a);
    a->n = 0, a->cap = cap ? cap : 4;
    a->v = tpl_alloc(c, a->cap * sizeof *a->v);
    return a;
}

void tpl_arr_push(tpl_ctx *c, jarr *a, jv v) {
    if (a->n == a->cap) {
        jv *nv = tpl_alloc(c, 2 * a->cap * sizeof *nv);
        memcpy(nv, a->v, a->n * sizeof *nv);
        a->v = nv, a->cap *= 2;
    }
    a->v[a->n++] = v;
}

jobj *tpl_obj(tpl_ctx *c, size_t cap) {
    jobj *o = tpl_alloc(c, sizeof *o);
    o->n = 0, o->cap = cap ? cap : 4, o->data = false;
    o->k = tpl_alloc(c, o->cap * sizeof *o->k);
    o->v = tpl_alloc(c, o->cap * sizeof *o->v);
    return o;
}

jv *tpl_obj_get(const jobj *o, const char *k, size_t n) {
    for (size_t i = 0; i < o->n; i++)
        if (o->k[i]->n == n && !memcmp(o->k[i]->s, k, n)) return &o->v[i];
    return NULL;
}

void tpl_obj_set(tpl_ctx *c, jobj *o, jstr *k, jv v) {
    jv *have = tpl_obj_get(o, k->s, k->n);
    if (have) {
        *have = v;
        return;
    }
    if (o->n == o->cap) {
        jstr **nk = tpl_alloc(c, 2 * o->cap * sizeof *nk);
        jv *nv = tpl_alloc(c, 2 * o->cap * sizeof *nv);
        memcpy(nk, o->k, o->n * sizeof *nk), memcpy(nv, o->v, o->n * sizeof *nv);
        o->k = nk, o->v = nv, o->cap *= 2;
    }
    o->k[o->n] = k, o->v[o->n++] = v;
}

bool tpl_truthy(jv v) {
    switch (v.t) {
    case V_BOOL: return v.b;
    case V_INT: return v.i != 0;
    case V_FLOAT: return v.f != 0;
    case V_STR: return v.s->n > 0;
    case V_ARR: return v.a->n > 0;
    case V_OBJ: return v.o->n > 0;
    case V_NS: case V_MACRO: case V_FUNC: return true;
    default: return false;
    }
}

bool tpl_equal(jv a, jv b) {
    if ((a.t == V_INT || a.t == V_FLOAT) && (b.t == V_INT || b.t == V_FLOAT))
        return (a.t == V_INT ? (double)a.i : a.f) == (b.t == V_INT ? (double)b.i : b.f) && (a.t != V_INT || b.t != V_INT || a.i == b.i);
    if (a.t != b.t) return false;
    switch (a.t) {
    case V_UNDEF: case V_NONE: return true;
    case V_BOOL: return a.b == b.b;
    case V_STR: return a.s->n == b.s->n && !memcmp(a.s->s, b.s->s, a.s->n);
    case V_ARR:
        if (a.a->n != b.a->n) return false;
        for (size_t i = 0; i < a.a->n; i++)
            if (!tpl_equal(a.a->v[i], b.a->v[i])) return false;
        return true;
    case V_OBJ: case V_NS:
        if (a.o->n != b.o->n) return false;
        for (size_t i = 0; i < a.o->n; i++) {
            jv *o = tpl_obj_get(b.o, a.o->k[i]->s, a.o->k[i]->n);
            if (!o || !tpl_equal(a.o->v[i], *o)) return false;
        }
        return true;
    case V_MACRO: return a.m == b.m;
    case V_FUNC: return a.fn == b.fn;
    default: return false;
    }
}

const char *tpl_type_name(jv v) {
    static const char *names[] = {"undefined", "none", "boolean", "integer", "float", "string", "list", "object", "namespace", "macro", "function"};
    return v.t < sizeof names / sizeof *names ? names[v.t] : "?";
}

void tpl_put(tpl_ctx *c, tpl_buf *b, const char *s, size_t n) {
    if (!n) return;
    if (b->n + n > HAI_TPL_MAX_OUTPUT) tpl_fail(c, HAI_ERR_LIMIT, 0, "the output passes %u MiB", HAI_TPL_MAX_OUTPUT >> 20);
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = tpl_alloc(c, cap);
        if (b->n) memcpy(p, b->p, b->n);
        b->p = p, b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void puts_(tpl_ctx *c, tpl_buf *b, const char *s) { tpl_put(c, b, s, strlen(s)); }

jstr *tpl_buf_str(tpl_ctx *c, const tpl_buf *b) { return tpl_str(c, b->p ? b->p : "", b->n); }

void tpl_buf_mark(tpl_ctx *c, tpl_buf *b, size_t a, size_t e) {
    if (a >= e) return;
    if (b->nsp && b->sp[b->nsp - 1].b >= a) { /* touching or overlapping the last one */
        if (e > b->sp[b->nsp - 1].b) b->sp[b->nsp - 1].b = e;
        return;
    }
    if (b->nsp == b->capsp) {
        size_t cap = b->capsp ? 2 * b->capsp : 8;
        jspan *n = tpl_alloc(c, cap * sizeof *n);
        if (b->nsp) memcpy(n, b->sp, b->nsp * sizeof *n);
        b->sp = n, b->capsp = cap;
    }
    b->sp[b->nsp++] = (jspan){a, e};
}

void tpl_put_v(tpl_ctx *c, tpl_buf *b, jv s) {
    size_t at = b->n;
    tpl_put(c, b, s.s->s, s.s->n);
    for (size_t i = 0; s.sp && i < s.sp->n; i++) tpl_buf_mark(c, b, at + s.sp->v[i].a, at + s.sp->v[i].b);
}

static const jspans *spans_of(tpl_ctx *c, const jspan *v, size_t n) {
    if (!n) return NULL;
    jspans *sp = tpl_alloc(c, sizeof *sp + n * sizeof *v);
    sp->n = n;
    memcpy(sp->v, v, n * sizeof *v);
    return sp;
}

jv tpl_buf_val(tpl_ctx *c, const tpl_buf *b) {
    jv v = jv_str(tpl_buf_str(c, b));
    v.sp = spans_of(c, b->sp, b->nsp);
    return v;
}

jv tpl_all_data(tpl_ctx *c, jv s) {
    if (s.t != V_STR || !s.s->n) return s;
    jspan whole = {0, s.s->n};
    s.sp = spans_of(c, &whole, 1);
    return s;
}

bool tpl_has_data(jv v) { return v.t == V_STR && v.sp && v.sp->n; }

/* a double as JavaScript's Number#toString writes it: the shortest digits that read back the same,
 * positional from 1e-7 up to 1e21, else with an exponent (1e+21, 1.5e-7) */
static void js_number(char *out, size_t cap, double f) {
    if (isnan(f)) {
        snprintf(out, cap, "NaN");
        return;
    }
    if (isinf(f)) {
        snprintf(out, cap, f < 0 ? "-Infinity" : "Infinity");
        return;
    }
    if (f == 0) {
        snprintf(out, cap, "0");
        return;
    }
    char digits[40];
    int prec = 1;
    for (; prec <= 17; prec++) {
        snprintf(digits, sizeof digits, "%.*e", prec - 1, f);
        if (strtod(digits, NULL) == f) break;
    }
    /* digits: [-]d.ddde[+-]xx */
    const char *p = digits;
    bool neg = *p == '-';
    if (neg) p++;
    char mant[24];
    int nm = 0;
    for (; *p && *p != 'e'; p++)
        if (*p != '.') mant[nm++] = *p;
    mant[nm] = 0;
    int e = atoi(p + 1);
    while (nm > 1 && mant[nm - 1] == '0') mant[--nm] = 0;
    size_t k = 0;
    if (neg) out[k++] = '-';
    if (e >= 21 || e < -7) {
        out[k++] = mant[0];
        if (nm > 1) {
            out[k++] = '.';
            for (int i = 1; i < nm; i++) out[k++] = mant[i];
        }
        snprintf(out + k, cap - k, "e%c%d", e < 0 ? '-' : '+', e < 0 ? -e : e);
        return;
    }
    if (e < 0) {
        out[k++] = '0', out[k++] = '.';
        for (int i = 0; i < -e - 1; i++) out[k++] = '0';
        for (int i = 0; i < nm; i++) out[k++] = mant[i];
    } else {
        for (int i = 0; i <= e; i++) out[k++] = i < nm ? mant[i] : '0';
        if (nm > e + 1) {
            out[k++] = '.';
            for (int i = e + 1; i < nm; i++) out[k++] = mant[i];
        }
    }
    out[k] = 0;
}

static void print_float(char *out, size_t cap, double f) {
    if (f == 0 && signbit(f)) snprintf(out, cap, "-0.0");
    else if (isfinite(f) && f == floor(f) && fabs(f) < 1e21) snprintf(out, cap, "%.1f", f);
    else js_number(out, cap, f);
}

void tpl_print(tpl_ctx *c, tpl_buf *b, jv v) {
    char num[64];
    switch (v.t) {
    case V_STR: tpl_put_v(c, b, v); break;
    case V_BOOL: puts_(c, b, v.b ? "true" : "false"); break;
    case V_INT: snprintf(num, sizeof num, "%lld", (long long)v.i), puts_(c, b, num); break;
    case V_FLOAT: print_float(num, sizeof num, v.f), puts_(c, b, num); break;
    case V_ARR: case V_OBJ: case V_NS: tpl_json(c, b, v, -1, 0, ", ", ": ", false, false, false); break;
    case V_NONE: puts_(c, b, "null"); break; /* inside a string conversion; statements skip none */
    case V_MACRO: case V_FUNC: puts_(c, b, "[function]"); break;
    default: break;
    }
}

jstr *tpl_to_str(tpl_ctx *c, jv v) {
    if (v.t == V_STR) return v.s;
    tpl_buf b = {0};
    if (v.t == V_UNDEF) return tpl_str(c, "", 0);
    tpl_print(c, &b, v);
    return tpl_buf_str(c, &b);
}

/* a string as JSON.stringify writes it (non-ASCII as it is unless ascii: \uXXXX, in UTF-16) */
static void json_string(tpl_ctx *c, tpl_buf *b, const char *s, size_t n, bool ascii, bool data) {
    size_t at = b->n;
    tpl_put(c, b, "\"", 1);
    for (size_t i = 0; i < n;) {
        unsigned char ch = (unsigned char)s[i];
        char esc[16];
        if (ch == '"' || ch == '\\') esc[0] = '\\', esc[1] = (char)ch, tpl_put(c, b, esc, 2), i++;
        else if (ch < 0x20) {
            const char *e = ch == '\n' ? "\\n" : ch == '\r' ? "\\r" : ch == '\t' ? "\\t" : ch == '\b' ? "\\b" : ch == '\f' ? "\\f" : NULL;
            if (e) puts_(c, b, e);
            else snprintf(esc, sizeof esc, "\\u%04x", ch), puts_(c, b, esc);
            i++;
        } else if (ch < 0x80 || !ascii) {
            size_t j = i + 1;
            while (j < n && (unsigned char)s[j] >= 0x20 && s[j] != '"' && s[j] != '\\' && ((unsigned char)s[j] < 0x80 || !ascii)) j++;
            tpl_put(c, b, s + i, j - i);
            i = j;
        } else { /* ascii: a UTF-8 sequence as UTF-16 escapes (invalid bytes as U+FFFD) */
            uint32_t cp = 0xFFFD;
            int len = ch >= 0xF0 ? 4 : ch >= 0xE0 ? 3 : ch >= 0xC0 ? 2 : 1;
            if (len > 1 && i + (size_t)len <= n) {
                cp = ch & (0x3F >> (len - 1));
                for (int k = 1; k < len; k++) cp = cp << 6 | ((unsigned char)s[i + (size_t)k] & 0x3F);
            } else
                len = 1;
            if (cp >= 0x10000) {
                cp -= 0x10000;
                snprintf(esc, sizeof esc, "\\u%04x\\u%04x", 0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF));
            } else
                snprintf(esc, sizeof esc, "\\u%04x", cp);
            puts_(c, b, esc);
            i += (size_t)len;
        }
    }
    tpl_put(c, b, "\"", 1);
    if (data) tpl_buf_mark(c, b, at, b->n); /* a data string's whole JSON form */
}

static int key_cmp(const void *x, const void *y) {
    const jstr *a = *(jstr *const *)x, *b = *(jstr *const *)y;
    int r = memcmp(a->s, b->s, a->n < b->n ? a->n : b->n);
    return r ? r : (a->n > b->n) - (a->n < b->n);
}

void tpl_json(tpl_ctx *c, tpl_buf *b, jv v, int indent, int depth, const char *item_sep, const char *key_sep, bool ascii, bool sort_keys,
              bool undef_null) {
    if (depth > 256) tpl_fail(c, HAI_ERR_LIMIT, 0, "tojson: nested more than 256 deep");
    char num[64];
    switch (v.t) {
    case V_NONE: puts_(c, b, "null"); return;
    case V_UNDEF: puts_(c, b, undef_null ? "null" : "undefined"); return;
    case V_BOOL: puts_(c, b, v.b ? "true" : "false"); return;
    case V_INT: snprintf(num, sizeof num, "%lld", (long long)v.i), puts_(c, b, num); return;
    case V_FLOAT:
        if (!isfinite(v.f)) puts_(c, b, "null");
        else js_number(num, sizeof num, v.f), puts_(c, b, num);
        return;
    case V_STR: json_string(c, b, v.s->s, v.s->n, ascii, tpl_has_data(v)); return;
    case V_ARR: case V_OBJ: case V_NS: {
        bool arr = v.t == V_ARR;
        size_t n = arr ? v.a->n : v.o->n;
        size_t *order = NULL;
        if (!arr && sort_keys && n > 1) { /* keys sorted by their bytes */
            jstr **ks = tpl_alloc(c, n * sizeof *ks);
            memcpy(ks, v.o->k, n * sizeof *ks);
            qsort(ks, n, sizeof *ks, key_cmp);
            order = tpl_alloc(c, n * sizeof *order);
            for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < n; j++)
                    if (v.o->k[j] == ks[i]) order[i] = j;
        }
        tpl_put(c, b, arr ? "[" : "{", 1);
        for (size_t i = 0; i < n; i++) {
            if (i) puts_(c, b, item_sep);
            if (indent > 0) {
                tpl_put(c, b, "\n", 1);
                for (int d = 0; d < (depth + 1) * indent; d++) tpl_put(c, b, " ", 1);
            }
            size_t at = order ? order[i] : i;
            if (arr) tpl_json(c, b, v.a->v[at], indent, depth + 1, item_sep, key_sep, ascii, sort_keys, undef_null);
            else {
                json_string(c, b, v.o->k[at]->s, v.o->k[at]->n, ascii, v.o->data);
                puts_(c, b, key_sep);
                tpl_json(c, b, v.o->v[at], indent, depth + 1, item_sep, key_sep, ascii, sort_keys, undef_null);
            }
        }
        if (indent > 0 && n) {
            tpl_put(c, b, "\n", 1);
            for (int d = 0; d < depth * indent; d++) tpl_put(c, b, " ", 1);
        }
        tpl_put(c, b, arr ? "]" : "}", 1);
        return;
    }
    default: tpl_fail(c, HAI_ERR_INVALID, 0, "tojson: cannot write a %s", tpl_type_name(v));
    }
}

jv tpl_from_cjson(tpl_ctx *c, const cJSON *j, bool data) {
    if (!j || cJSON_IsNull(j)) return jv_none();
    if (cJSON_IsTrue(j)) return jv_bool(true);
    if (cJSON_IsFalse(j)) return jv_bool(false);
    if (cJSON_IsNumber(j)) { /* as JavaScript sees a number: an integer when it has no fraction */
        double d = j->valuedouble;
        return isfinite(d) && d == floor(d) && fabs(d) < 9007199254740992.0 ? jv_int((int64_t)d) : jv_float(d);
    }
    if (cJSON_IsString(j)) {
        jv s = jv_str(tpl_cstr(c, j->valuestring ? j->valuestring : ""));
        return data ? tpl_all_data(c, s) : s;
    }
    if (cJSON_IsArray(j)) {
        jarr *a = tpl_arr(c, (size_t)cJSON_GetArraySize(j));
        const cJSON *e;
        cJSON_ArrayForEach(e, j) tpl_arr_push(c, a, tpl_from_cjson(c, e, data));
        return (jv){.t = V_ARR, .a = a};
    }
    if (cJSON_IsObject(j)) {
        jobj *o = tpl_obj(c, (size_t)cJSON_GetArraySize(j));
        o->data = data;
        const cJSON *e;
        cJSON_ArrayForEach(e, j) tpl_obj_set(c, o, tpl_cstr(c, e->string ? e->string : ""), tpl_from_cjson(c, e, data));
        return (jv){.t = V_OBJ, .o = o};
    }
    return jv_undef();
}
