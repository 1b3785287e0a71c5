/* Filters, tests, methods of strings and objects, and the global functions templates call
 * (raise_exception, namespace, range, strftime_now), with @huggingface/jinja's behaviour. A name
 * the engine does not have is an error naming it, never a silent pass-through. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tpl.h"

static jv kwarg(jstr **kwn, const jv *kwv, int nkw, const char *name) {
    for (int i = 0; i < nkw; i++)
        if (!strcmp(kwn[i]->s, name)) return kwv[i];
    return jv_undef();
}

/* argument i, else the keyword, else undefined */
static jv arg(const jv *args, int nargs, int i, jstr **kwn, const jv *kwv, int nkw, const char *name) {
    return i < nargs ? args[i] : kwarg(kwn, kwv, nkw, name);
}

static bool is_space(char ch) { return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f'; }

static jv trim(tpl_ctx *c, const jstr *s, bool left, bool right) {
    size_t a = 0, b = s->n;
    while (left && a < b && is_space(s->s[a])) a++;
    while (right && b > a && is_space(s->s[b - 1])) b--;
    return jv_str(tpl_str(c, s->s + a, b - a));
}

static jv casefold(tpl_ctx *c, const jstr *s, int mode) { /* 0 lower, 1 upper, 2 title, 3 capitalize (ASCII letters) */
    jstr *o = tpl_str(c, s->s, s->n);
    bool word = false;
    for (size_t i = 0; i < o->n; i++) {
        unsigned char ch = (unsigned char)o->s[i];
        bool alnum = isalnum(ch) || ch == '_' || ch >= 0x80;
        if (mode == 0) o->s[i] = (char)tolower(ch);
        else if (mode == 1) o->s[i] = (char)toupper(ch);
        else if (mode == 2) { /* the first letter of each word up, the rest as it is (\b\w) */
            if (alnum && !word) o->s[i] = (char)toupper(ch);
        } else if (i == 0)
            o->s[i] = (char)toupper(ch);
        word = alnum;
    }
    return jv_str(o);
}

/* length as JavaScript counts it: UTF-16 units */
static int64_t js_length(const jstr *s) {
    int64_t n = 0;
    for (size_t i = 0; i < s->n; i++) {
        unsigned char ch = (unsigned char)s->s[i];
        if ((ch & 0xC0) != 0x80) n += ch >= 0xF0 ? 2 : 1;
    }
    return n;
}

static jv str_replace(tpl_ctx *c, const jstr *s, const jstr *from, const jstr *to, int64_t count) {
    if (count == 0) return jv_str((jstr *)s);
    tpl_buf b = {0};
    int64_t left = count < 0 ? INT64_MAX : count;
    if (from->n == 0) { /* between every character and at both ends */
        for (size_t i = 0; i <= s->n; i++) {
            bool boundary = i == s->n || ((unsigned char)s->s[i] & 0xC0) != 0x80;
            if (boundary && left > 0) tpl_put(c, &b, to->s, to->n), left--;
            if (i < s->n) tpl_put(c, &b, s->s + i, 1);
        }
        return jv_str(tpl_buf_str(c, &b));
    }
    size_t i = 0;
    while (i < s->n) {
        const char *hit = left > 0 && s->n - i >= from->n ? memmem(s->s + i, s->n - i, from->s, from->n) : NULL;
        if (!hit) break;
        tpl_put(c, &b, s->s + i, (size_t)(hit - (s->s + i)));
        tpl_put(c, &b, to->s, to->n);
        i = (size_t)(hit - s->s) + from->n;
        left--;
    }
    tpl_put(c, &b, s->s + i, s->n - i);
    return jv_str(tpl_buf_str(c, &b));
}

static bool starts_or_ends(const jstr *s, const jstr *p, bool start) {
    if (p->n > s->n) return false;
    return !memcmp(start ? s->s : s->s + s->n - p->n, p->s, p->n);
}

static jv split(tpl_run *r, const jstr *s, jv sep, int64_t maxsplit, int line) {
    jarr *a = tpl_arr(r->c, 4);
    if (sep.t == V_UNDEF || sep.t == V_NONE) { /* runs of whitespace */
        size_t i = 0;
        while (i < s->n && is_space(s->s[i])) i++;
        while (i < s->n) {
            if (maxsplit >= 0 && (int64_t)a->n >= maxsplit) {
                tpl_arr_push(r->c, a, jv_str(tpl_str(r->c, s->s + i, s->n - i)));
                break;
            }
            size_t j = i;
            while (j < s->n && !is_space(s->s[j])) j++;
            tpl_arr_push(r->c, a, jv_str(tpl_str(r->c, s->s + i, j - i)));
            i = j;
            while (i < s->n && is_space(s->s[i])) i++;
        }
        return (jv){.t = V_ARR, .a = a};
    }
    if (sep.t != V_STR) tpl_fail(r->c, HAI_ERR_INVALID, line, "split: the separator must be a string");
    if (!sep.s->n) tpl_fail(r->c, HAI_ERR_INVALID, line, "split: an empty separator");
    size_t i = 0;
    for (;;) {
        const char *hit = (maxsplit < 0 || (int64_t)a->n < maxsplit) && s->n - i >= sep.s->n ? memmem(s->s + i, s->n - i, sep.s->s, sep.s->n) : NULL;
        if (!hit) break;
        tpl_arr_push(r->c, a, jv_str(tpl_str(r->c, s->s + i, (size_t)(hit - (s->s + i)))));
        i = (size_t)(hit - s->s) + sep.s->n;
    }
    tpl_arr_push(r->c, a, jv_str(tpl_str(r->c, s->s + i, s->n - i)));
    return (jv){.t = V_ARR, .a = a};
}

/* key i of o as a string value (data when the object came from the variables) */
static jv key_val(tpl_ctx *c, const jobj *o, size_t i) { return o->data ? tpl_all_data(c, jv_str(o->k[i])) : jv_str(o->k[i]); }

static jv items_of(tpl_ctx *c, const jobj *o) {
    jarr *a = tpl_arr(c, o->n);
    for (size_t i = 0; i < o->n; i++) {
        jarr *p = tpl_arr(c, 2);
        tpl_arr_push(c, p, key_val(c, o, i));
        tpl_arr_push(c, p, o->v[i]);
        tpl_arr_push(c, a, (jv){.t = V_ARR, .a = p});
    }
    return (jv){.t = V_ARR, .a = a};
}

static int cmp_values(jv a, jv b, bool case_sensitive) {
    if ((a.t == V_INT || a.t == V_FLOAT || a.t == V_BOOL) && (b.t == V_INT || b.t == V_FLOAT || b.t == V_BOOL)) {
        double x = a.t == V_INT ? (double)a.i : a.t == V_FLOAT ? a.f : a.b, y = b.t == V_INT ? (double)b.i : b.t == V_FLOAT ? b.f : b.b;
        return (x > y) - (x < y);
    }
    if (a.t == V_STR && b.t == V_STR) {
        size_t n = a.s->n < b.s->n ? a.s->n : b.s->n;
        for (size_t i = 0; i < n; i++) {
            int x = (unsigned char)a.s->s[i], y = (unsigned char)b.s->s[i];
            if (!case_sensitive) x = tolower(x), y = tolower(y);
            if (x != y) return x - y;
        }
        return (a.s->n > b.s->n) - (a.s->n < b.s->n);
    }
    return 0;
}

/* item's attribute by a dotted path */
static jv attr_path(tpl_ctx *c, jv item, const jstr *path) {
    const char *p = path->s;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (item.t == V_OBJ || item.t == V_NS) {
            jv *v = tpl_obj_get(item.o, p, n);
            item = v ? *v : jv_undef();
        } else if (item.t == V_ARR) {
            char num[32];
            snprintf(num, sizeof num, "%.*s", (int)(n < 31 ? n : 31), p);
            char *end;
            long long i = strtoll(num, &end, 10);
            item = *end == 0 && i >= 0 && (size_t)i < item.a->n ? item.a->v[i] : jv_undef();
        } else
            item = jv_undef();
        p += n + (dot ? 1 : 0);
        if (!dot) break;
    }
    (void)c;
    return item;
}

