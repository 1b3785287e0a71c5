/* Personal-data detection and redaction (see privacy.h). Patterns find candidates; checksums
 * (Luhn, the Chinese ID check digit) keep ordinary numbers from being taken for cards and IDs. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "privacy.h"

#include <ctype.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../error.h"

static const char *const class_names[PII_COUNT] = {"email", "phone", "cn_id", "bank_card", "ip", "secret", "custom"};
static const char *const action_names[3] = {"keep_local", "redact", "allow"};

const char *pii_class_name(pii_class c) { return (unsigned)c < PII_COUNT ? class_names[c] : "?"; }
const char *pii_action_name(pii_action a) { return (unsigned)a < 3 ? action_names[a] : "?"; }
int pii_class_from_name(const char *n) {
    for (int i = 0; i < PII_COUNT; i++)
        if (!strcmp(n, class_names[i])) return i;
    return -1;
}
int pii_action_from_name(const char *n) {
    for (int i = 0; i < 3; i++)
        if (!strcmp(n, action_names[i])) return i;
    return -1;
}

/* Built-in patterns, by class. The order of classes is also the priority when spans overlap. */
static const struct {
    pii_class cls;
    const char *re;
} builtin[] = {
    /* secrets first: an API key may contain digit runs that look like cards */
    {PII_SECRET, "-----BEGIN [A-Z ]*PRIVATE KEY-----[\\s\\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)"},
    {PII_SECRET, "\\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,}"},
    {PII_SECRET, "\\bAKIA[0-9A-Z]{16}\\b"},
    {PII_SECRET, "\\bgh[pousr]_[A-Za-z0-9]{30,}"},
    {PII_SECRET, "\\bxox[abprs]-[A-Za-z0-9-]{10,}"},
    {PII_SECRET, "\\bAIza[0-9A-Za-z_-]{35}"},
    {PII_SECRET, "\\beyJ[A-Za-z0-9_-]{8,}\\.[A-Za-z0-9_-]{8,}\\.[A-Za-z0-9_-]{8,}"},
    {PII_SECRET, "(?i)\\b(?:api[_ -]?key|secret(?:[_ -]?key)?|access[_ -]?token|auth[_ -]?token|password|passwd|pwd)"
                 "\\s*(?:is|[:=])\\s*[\"']?[^\\s\"']{6,}"},
    /* Chinese resident ID: 6 area digits, a birth date, 3 digits, a check digit (verified below) */
    {PII_CN_ID, "(?<![0-9])[1-9][0-9]{5}(?:18|19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9Xx](?![0-9A-Za-z])"},
    /* bank cards: 13-19 digits, optionally grouped by spaces or dashes (Luhn verified below) */
    {PII_BANK_CARD, "(?<![0-9])[0-9](?:[ -]?[0-9]){12,18}(?![0-9])"},
    {PII_EMAIL, "(?i)(?<![a-z0-9._%+-])[a-z0-9._%+-]+@[a-z0-9-]+(?:\\.[a-z0-9-]+)*\\.[a-z]{2,24}(?![a-z0-9-])"},
    /* Chinese mobile numbers (with or without +86) */
    {PII_PHONE, "(?<![0-9+])(?:\\+?86[ -]?)?1[3-9][0-9](?:[ -]?[0-9]{4}){2}(?![0-9])"},
    /* international: +CC then 6..14 more digits in groups */
    {PII_PHONE, "(?<![0-9A-Za-z])\\+[1-9][0-9]{0,2}(?:[ .-]?\\(?[0-9]{1,4}\\)?){2,5}(?![0-9])"},
    /* North American style (555) 123-4567 / 555-123-4567 / 555.123.4567 */
    {PII_PHONE, "(?<![0-9])(?:\\([0-9]{3}\\)\\s?|[0-9]{3}[.-])[0-9]{3}[.-][0-9]{4}(?![0-9])"},
    {PII_IP, "(?<![0-9.])(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(?![0-9]|\\.[0-9])"},
    {PII_IP, "(?i)(?<![0-9a-f:])(?:(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}|(?:[0-9a-f]{1,4}:){1,7}:(?:[0-9a-f]{1,4}(?::[0-9a-f]{1,4}){0,6})?|::(?:[0-9a-f]{1,4}(?::[0-9a-f]{1,4}){0,6}))(?![0-9a-f:])"},
};
#define N_BUILTIN (sizeof builtin / sizeof builtin[0])

