#include "text.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room for n more bytes and the NUL. */
static bool reserve(hai_text *t, size_t n) {
    if (t->oom) return false;
    if (t->cap - t->n > n) return true;
    if (n > SIZE_MAX / 4 - t->n) return t->oom = true, false;
    size_t cap = t->cap ? t->cap : 64;
    while (cap - t->n <= n) cap *= 2;
    char *p = realloc(t->p, cap);
    if (!p) return t->oom = true, false;
    t->p = p;
    t->cap = cap;
    return true;
}

bool text_put(hai_text *t, const void *s, size_t n) {
    if (!reserve(t, n)) return false;
    if (n) memcpy(t->p + t->n, s, n);
    t->n += n;
    t->p[t->n] = '\0';
    return true;
}

bool text_puts(hai_text *t, const char *s) { return text_put(t, s, strlen(s)); }

bool text_printf(hai_text *t, const char *fmt, ...) {
    if (t->oom || !reserve(t, 0)) return false;
    /* into the room there is; formatted a second time only when it did not fit */
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(t->p + t->n, t->cap - t->n, fmt, ap);
    va_end(ap);
    if (k < 0) {
        t->p[t->n] = '\0';
        return false;
    }
    if ((size_t)k >= t->cap - t->n) {
        if (!reserve(t, (size_t)k)) {
            t->p[t->n] = '\0';
            return false;
        }
        va_start(ap, fmt);
        vsnprintf(t->p + t->n, t->cap - t->n, fmt, ap);
        va_end(ap);
    }
    t->n += (size_t)k;
    return true;
}

char *text_take(hai_text *t) {
    if (t->oom || (!t->p && !reserve(t, 0))) {
        text_free(t);
        return NULL;
    }
    if (!t->n) t->p[0] = '\0';
    char *p = t->p;
    *t = (hai_text){0};
    return p;
}

void text_free(hai_text *t) {
    free(t->p);
    *t = (hai_text){0};
}