typedef struct sort_ctx {
    jv *v;
    jstr *attr;
    bool cs, rev;
    tpl_ctx *c;
} sort_ctx;

static void sort_values(sort_ctx *s, size_t n) { /* stable insertion sort: templates sort a few items */
    for (size_t i = 1; i < n; i++) {
        jv x = s->v[i];
        jv kx = s->attr ? attr_path(s->c, x, s->attr) : x;
        size_t j = i;
        while (j > 0) {
            jv ky = s->attr ? attr_path(s->c, s->v[j - 1], s->attr) : s->v[j - 1];
            int d = cmp_values(ky, kx, s->cs);
            if (s->rev ? d >= 0 : d <= 0) break;
            s->v[j] = s->v[j - 1];
            j--;
        }
        s->v[j] = x;
    }
}

static bool method_impl(tpl_run *r, jv self, const char *name, const jv *args, int nargs, jstr **kwn, const jv *kwv, int nkw, int line, jv *out) {
    tpl_ctx *c = r->c;
    if (self.t == V_STR) {
        const jstr *s = self.s;
        if (!strcmp(name, "upper")) *out = casefold(c, s, 1);
        else if (!strcmp(name, "lower")) *out = casefold(c, s, 0);
        else if (!strcmp(name, "title")) *out = casefold(c, s, 2);
        else if (!strcmp(name, "capitalize")) *out = casefold(c, s, 3);
        else if (!strcmp(name, "strip")) *out = trim(c, s, true, true);
        else if (!strcmp(name, "lstrip")) *out = trim(c, s, true, false);
        else if (!strcmp(name, "rstrip")) *out = trim(c, s, false, true);
        else if (!strcmp(name, "startswith") || !strcmp(name, "endswith")) {
            bool start = name[0] == 's';
            if (nargs < 1) tpl_fail(c, HAI_ERR_INVALID, line, "%s() needs an argument", name);
            bool hit = false;
            if (args[0].t == V_STR) hit = starts_or_ends(s, args[0].s, start);
            else if (args[0].t == V_ARR)
                for (size_t i = 0; i < args[0].a->n && !hit; i++) {
                    if (args[0].a->v[i].t != V_STR) tpl_fail(c, HAI_ERR_INVALID, line, "%s(): a tuple of strings", name);
                    hit = starts_or_ends(s, args[0].a->v[i].s, start);
                }
            else
                tpl_fail(c, HAI_ERR_INVALID, line, "%s() takes a string or a tuple of strings", name);
            *out = jv_bool(hit);
        } else if (!strcmp(name, "split")) {
            jv ms = arg(args, nargs, 1, kwn, kwv, nkw, "maxsplit");
            *out = split(r, s, arg(args, nargs, 0, kwn, kwv, nkw, "sep"), ms.t == V_INT ? ms.i : -1, line);
        } else if (!strcmp(name, "replace")) {
            jv cnt = arg(args, nargs, 2, kwn, kwv, nkw, "count");
            if (nargs < 2 || args[0].t != V_STR || args[1].t != V_STR) tpl_fail(c, HAI_ERR_INVALID, line, "replace() takes two strings");
            *out = str_replace(c, s, args[0].s, args[1].s, cnt.t == V_INT ? cnt.i : -1);
        } else
            return false;
        return true;
    }
    if (self.t == V_OBJ || self.t == V_NS) {
        if (!strcmp(name, "get")) {
            if (nargs < 1 || args[0].t != V_STR) tpl_fail(c, HAI_ERR_INVALID, line, "get() takes a string key");
            jv *v = tpl_obj_get(self.o, args[0].s->s, args[0].s->n);
            *out = v ? *v : nargs > 1 ? args[1] : jv_none();
        } else if (!strcmp(name, "items")) *out = items_of(c, self.o);
        else if (!strcmp(name, "dictsort")) { /* [key, value] pairs sorted by key (by="value": by value) */
            jv cs = arg(args, nargs, 0, kwn, kwv, nkw, "case_sensitive"), by = arg(args, nargs, 1, kwn, kwv, nkw, "by"),
               rev = arg(args, nargs, 2, kwn, kwv, nkw, "reverse");
            bool by_value = by.t == V_STR && !strcmp(by.s->s, "value");
            if (by.t == V_STR && !by_value && strcmp(by.s->s, "key")) tpl_fail(c, HAI_ERR_INVALID, line, "dictsort: by must be 'key' or 'value'");
            jv pairs = items_of(c, self.o);
            sort_ctx sc = {pairs.a->v, tpl_cstr(c, by_value ? "1" : "0"), cs.t == V_BOOL && cs.b, rev.t == V_BOOL && rev.b, c};
            sort_values(&sc, pairs.a->n);
            *out = pairs;
        }
        else if (!strcmp(name, "keys") || !strcmp(name, "values")) {
            jarr *a = tpl_arr(c, self.o->n);
            for (size_t i = 0; i < self.o->n; i++) tpl_arr_push(c, a, name[0] == 'k' ? key_val(c, self.o, i) : self.o->v[i]);
            *out = (jv){.t = V_ARR, .a = a};
        } else
            return false;
        return true;
    }
    return false;
}