struct pii_scanner {
    pcre2_code *re[N_BUILTIN];
    pcre2_code **custom;
    size_t n_custom;
    char **keywords;
    size_t n_keywords;
};

static pcre2_code *compile(const char *pattern, hai_error *err) {
    int code;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF,
                                   &code, &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[200];
        pcre2_get_error_message(code, msg, sizeof msg);
        hai_fail(err, HAI_ERR_INVALID, "privacy: pattern '%.80s': %s at offset %zu", pattern, (char *)msg, (size_t)off);
        return NULL;
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    return re;
}

hai_status pii_scanner_create(const char *const *patterns, size_t n_patterns, const char *const *keywords, size_t n_keywords,
                              pii_scanner **out, hai_error *err) {
    *out = NULL;
    pii_scanner *s = calloc(1, sizeof *s);
    if (!s) return hai_fail(err, HAI_ERR_NOMEM, "privacy: out of memory");
    for (size_t i = 0; i < N_BUILTIN; i++)
        if (!(s->re[i] = compile(builtin[i].re, err))) goto fail;
    s->custom = calloc(n_patterns + 1, sizeof *s->custom);
    s->keywords = calloc(n_keywords + 1, sizeof *s->keywords);
    if (!s->custom || !s->keywords) goto nomem;
    for (size_t i = 0; i < n_patterns; i++) {
        if (!(s->custom[i] = compile(patterns[i], err))) goto fail;
        s->n_custom = i + 1;
    }
    for (size_t i = 0; i < n_keywords; i++) {
        if (!keywords[i][0]) continue;
        if (!(s->keywords[s->n_keywords] = strdup(keywords[i]))) goto nomem;
        s->n_keywords++;
    }
    *out = s;
    return HAI_OK;
nomem:
    hai_fail(err, HAI_ERR_NOMEM, "privacy: out of memory");
fail:
    pii_scanner_free(s);
    return err ? err->status : HAI_ERR_INVALID;
}

void pii_scanner_free(pii_scanner *s) {
    if (!s) return;
    for (size_t i = 0; i < N_BUILTIN; i++) pcre2_code_free(s->re[i]);
    for (size_t i = 0; i < s->n_custom; i++) pcre2_code_free(s->custom[i]);
    for (size_t i = 0; i < s->n_keywords; i++) free(s->keywords[i]);
    free(s->custom);
    free(s->keywords);
    free(s);
}

bool pii_luhn_ok(const char *d, size_t n) {
    int sum = 0;
    for (size_t i = 0; i < n; i++) {
        int v = d[n - 1 - i] - '0';
        if (i % 2) {
            v *= 2;
            if (v > 9) v -= 9;
        }
        sum += v;
    }
    return n > 0 && sum % 10 == 0;
}