/* ---- tests ----------------------------------------------------------------------------------- */

bool tpl_test(tpl_run *r, const char *name, jv v, const jv *args, int nargs, int line) {
    if (!strcmp(name, "defined")) return v.t != V_UNDEF;
    if (!strcmp(name, "undefined")) return v.t == V_UNDEF;
    if (!strcmp(name, "none")) return v.t == V_NONE;
    if (!strcmp(name, "boolean")) return v.t == V_BOOL;
    if (!strcmp(name, "true")) return v.t == V_BOOL && v.b;
    if (!strcmp(name, "false")) return v.t == V_BOOL && !v.b;
    if (!strcmp(name, "string")) return v.t == V_STR;
    if (!strcmp(name, "number")) return v.t == V_INT || v.t == V_FLOAT;
    if (!strcmp(name, "integer")) return v.t == V_INT;
    if (!strcmp(name, "float")) return v.t == V_FLOAT;
    if (!strcmp(name, "iterable")) return v.t == V_ARR || v.t == V_STR;
    if (!strcmp(name, "mapping")) return v.t == V_OBJ;
    if (!strcmp(name, "sequence")) return v.t == V_ARR || v.t == V_OBJ || v.t == V_STR;
    if (!strcmp(name, "callable")) return v.t == V_MACRO || v.t == V_FUNC;
    if (!strcmp(name, "odd") || !strcmp(name, "even")) {
        if (v.t != V_INT) tpl_fail(r->c, HAI_ERR_INVALID, line, "'%s' on a %s", name, tpl_type_name(v));
        return (v.i % 2 != 0) == (name[0] == 'o');
    }
    if (!strcmp(name, "lower") || !strcmp(name, "upper")) {
        if (v.t != V_STR) return false;
        for (size_t i = 0; i < v.s->n; i++)
            if (name[0] == 'l' ? isupper((unsigned char)v.s->s[i]) : islower((unsigned char)v.s->s[i])) return false;
        return true;
    }
    if (!strcmp(name, "equalto") || !strcmp(name, "eq") || !strcmp(name, "sameas")) {
        if (nargs < 1) tpl_fail(r->c, HAI_ERR_INVALID, line, "'%s' needs a value", name);
        jv b = args[0];
        if (v.t != b.t && !((v.t == V_INT || v.t == V_FLOAT) && (b.t == V_INT || b.t == V_FLOAT))) return false;
        return tpl_equal(v, b) && (v.t != V_ARR && v.t != V_OBJ ? true : v.a == b.a);
    }
    tpl_fail(r->c, HAI_ERR_UNSUPPORTED, line, "unknown test '%s'", name);
}

/* ---- filters --------------------------------------------------------------------------------- */

static jv json_filter(tpl_run *r, jv v, jstr **kwn, const jv *kwv, int nkw, int line) {
    jv ind = kwarg(kwn, kwv, nkw, "indent"), asc = kwarg(kwn, kwv, nkw, "ensure_ascii"), sk = kwarg(kwn, kwv, nkw, "sort_keys"),
       sep = kwarg(kwn, kwv, nkw, "separators");
    if (ind.t != V_UNDEF && ind.t != V_NONE && ind.t != V_INT) tpl_fail(r->c, HAI_ERR_INVALID, line, "tojson: indent must be a number");
    int indent = ind.t == V_INT ? (int)(ind.i < 0 ? 0 : ind.i > 64 ? 64 : ind.i) : -1;
    const char *item = indent > 0 ? "," : ", ", *key = ": ";
    if (sep.t == V_ARR) {
        if (sep.a->n != 2 || sep.a->v[0].t != V_STR || sep.a->v[1].t != V_STR) tpl_fail(r->c, HAI_ERR_INVALID, line, "tojson: separators must be two strings");
        item = sep.a->v[0].s->s, key = sep.a->v[1].s->s;
    } else if (sep.t != V_UNDEF && sep.t != V_NONE)
        tpl_fail(r->c, HAI_ERR_INVALID, line, "tojson: separators must be two strings");
    tpl_buf b = {0};
    tpl_json(r->c, &b, v, indent, 0, item, key, asc.t == V_BOOL && asc.b, sk.t == V_BOOL && sk.b, true);
    return tpl_buf_val(r->c, &b);
}