bool pii_cn_id_ok(const char *id) {
    static const int w[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
    static const char check[] = "10X98765432";
    int sum = 0;
    for (int i = 0; i < 17; i++) {
        if (!isdigit((unsigned char)id[i])) return false;
        sum += (id[i] - '0') * w[i];
    }
    return toupper((unsigned char)id[17]) == check[sum % 11];
}

/* Extra checks on a candidate: checksums for IDs and cards, digit counts for phones. */
static bool accept(pii_class cls, const char *t, size_t a, size_t b) {
    char digits[32];
    size_t nd = 0;
    if (cls == PII_CN_ID) return b - a == 18 && pii_cn_id_ok(t + a);
    if (cls == PII_BANK_CARD || cls == PII_PHONE) {
        for (size_t i = a; i < b; i++)
            if (isdigit((unsigned char)t[i])) {
                if (nd < sizeof digits) digits[nd] = t[i];
                nd++;
            }
        if (cls == PII_BANK_CARD) return nd >= 13 && nd <= 19 && pii_luhn_ok(digits, nd);
        return nd >= 7 && nd <= 15;
    }
    return true;
}

typedef struct spans {
    pii_span *v;
    size_t n, cap;
} spans;

static void add_span(spans *s, pii_class c, size_t a, size_t b) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 16;
        pii_span *v = realloc(s->v, cap * sizeof *v);
        if (!v) return;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = (pii_span){c, a, b};
}

static void find_all(const pcre2_code *re, pii_class cls, const char *text, size_t len, pcre2_match_data *md, spans *out) {
    size_t pos = 0;
    while (pos <= len) {
        int rc = pcre2_match(re, (PCRE2_SPTR)text, len, pos, 0, md, NULL);
        if (rc < 0) break;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t a = ov[0], b = ov[1];
        if (b == a) {
            pos = a + 1;
            continue;
        }
        if (accept(cls, text, a, b)) add_span(out, cls, a, b);
        pos = b;
    }
}

static int by_start(const void *x, const void *y) {
    const pii_span *a = x, *b = y;
    if (a->start != b->start) return a->start < b->start ? -1 : 1;
    if (a->end != b->end) return a->end > b->end ? -1 : 1; /* longer first */
    return (int)a->cls - (int)b->cls;
}

void pii_scan(const pii_scanner *s, const char *text, size_t len, pii_span *out, size_t cap, size_t *n) {
    spans all = {0};
    pcre2_match_data *md = pcre2_match_data_create(4, NULL);
    for (size_t i = 0; md && i < N_BUILTIN; i++) find_all(s->re[i], builtin[i].cls, text, len, md, &all);
    for (size_t i = 0; md && i < s->n_custom; i++) find_all(s->custom[i], PII_CUSTOM, text, len, md, &all);
    pcre2_match_data_free(md);
    for (size_t k = 0; k < s->n_keywords; k++) { /* case-insensitive literal keywords */
        size_t kl = strlen(s->keywords[k]);
        for (size_t i = 0; kl && i + kl <= len; i++)
            if (!strncasecmp(text + i, s->keywords[k], kl)) {
                add_span(&all, PII_CUSTOM, i, i + kl);
                i += kl - 1;
            }
    }
    /* resolve overlaps: earliest start wins, then the longest, then the class order */
    if (all.n) qsort(all.v, all.n, sizeof *all.v, by_start);
    size_t count = 0, last_end = 0;
    for (size_t i = 0; i < all.n; i++) {
        if (count && all.v[i].start < last_end) continue;
        if (count < cap) out[count] = all.v[i];
        count++;
        last_end = all.v[i].end;
    }
    free(all.v);
    *n = count;
}

/* ---- redaction -------------------------------------------------------------------------------- */

static const char *map_find_value(const pii_map *m, const char *v, size_t n) {
    for (size_t i = 0; i < m->n; i++)
        if (strlen(m->e[i].value) == n && !memcmp(m->e[i].value, v, n)) return m->e[i].placeholder;
    return NULL;
}

/* A new placeholder never occurs in the text itself: a reply quoting the user's literal "[EMAIL_1]"
 * must not come back as someone's address. */