static jv filter_impl(tpl_run *r, const char *name, jv v, const jv *args, int nargs, jstr **kwn, const jv *kwv, int nkw, int line) {
    tpl_ctx *c = r->c;
    if (!strcmp(name, "safe")) return v;
    if (!strcmp(name, "tojson")) return json_filter(r, v, kwn, kwv, nkw, line);
    if (!strcmp(name, "default") || !strcmp(name, "d")) {
        jv def = nargs > 0 ? args[0] : jv_str(tpl_str(c, "", 0)), boolean = arg(args, nargs, 1, kwn, kwv, nkw, "boolean");
        return v.t == V_UNDEF || (boolean.t == V_BOOL && boolean.b && !tpl_truthy(v)) ? def : v;
    }
    if (!strcmp(name, "length") || !strcmp(name, "count")) {
        if (v.t == V_ARR) return jv_int((int64_t)v.a->n);
        if (v.t == V_STR) return jv_int(js_length(v.s));
        if (v.t == V_OBJ || v.t == V_NS) return jv_int((int64_t)v.o->n);
    } else if (!strcmp(name, "string")) {
        if (v.t == V_ARR || v.t == V_OBJ) {
            tpl_buf b = {0};
            tpl_json(c, &b, v, -1, 0, ", ", ": ", false, false, false);
            return tpl_buf_val(c, &b);
        }
        if (v.t == V_STR) return v;
        if (v.t != V_UNDEF) return jv_str(tpl_to_str(c, v));
    } else if (!strcmp(name, "int") || !strcmp(name, "float")) {
        bool in = name[0] == 'i';
        jv def = arg(args, nargs, 0, kwn, kwv, nkw, "default");
        if (def.t == V_UNDEF) def = in ? jv_int(0) : jv_float(0);
        if (v.t == V_FLOAT && in && nargs == 0 && nkw == 0) /* floor, where an integer holds it */
            return isfinite(v.f) && fabs(v.f) < 9.2e18 ? jv_int((int64_t)floor(v.f)) : jv_float(floor(v.f));
        if (v.t == V_INT || v.t == V_FLOAT) return v;
        if (v.t == V_BOOL) return in ? jv_int(v.b) : jv_float(v.b);
        if (v.t == V_STR) {
            char *end;
            const char *p = v.s->s;
            while (is_space(*p)) p++;
            if (in) {
                long long x = strtoll(p, &end, 10);
                return end == p ? def : jv_int(x);
            }
            double x = strtod(p, &end);
            return end == p ? def : jv_float(x);
        }
    } else if (!strcmp(name, "abs")) {
        if (v.t == V_INT) return jv_int(v.i < 0 ? (int64_t)(0 - (uint64_t)v.i) : v.i);
        if (v.t == V_FLOAT) return jv_float(fabs(v.f));
    } else if (!strcmp(name, "bool")) {
        if (v.t == V_BOOL) return v;
    } else if (v.t == V_STR) {
        const jstr *s = v.s;
        if (!strcmp(name, "trim")) return trim(c, s, true, true);
        if (!strcmp(name, "upper")) return casefold(c, s, 1);
        if (!strcmp(name, "lower")) return casefold(c, s, 0);
        if (!strcmp(name, "title")) return casefold(c, s, 2);
        if (!strcmp(name, "capitalize")) return casefold(c, s, 3);
        if (!strcmp(name, "join")) {
            jv sep = arg(args, nargs, 0, kwn, kwv, nkw, "separator");
            if (sep.t == V_UNDEF || !sep.s->n) return v;
            tpl_buf b = {0};
            for (size_t i = 0; i < s->n; i++) {
                if (i && ((unsigned char)s->s[i] & 0xC0) != 0x80) tpl_put(c, &b, sep.s->s, sep.s->n);
                tpl_put(c, &b, s->s + i, 1);
            }
            return jv_str(tpl_buf_str(c, &b));
        }
        if (!strcmp(name, "list")) {
            jarr *a = tpl_arr(c, s->n);
            for (size_t i = 0; i < s->n;) {
                size_t j = i + 1;
                while (j < s->n && ((unsigned char)s->s[j] & 0xC0) == 0x80) j++;
                tpl_arr_push(c, a, jv_str(tpl_str(c, s->s + i, j - i)));
                i = j;
            }
            return (jv){.t = V_ARR, .a = a};
        }
        if (!strcmp(name, "indent")) {
            jv w = arg(args, nargs, 0, kwn, kwv, nkw, "width"), first = arg(args, nargs, 1, kwn, kwv, nkw, "first"),
               blank = arg(args, nargs, 2, kwn, kwv, nkw, "blank");
            if (w.t != V_UNDEF && w.t != V_INT) tpl_fail(c, HAI_ERR_INVALID, line, "indent: the width must be a number");
            int64_t width = w.t == V_INT ? (w.i < 0 ? 0 : w.i > 256 ? 256 : w.i) : 4;
            tpl_buf b = {0};
            size_t i = 0;
            for (int ln = 0;; ln++) {
                const char *nl = memchr(s->s + i, '\n', s->n - i);
                size_t end = nl ? (size_t)(nl - s->s) : s->n;
                bool pad = (ln > 0 || tpl_truthy(first)) && (end > i || tpl_truthy(blank));
                for (int64_t k = 0; pad && k < width; k++) tpl_put(c, &b, " ", 1);
                tpl_put(c, &b, s->s + i, end - i);
                if (!nl) break;
                tpl_put(c, &b, "\n", 1);
                i = end + 1;
            }
            return jv_str(tpl_buf_str(c, &b));
        }
        if (!strcmp(name, "replace")) {
            jv out;
            if (tpl_method(r, v, "replace", args, nargs, kwn, kwv, nkw, line, &out)) return out;
        }
    } else if (v.t == V_ARR) {
        jarr *a = v.a;
        if (!strcmp(name, "list")) return v;
        if (!strcmp(name, "first")) return a->n ? a->v[0] : jv_undef();
        if (!strcmp(name, "last")) return a->n ? a->v[a->n - 1] : jv_undef();
        if (!strcmp(name, "reverse")) {
            jarr *o = tpl_arr(c, a->n);
            for (size_t i = a->n; i-- > 0;) tpl_arr_push(c, o, a->v[i]);
            return (jv){.t = V_ARR, .a = o};
        }
        if (!strcmp(name, "join")) {
            jv sep = arg(args, nargs, 0, kwn, kwv, nkw, "separator"), at = kwarg(kwn, kwv, nkw, "attribute");
            if (sep.t != V_UNDEF && sep.t != V_STR) tpl_fail(c, HAI_ERR_INVALID, line, "join: the separator must be a string");
            tpl_buf b = {0};
            for (size_t i = 0; i < a->n; i++) {
                if (i && sep.t == V_STR) tpl_put(c, &b, sep.s->s, sep.s->n);
                jv x = at.t == V_STR ? attr_path(c, a->v[i], at.s) : a->v[i];
                if (x.t != V_UNDEF && x.t != V_NONE) tpl_print(c, &b, x);
            }
            return tpl_buf_val(c, &b);
        }
        if (!strcmp(name, "unique")) {
            jarr *o = tpl_arr(c, a->n);
            for (size_t i = 0; i < a->n; i++) {
                bool seen = false;
                for (size_t j = 0; j < o->n && !seen; j++) seen = tpl_equal(o->v[j], a->v[i]) && a->v[i].t != V_ARR && a->v[i].t != V_OBJ;
                if (!seen) tpl_arr_push(c, o, a->v[i]);
            }
            return (jv){.t = V_ARR, .a = o};
        }
        if (!strcmp(name, "sort")) {
            jv rev = arg(args, nargs, 0, kwn, kwv, nkw, "reverse"), cs = arg(args, nargs, 1, kwn, kwv, nkw, "case_sensitive"),
               at = arg(args, nargs, 2, kwn, kwv, nkw, "attribute");
            jarr *o = tpl_arr(c, a->n);
            for (size_t i = 0; i < a->n; i++) tpl_arr_push(c, o, a->v[i]);
            sort_ctx s = {o->v, at.t == V_STR ? at.s : NULL, cs.t == V_BOOL && cs.b, rev.t == V_BOOL && rev.b, c};
            sort_values(&s, o->n);
            return (jv){.t = V_ARR, .a = o};
        }
        if (!strcmp(name, "selectattr") || !strcmp(name, "rejectattr")) {
            bool sel = name[0] == 's';
            if (nargs < 1 || args[0].t != V_STR) tpl_fail(c, HAI_ERR_INVALID, line, "%s needs an attribute name", name);
            jarr *o = tpl_arr(c, a->n);
            for (size_t i = 0; i < a->n; i++) {
                if (a->v[i].t != V_OBJ && a->v[i].t != V_NS) tpl_fail(c, HAI_ERR_INVALID, line, "%s on a list of %ss", name, tpl_type_name(a->v[i]));
                jv *x = tpl_obj_get(a->v[i].o, args[0].s->s, args[0].s->n);
                bool hit = false;
                if (x) {
                    if (nargs >= 2) {
                        if (args[1].t != V_STR) tpl_fail(c, HAI_ERR_INVALID, line, "%s: the test must be named by a string", name);
                        hit = tpl_test(r, args[1].s->s, *x, args + 2, nargs - 2, line);
                    } else
                        hit = tpl_truthy(*x);
                }
                if (hit == sel) tpl_arr_push(c, o, a->v[i]);
            }
            return (jv){.t = V_ARR, .a = o};
        }
        if (!strcmp(name, "select") || !strcmp(name, "reject")) {
            bool sel = name[0] == 's' && name[2] == 'l';
            jarr *o = tpl_arr(c, a->n);
            for (size_t i = 0; i < a->n; i++) {
                bool hit = nargs >= 1 && args[0].t == V_STR ? tpl_test(r, args[0].s->s, a->v[i], args + 1, nargs - 1, line) : tpl_truthy(a->v[i]);
                if (hit == sel) tpl_arr_push(c, o, a->v[i]);
            }
            return (jv){.t = V_ARR, .a = o};
        }
        if (!strcmp(name, "map")) {
            jv at = kwarg(kwn, kwv, nkw, "attribute"), def = kwarg(kwn, kwv, nkw, "default");
            jarr *o = tpl_arr(c, a->n);
            if (at.t == V_STR) {
                for (size_t i = 0; i < a->n; i++) {
                    if (a->v[i].t != V_OBJ && a->v[i].t != V_NS) tpl_fail(c, HAI_ERR_INVALID, line, "map: items must be objects");
                    jv x = attr_path(c, a->v[i], at.s);
                    tpl_arr_push(c, o, x.t == V_UNDEF ? def : x);
                }
                return (jv){.t = V_ARR, .a = o};
            }
            if (nargs >= 1 && args[0].t == V_STR) { /* map('filter', args...) */
                for (size_t i = 0; i < a->n; i++) tpl_arr_push(c, o, tpl_filter(r, args[0].s->s, a->v[i], args + 1, nargs - 1, kwn, kwv, nkw, line));
                return (jv){.t = V_ARR, .a = o};
            }
            tpl_fail(c, HAI_ERR_UNSUPPORTED, line, "map needs attribute= or a filter name");
        }
    } else if (v.t == V_OBJ || v.t == V_NS) {
        if (!strcmp(name, "items")) return items_of(c, v.o);
        if (!strcmp(name, "list")) {
            jarr *a = tpl_arr(c, v.o->n);
            for (size_t i = 0; i < v.o->n; i++) tpl_arr_push(c, a, key_val(c, v.o, i));
            return (jv){.t = V_ARR, .a = a};
        }
        jv out;
        if (tpl_method(r, v, name, args, nargs, kwn, kwv, nkw, line, &out)) return out;
    }
    static const char *const known[] = {"safe", "tojson", "default", "length", "count", "string", "int", "float", "abs", "bool", "trim", "upper",
                                        "lower", "title", "capitalize", "join", "list", "indent", "replace", "first", "last", "reverse", "unique",
                                        "sort", "selectattr", "rejectattr", "select", "reject", "map", "items", "dictsort"};
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (!strcmp(name, known[i])) tpl_fail(c, HAI_ERR_INVALID, line, "the filter '%s' cannot take a %s", name, tpl_type_name(v));
    tpl_fail(c, HAI_ERR_UNSUPPORTED, line, "unknown filter '%s'", name);
}

/* what a filter or method makes of a data string is data as a whole (its parts: split, list) */
static jv derived(tpl_ctx *c, jv out, jv from) {
    if (!tpl_has_data(from)) return out;
    if (out.t == V_STR && !out.sp) return tpl_all_data(c, out);
    if (out.t == V_ARR) {
        jarr *a = tpl_arr(c, out.a->n);
        for (size_t i = 0; i < out.a->n; i++) tpl_arr_push(c, a, out.a->v[i].t == V_STR && !out.a->v[i].sp ? tpl_all_data(c, out.a->v[i]) : out.a->v[i]);
        return (jv){.t = V_ARR, .a = a};
    }
    return out;
}

bool tpl_method(tpl_run *r, jv self, const char *name, const jv *args, int nargs, jstr **kwn, const jv *kwv, int nkw, int line, jv *out) {
    if (!method_impl(r, self, name, args, nargs, kwn, kwv, nkw, line, out)) return false;
    *out = derived(r->c, *out, self);
    return true;
}

jv tpl_filter(tpl_run *r, const char *name, jv v, const jv *args, int nargs, jstr **kwn, const jv *kwv, int nkw, int line) {
    return derived(r->c, filter_impl(r, name, v, args, nargs, kwn, kwv, nkw, line), v);
}