static const char *map_add(pii_map *m, pii_class cls, const char *v, size_t n, const char *text, size_t len) {
    const char *have = map_find_value(m, v, n);
    if (have) return have;
    if (m->n == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 8;
        void *e = realloc(m->e, cap * sizeof *m->e);
        if (!e) return NULL;
        m->e = e;
        m->cap = cap;
    }
    char ph[48], up[16];
    size_t k = 0;
    for (const char *c = pii_class_name(cls); *c && k < sizeof up - 1; c++) up[k++] = (char)toupper((unsigned char)*c);
    up[k] = '\0';
    do
        snprintf(ph, sizeof ph, "[%s_%d]", up, ++m->counter[cls]);
    while (memmem(text, len, ph, strlen(ph)) && m->counter[cls] < 1000000);
    char *val = malloc(n + 1), *p = strdup(ph);
    if (!val || !p) {
        free(val);
        free(p);
        return NULL;
    }
    memcpy(val, v, n);
    val[n] = '\0';
    m->e[m->n].placeholder = p;
    m->e[m->n].value = val;
    m->n++;
    return p;
}

char *pii_redact(const char *text, size_t len, const pii_span *spans_, size_t n, const pii_action *actions, pii_map *map) {
    size_t cap = len + 1 + n * 32, w = 0, pos = 0;
    char *out = malloc(cap);
    if (!out) return NULL;
    for (size_t i = 0; i < n; i++) {
        const pii_span *s = &spans_[i];
        if (actions[s->cls] != PII_REDACT) continue;
        memcpy(out + w, text + pos, s->start - pos);
        w += s->start - pos;
        const char *ph = map_add(map, s->cls, text + s->start, s->end - s->start, text, len);
        if (!ph) {
            free(out);
            return NULL;
        }
        size_t pl = strlen(ph);
        memcpy(out + w, ph, pl);
        w += pl;
        pos = s->end;
    }
    memcpy(out + w, text + pos, len - pos);
    w += len - pos;
    out[w] = '\0';
    return out;
}

char *pii_restore(const char *text, size_t len, const pii_map *map, size_t *out_len) {
    size_t cap = len + 1, w = 0;
    for (size_t i = 0; i < map->n; i++) cap += strlen(map->e[i].value) * 4; /* a placeholder may repeat */
    char *out = malloc(cap);
    if (!out) return NULL;
    for (size_t i = 0; i < len;) {
        bool hit = false;
        if (text[i] == '[') {
            for (size_t k = 0; k < map->n; k++) {
                size_t pl = strlen(map->e[k].placeholder);
                if (i + pl <= len && !memcmp(text + i, map->e[k].placeholder, pl)) {
                    size_t vl = strlen(map->e[k].value);
                    if (w + vl + (len - i) + 1 > cap) {
                        cap = (w + vl + (len - i) + 1) * 2;
                        char *o = realloc(out, cap);
                        if (!o) {
                            free(out);
                            return NULL;
                        }
                        out = o;
                    }
                    memcpy(out + w, map->e[k].value, vl);
                    w += vl;
                    i += pl;
                    hit = true;
                    break;
                }
            }
        }
        if (!hit) {
            if (w + 2 > cap) {
                char *o = realloc(out, cap *= 2);
                if (!o) {
                    free(out);
                    return NULL;
                }
                out = o;
            }
            out[w++] = text[i++];
        }
    }
    out[w] = '\0';
    if (out_len) *out_len = w;
    return out;
}

size_t pii_restore_holdback(const char *text, size_t len, const pii_map *map) {
    size_t best = 0;
    for (size_t k = 0; k < map->n; k++) {
        const char *ph = map->e[k].placeholder;
        size_t pl = strlen(ph);
        for (size_t t = pl - 1; t > best; t--) /* a proper prefix of the placeholder at the end */
            if (t <= len && !memcmp(text + len - t, ph, t)) {
                best = t;
                break;
            }
    }
    return best;
}

void pii_map_free(pii_map *m) {
    for (size_t i = 0; i < m->n; i++) {
        free(m->e[i].placeholder);
        free(m->e[i].value);
    }
    free(m->e);
    memset(m, 0, sizeof *m);
}