/* ---- global functions ------------------------------------------------------------------------ */

enum { FN_RAISE, FN_NAMESPACE, FN_RANGE, FN_STRFTIME, FN_DICT };

int tpl_global_fn(const char *name) {
    static const char *const names[] = {"raise_exception", "namespace", "range", "strftime_now", "dict"};
    for (int i = 0; i < (int)(sizeof names / sizeof *names); i++)
        if (!strcmp(name, names[i])) return i;
    return -1;
}

static jstr *strftime_str(tpl_ctx *c, const jstr *fmt) {
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    static const char *const mon_s[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    static const char *const mon_l[] = {"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"};
    tpl_buf b = {0};
    for (size_t i = 0; i < fmt->n; i++) {
        char num[32];
        if (fmt->s[i] != '%' || i + 1 >= fmt->n) {
            tpl_put(c, &b, fmt->s + i, 1);
            continue;
        }
        char k = fmt->s[++i];
        switch (k) { /* the fields @huggingface/jinja writes; others as they are */
        case 'Y': snprintf(num, sizeof num, "%d", tm.tm_year + 1900); break;
        case 'm': snprintf(num, sizeof num, "%02d", tm.tm_mon + 1); break;
        case 'd': snprintf(num, sizeof num, "%02d", tm.tm_mday); break;
        case 'b': snprintf(num, sizeof num, "%s", mon_s[tm.tm_mon]); break;
        case 'B': snprintf(num, sizeof num, "%s", mon_l[tm.tm_mon]); break;
        case 'H': snprintf(num, sizeof num, "%02d", tm.tm_hour); break;
        case 'M': snprintf(num, sizeof num, "%02d", tm.tm_min); break;
        case '%': snprintf(num, sizeof num, "%%"); break;
        default: snprintf(num, sizeof num, "%%%c", k); break;
        }
        tpl_put(c, &b, num, strlen(num));
    }
    return tpl_buf_str(c, &b);
}

jv tpl_call_global(tpl_run *r, int fn, const jv *args, int nargs, jstr **kwn, const jv *kwv, int nkw, int line) {
    tpl_ctx *c = r->c;
    switch (fn) {
    case FN_RAISE: {
        jstr *m = nargs ? tpl_to_str(c, args[0]) : tpl_cstr(c, "raise_exception()");
        tpl_fail(c, HAI_ERR_INVALID, line, "the template refused: %s", m->s);
    }
    case FN_NAMESPACE: case FN_DICT: {
        jobj *o = tpl_obj(c, (size_t)nkw + 1);
        if (nargs >= 1 && args[0].t == V_OBJ)
            for (size_t i = 0; i < args[0].o->n; i++) tpl_obj_set(c, o, args[0].o->k[i], args[0].o->v[i]);
        for (int i = 0; i < nkw; i++) tpl_obj_set(c, o, kwn[i], kwv[i]);
        return (jv){.t = fn == FN_NAMESPACE ? V_NS : V_OBJ, .o = o};
    }
    case FN_RANGE: {
        for (int i = 0; i < nargs; i++)
            if (args[i].t != V_INT) tpl_fail(c, HAI_ERR_INVALID, line, "range() takes integers");
        if (nargs < 1 || nargs > 3) tpl_fail(c, HAI_ERR_INVALID, line, "range() takes 1 to 3 integers");
        int64_t start = nargs >= 2 ? args[0].i : 0, stop = nargs >= 2 ? args[1].i : args[0].i, st = nargs == 3 ? args[2].i : 1;
        if (st == 0) tpl_fail(c, HAI_ERR_INVALID, line, "range() step must not be zero");
        jarr *a = tpl_arr(c, 8);
        for (int64_t i = start; st > 0 ? i < stop : i > stop;) {
            if (a->n >= 1000000) tpl_fail(c, HAI_ERR_LIMIT, line, "range() of more than a million items");
            tpl_arr_push(c, a, jv_int(i));
            if (__builtin_add_overflow(i, st, &i)) break;
        }
        return (jv){.t = V_ARR, .a = a};
    }
    case FN_STRFTIME:
        if (nargs < 1 || args[0].t != V_STR) tpl_fail(c, HAI_ERR_INVALID, line, "strftime_now() takes a format string");
        return jv_str(strftime_str(c, args[0].s));
    default: tpl_fail(c, HAI_ERR_INTERNAL, line, "unknown function");
    }
}
