/* Personal-data detection and redaction (see privacy.h). Patterns find candidates; checksums
 * (Luhn, the Chinese ID check digit) keep ordinary numbers from being taken for cards and IDs. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "privacy.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/text.h"
#include "base/unicode.h"

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

/* ---- candidates' checks -------------------------------------------------------------------- */

/* The digits of t[a, b) into d (at most cap kept); returns how many there are. */
static size_t digits_of(const char *t, size_t a, size_t b, char *d, size_t cap) {
    size_t nd = 0;
    for (size_t i = a; i < b; i++)
        if (isdigit((unsigned char)t[i])) {
            if (nd < cap) d[nd] = t[i];
            nd++;
        }
    return nd;
}

static bool accept_cn_id(const char *t, size_t len, size_t *a, size_t *b) {
    (void)len;
    return *b - *a == 18 && pii_cn_id_ok(t + *a);
}

/* ISO/IEC 7812 card numbers: 13 to 19 digits with a Luhn check digit. */
static bool accept_card(const char *t, size_t len, size_t *a, size_t *b) {
    (void)len;
    char d[32];
    size_t nd = digits_of(t, *a, *b, d, sizeof d);
    return nd >= 13 && nd <= 19 && pii_luhn_ok(d, nd);
}

/* E.164: at most 15 digits after the international prefix (+ or 00), at least 7 to be a number. */
static bool accept_phone(const char *t, size_t len, size_t *a, size_t *b) {
    (void)len;
    size_t nd = digits_of(t, *a, *b, NULL, 0), prefix = t[*a] == '0' ? 2 : 0;
    return nd - prefix >= 7 && nd - prefix <= 15;
}

/* National numbers with a trunk 0 (020 7946 0958, 06 12 34 56 78, 030 12345678): 9 to 12 digits,
 * one kind of separator (so "05-06-2024 10" is a date and an hour, not a number). */
static bool accept_phone_national(const char *t, size_t len, size_t *a, size_t *b) {
    (void)len;
    size_t nd = digits_of(t, *a, *b, NULL, 0);
    char sep = 0;
    for (size_t i = *a; i < *b; i++) {
        char c = t[i];
        if (c != ' ' && c != '-' && c != '.') continue;
        if (sep && c != sep) return false;
        sep = c;
    }
    return nd >= 9 && nd <= 12;
}

/* A PEM private key: the pattern finds its BEGIN line; the key runs to its END line, or to the end
 * of the text when that is missing (a key cut short is still a key). A plain search, not a lazy
 * regex repeat: those need stack in proportion to the key's length. */
static bool extend_pem(const char *t, size_t len, size_t *a, size_t *b) {
    (void)a;
    for (const char *p = t + *b, *e = t + len; p < e; p++) {
        p = memmem(p, (size_t)(e - p), "-----END ", 9);
        if (!p) break;
        const char *k = p + 9;
        while (k < e && k - p < 64 && ((*k >= 'A' && *k <= 'Z') || *k == ' ')) k++;
        if ((size_t)(e - k) >= 16 && !memcmp(k, "PRIVATE KEY-----", 16)) {
            *b = (size_t)(k + 16 - t);
            return true;
        }
    }
    *b = len;
    return true;
}

/* An IPv6 candidate (hex digits, colons, dots) is an address when inet_pton says so, after
 * trailing punctuation is dropped ("at fe80::1: no route"), and when it looks like one: three
 * groups or more, a group of three digits or more, or an IPv4 tail (so "a::b" in C++ is not). */
static bool accept_ipv6(const char *t, size_t len, size_t *a, size_t *b) {
    (void)len;
    char buf[64];
    while (*b > *a && (t[*b - 1] == ':' || t[*b - 1] == '.') && !(*b - *a >= 2 && t[*b - 1] == ':' && t[*b - 2] == ':')) (*b)--;
    size_t n = *b - *a, colons = 0;
    if (n < 3 || n >= sizeof buf) return false;
    memcpy(buf, t + *a, n);
    buf[n] = '\0';
    size_t run = 0, longest = 0;
    for (size_t i = 0; i < n; i++) {
        colons += buf[i] == ':';
        run = buf[i] == ':' ? 0 : run + 1;
        if (run > longest) longest = run;
    }
    unsigned char addr[16];
    return colons >= 2 && (colons >= 3 || longest >= 3 || strchr(buf, '.')) && inet_pton(AF_INET6, buf, addr) == 1;
}

/* Built-in patterns, by class. The order is also the priority of a placeholder's name when
 * detections overlap. Every repeat is bounded or possessive, and the one that could grow with a
 * hostile text (the PEM body) is a plain search instead: no pattern needs stack or time that
 * depends on the text's length. */
static const struct detector {
    pii_class cls;
    const char *re;
    bool (*accept)(const char *t, size_t len, size_t *a, size_t *b); /* may move the span; NULL: as found */
} builtin[] = {
    /* secrets first: an API key may contain digit runs that look like cards */
    {PII_SECRET, "-----BEGIN [A-Z ]{0,40}PRIVATE KEY-----", extend_pem},
    {PII_SECRET, "\\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,}+", NULL},
    {PII_SECRET, "\\bAKIA[0-9A-Z]{16}\\b", NULL},
    {PII_SECRET, "\\bgh[pousr]_[A-Za-z0-9]{30,}+", NULL},
    {PII_SECRET, "\\bxox[abprs]-[A-Za-z0-9-]{10,}+", NULL},
    {PII_SECRET, "\\bAIza[0-9A-Za-z_-]{35}", NULL},
    {PII_SECRET, "\\beyJ[A-Za-z0-9_-]{8,}+\\.[A-Za-z0-9_-]{8,}+\\.[A-Za-z0-9_-]{8,}+", NULL},
    {PII_SECRET, "(?i)\\b(?:api[_ -]?key|secret(?:[_ -]?key)?|access[_ -]?token|auth[_ -]?token|password|passwd|pwd)"
                 "\\s{0,16}+(?:is|[:=])\\s{0,16}+[\"']?[^\\s\"']{6,}+", NULL},
    /* Chinese resident ID (GB 11643): 6 area digits, a birth date, 3 digits, a check digit */
    {PII_CN_ID, "(?<![0-9])[1-9][0-9]{5}(?:18|19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9Xx](?![0-9A-Za-z])",
     accept_cn_id},
    /* bank cards: 13-19 digits, optionally grouped by spaces or dashes */
    {PII_BANK_CARD, "(?<![0-9])[0-9](?:[ -]?[0-9]){12,18}(?![0-9])", accept_card},
    /* Chinese mobile numbers (with or without +86 / 0086) */
    {PII_PHONE, "(?<![0-9+])(?:(?:\\+|00)?86[ -]?)?1[3-9][0-9](?:[ -]?[0-9]{4}){2}(?![0-9])", NULL},
    /* international (E.123): +CC or 00CC, then groups, optionally in parentheses ("+44 (0)20 ...") */
    {PII_PHONE, "(?<![0-9A-Za-z+])(?:\\+|00)[1-9][0-9]{0,2}+(?:[ .-]?+\\(?+[0-9]{1,4}+\\)?+){2,6}+(?![0-9])", accept_phone},
    /* North American: (555) 123-4567, 555-123-4567, 555.123.4567, 555 123 4567, 1-555-123-4567 */
    {PII_PHONE, "(?<![0-9])(?:1[ .-])?(?:\\([0-9]{3}\\) ?|[0-9]{3}[ .-])[0-9]{3}[ .-][0-9]{4}(?![0-9])", NULL},
    /* national formats with a trunk prefix 0 */
    {PII_PHONE, "(?<![0-9])(?:\\(0[1-9][0-9]{0,4}+\\)|0[1-9][0-9]{0,4}+)(?:[ .-]?+[0-9]{2,4}+){1,4}+(?![0-9])", accept_phone_national},
    {PII_IP, "(?<![0-9.])(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|0?[1-9]?[0-9]|00[0-9])\\.){3}"
             "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|0?[1-9]?[0-9]|00[0-9])(?![0-9]|\\.[0-9])", NULL},
    /* IPv6 in every RFC 4291 form (compressed, embedded IPv4), checked by inet_pton */
    {PII_IP, "(?i)(?<![0-9a-z:.])(?=[0-9a-f.]{0,4}:)[0-9a-f:.]{2,45}+(?![0-9a-z])", accept_ipv6},
};
#define N_BUILTIN (sizeof builtin / sizeof builtin[0])

/* How much work one pcre2_match call of a custom pattern may do before the scan is declared
 * incomplete (a backtracking pattern on a hostile text), and the JIT stack for it. The built-in
 * patterns stay far below both on any text. */
#define MATCH_LIMIT 2000000u
#define DEPTH_LIMIT 20000u
#define JIT_STACK_MAX (1u << 20)

struct pii_scanner {
    pcre2_code *re[N_BUILTIN];
    pcre2_code **custom;
    char **custom_src;
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
    s->custom_src = calloc(n_patterns + 1, sizeof *s->custom_src);
    s->keywords = calloc(n_keywords + 1, sizeof *s->keywords);
    if (!s->custom || !s->custom_src || !s->keywords) goto nomem;
    for (size_t i = 0; i < n_patterns; i++) {
        if (!(s->custom_src[i] = strdup(patterns[i]))) goto nomem;
        s->n_custom = i + 1;
        if (!(s->custom[i] = compile(patterns[i], err))) goto fail;
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
    for (size_t i = 0; i < s->n_custom; i++) {
        pcre2_code_free(s->custom[i]);
        free(s->custom_src[i]);
    }
    for (size_t i = 0; i < s->n_keywords; i++) free(s->keywords[i]);
    free(s->custom);
    free(s->custom_src);
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

/* ---- the scan ------------------------------------------------------------------------------------ */

typedef struct scan {
    const char *text;
    size_t len;
    pii_span *v; /* raw detections */
    size_t n, cap;
    pii_scan_result *out;
} scan;

static void incomplete(scan *sc, const char *fmt, ...) HAI_PRINTF(2, 3);
static void incomplete(scan *sc, const char *fmt, ...) {
    if (sc->out->incomplete) return; /* the first reason is the one reported */
    sc->out->incomplete = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sc->out->why, sizeof sc->out->why, fmt, ap);
    va_end(ap);
}

static void add_span(scan *sc, pii_class c, size_t a, size_t b) {
    if (sc->n == sc->cap) {
        size_t cap = sc->cap ? 2 * sc->cap : 16;
        pii_span *v = realloc(sc->v, cap * sizeof *v);
        if (!v) { /* a detection that cannot be recorded is still a detection */
            incomplete(sc, "out of memory recording personal data");
            return;
        }
        sc->v = v;
        sc->cap = cap;
    }
    sc->v[sc->n++] = (pii_span){c, 1u << c, a, b};
}

static void find_all(scan *sc, const pcre2_code *re, pii_class cls, bool (*accept)(const char *, size_t, size_t *, size_t *),
                     const char *what, pcre2_match_data *md, pcre2_match_context *mc) {
    size_t pos = 0;
    while (pos <= sc->len) {
        int rc = pcre2_match(re, (PCRE2_SPTR)sc->text, sc->len, pos, 0, md, mc);
        if (rc == PCRE2_ERROR_NOMATCH) return;
        if (rc < 0) { /* the detector could not finish: what it did not see may be personal */
            PCRE2_UCHAR msg[120];
            pcre2_get_error_message(rc, msg, sizeof msg);
            incomplete(sc, "the %s detector '%.40s' stopped at byte %zu of %zu: %s", pii_class_name(cls), what, pos, sc->len, (char *)msg);
            return;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t a = ov[0], b = ov[1];
        if (b == a) {
            pos = a + 1;
            continue;
        }
        if (!accept || accept(sc->text, sc->len, &a, &b)) add_span(sc, cls, a, b);
        pos = ov[1] > b ? ov[1] : b;
    }
}

/* ---- e-mail addresses ---------------------------------------------------------------------------
 * Found from each '@' outwards rather than by a pattern: the local part and the domain are each
 * walked once, so the cost is linear in the text whatever it holds. The syntax is RFC 5322's
 * (every atext character in the local part: O'Brien, a+b, x=y; a quoted local part; a domain
 * literal) with RFC 6531's UTF-8 (josé@, 用户@例子.中国). A run of ideographs directly before an
 * ASCII address ("发邮件到john@example.com") is text, not part of the address. */

typedef enum { CH_NONE, CH_ALPHA, CH_CJK } ch_kind;

static ch_kind cp_kind(uint32_t cp) {
    if (cp < 0x80) return isalnum((int)cp) ? CH_ALPHA : CH_NONE;
    if ((cp >= 0x1100 && cp <= 0x11FF) || (cp >= 0x2E80 && cp <= 0x2FDF) || (cp >= 0x3040 && cp <= 0x31FF) ||
        (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0xA960 && cp <= 0xA97F) ||
        (cp >= 0xAC00 && cp <= 0xD7FF) || (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0xFF66 && cp <= 0xFFDC) ||
        (cp >= 0x20000 && cp <= 0x3FFFF))
        return CH_CJK;
    /* punctuation, spaces and symbols of the other blocks */
    if ((cp <= 0xBF && cp != 0xAA && cp != 0xB5 && cp != 0xBA) || cp == 0xD7 || cp == 0xF7 || (cp >= 0x2000 && cp <= 0x2BFF) ||
        (cp >= 0x3000 && cp <= 0x303F) || (cp >= 0xD800 && cp <= 0xF8FF) || (cp >= 0xFE30 && cp <= 0xFE4F) ||
        (cp >= 0xFF00 && cp <= 0xFF0F) || (cp >= 0xFF1A && cp <= 0xFF20) || (cp >= 0xFF3B && cp <= 0xFF40) ||
        (cp >= 0xFF5B && cp <= 0xFF65) || cp >= 0xFFF0)
        return cp >= 0x20000 && cp <= 0x3FFFF ? CH_CJK : CH_NONE;
    if (cp >= 0x1F000) return CH_NONE; /* emoji and other symbols */
    return CH_ALPHA;
}

static bool local_sym(unsigned char c) { return c && strchr("!#$%&'*+/=?^_`{|}~-.", c) != NULL; }

/* The code point ending just before t[i] (UTF-8 read backwards); its length, 0 when not valid. */
static int prev_cp(const char *t, size_t i, uint32_t *cp) {
    size_t k = i;
    while (k > 0 && i - k < 4 && ((unsigned char)t[k - 1] & 0xC0) == 0x80) k--;
    if (k == 0) return 0;
    k--;
    int l = hai_utf8_valid_len((const unsigned char *)t + k, i - k, cp);
    return l == (int)(i - k) ? l : 0;
}

/* One character of a local part or label at t[i]: its kind and length; kind CH_NONE stops. */
static ch_kind next_char(const char *t, size_t len, size_t i, bool local, int *l) {
    unsigned char c = (unsigned char)t[i];
    *l = 1;
    if (c < 0x80) return isalnum(c) || (local ? local_sym(c) : c == '-') ? CH_ALPHA : CH_NONE;
    uint32_t cp;
    if (!(*l = hai_utf8_valid_len((const unsigned char *)t + i, len - i, &cp))) return *l = 1, CH_NONE;
    return cp_kind(cp);
}

/* Start of the local part that ends at '@' (t[at]); at itself when there is none. */
static size_t local_start(const char *t, size_t at) {
    if (at > 1 && t[at - 1] == '"') { /* a quoted local part: "john doe"@example.org */
        for (size_t k = at - 1; k-- > 0 && at - k < 130;) {
            if (t[k] == '\r' || t[k] == '\n') break;
            if (t[k] == '"' && (k == 0 || t[k - 1] != '\\')) return k + 2 < at ? k : at;
        }
    }
    size_t a = at;
    ch_kind run = CH_NONE;
    while (a > 0) {
        unsigned char c = (unsigned char)t[a - 1];
        uint32_t cp = c;
        int l = c < 0x80 ? 1 : prev_cp(t, a, &cp);
        ch_kind k = !l ? CH_NONE : c < 0x80 ? (isalnum(c) || local_sym(c) ? CH_ALPHA : CH_NONE) : cp_kind(cp);
        if (k == CH_NONE || (run != CH_NONE && k != run)) break;
        run = k;
        a -= (size_t)l;
    }
    /* a dot-atom has no two dots in a row: "then...bob@" starts at bob */
    for (size_t k = at; k > a + 1; k--)
        if (t[k - 1] == '.' && t[k - 2] == '.') {
            a = k;
            break;
        }
    while (a < at && t[a] == '.') a++;
    return a;
}

/* A top-level domain: letters (2 or more), an IDN in punycode, or letters of another script. */
static bool tld_ok(const char *s, size_t n) {
    if (n >= 5 && !strncasecmp(s, "xn--", 4)) return true;
    if (n < 2) return false;
    for (size_t i = 0; i < n; i++)
        if (!((unsigned char)s[i] >= 0x80 || isalpha((unsigned char)s[i]))) return false;
    return true;
}

/* End of the domain that starts at t[i] (after '@'); i when there is none. */
static size_t domain_end(const char *t, size_t len, size_t i) {
    if (i < len && t[i] == '[') { /* a domain literal: [192.0.2.1] or [IPv6:2001:db8::1] */
        for (size_t k = i + 1; k < len && k - i < 64; k++) {
            if (t[k] == ']') return k > i + 1 ? k + 1 : i;
            if (!(isxdigit((unsigned char)t[k]) || t[k] == ':' || t[k] == '.' || (k - i <= 5 && strchr("IPvV6", t[k]))))
                return i;
        }
        return i;
    }
    size_t end = i, p = i;
    int labels = 0;
    while (p < len) {
        size_t q = p;
        ch_kind run = CH_NONE;
        while (p < len) {
            int l;
            ch_kind k = next_char(t, len, p, false, &l);
            if (k == CH_NONE || (run != CH_NONE && k != run)) break;
            run = k;
            p += (size_t)l;
        }
        size_t e = p;
        while (e > q && t[e - 1] == '-') e--; /* "example.com-" ends at "com" */
        if (e == q) break;
        labels++;
        if (labels >= 2 && tld_ok(t + q, e - q)) end = e;
        if (e < p || p >= len || t[p] != '.') break;
        p++;
    }
    return end;
}

static void find_emails(scan *sc) {
    const char *t = sc->text;
    for (const char *p = memchr(t, '@', sc->len); p; p = memchr(p + 1, '@', sc->len - (size_t)(p + 1 - t))) {
        size_t at = (size_t)(p - t), a = local_start(t, at), b = domain_end(t, sc->len, at + 1);
        if (a < at && b > at + 1) add_span(sc, PII_EMAIL, a, b);
        if (p + 1 >= t + sc->len) break;
    }
}

/* ---- keywords ------------------------------------------------------------------------------------ */

static void find_keywords(scan *sc, const pii_scanner *s) {
    for (size_t k = 0; k < s->n_keywords; k++) { /* case-insensitive literal keywords */
        size_t kl = strlen(s->keywords[k]);
        for (size_t i = 0; kl && i + kl <= sc->len; i++)
            if (!strncasecmp(sc->text + i, s->keywords[k], kl)) {
                add_span(sc, PII_CUSTOM, i, i + kl);
                i += kl - 1;
            }
    }
}

static int by_start(const void *x, const void *y) {
    const pii_span *a = x, *b = y;
    if (a->start != b->start) return a->start < b->start ? -1 : 1;
    if (a->end != b->end) return a->end > b->end ? -1 : 1; /* longer first */
    return (int)a->cls - (int)b->cls;
}

/* Overlapping detections become one span covering all of them: every byte some detector took for
 * personal data is redacted (an address inside a URL inside a secret, an IPv4 tail of an IPv6
 * address), and the span remembers every class it holds for the policy. The counts are of the
 * merged spans: one phone number two patterns both found is one phone number. */
static void merge(scan *sc) {
    pii_scan_result *r = sc->out;
    if (sc->n) qsort(sc->v, sc->n, sizeof *sc->v, by_start);
    size_t w = 0;
    for (size_t i = 0; i < sc->n; i++) {
        if (w && sc->v[i].start < sc->v[w - 1].end) {
            pii_span *m = &sc->v[w - 1];
            if (sc->v[i].end > m->end) m->end = sc->v[i].end;
            m->classes |= sc->v[i].classes;
        } else {
            sc->v[w++] = sc->v[i];
        }
    }
    r->spans = sc->v;
    r->n = w;
    for (size_t i = 0; i < w; i++)
        for (int c = 0; c < PII_COUNT; c++)
            if (sc->v[i].classes >> c & 1u) r->count[c]++;
}

void pii_scan(const pii_scanner *s, const char *text, size_t len, pii_scan_result *out) {
    memset(out, 0, sizeof *out);
    scan sc = {.text = text, .len = len, .out = out};
    pcre2_match_data *md = pcre2_match_data_create(4, NULL);
    pcre2_match_context *mc = pcre2_match_context_create(NULL);
    pcre2_jit_stack *js = pcre2_jit_stack_create(32 * 1024, JIT_STACK_MAX, NULL);
    if (!md || !mc || !js) {
        incomplete(&sc, "out of memory starting the scan");
    } else {
        pcre2_jit_stack_assign(mc, NULL, js);
        pcre2_set_match_limit(mc, MATCH_LIMIT);
        pcre2_set_depth_limit(mc, DEPTH_LIMIT);
        for (size_t i = 0; i < N_BUILTIN; i++) find_all(&sc, s->re[i], builtin[i].cls, builtin[i].accept, builtin[i].re, md, mc);
        for (size_t i = 0; i < s->n_custom; i++) find_all(&sc, s->custom[i], PII_CUSTOM, NULL, s->custom_src[i], md, mc);
    }
    pcre2_jit_stack_free(js);
    pcre2_match_context_free(mc);
    pcre2_match_data_free(md);
    find_emails(&sc);
    find_keywords(&sc, s);
    merge(&sc);
}

void pii_scan_result_free(pii_scan_result *r) {
    if (!r) return;
    free(r->spans);
    r->spans = NULL;
    r->n = 0;
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
        bool redact = false;
        uint32_t classes = s->classes ? s->classes : 1u << s->cls;
        for (int c = 0; c < PII_COUNT; c++) redact |= (classes >> c & 1u) && actions[c] != PII_ALLOW;
        if (!redact) continue;
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
    hai_text out = {0};
    text_put(&out, "", 0); /* "" for an empty text, not NULL */
    size_t from = 0; /* text[from, i) is copied as it is when a placeholder or the end comes */
    for (size_t i = 0; i < len; i++) {
        if (text[i] != '[') continue;
        for (size_t k = 0; k < map->n; k++) {
            size_t pl = strlen(map->e[k].placeholder);
            if (i + pl <= len && !memcmp(text + i, map->e[k].placeholder, pl)) {
                text_put(&out, text + from, i - from);
                text_puts(&out, map->e[k].value);
                i += pl - 1;
                from = i + 1;
                break;
            }
        }
    }
    text_put(&out, text + from, len - from);
    size_t n = out.n;
    char *s = text_take(&out);
    if (s && out_len) *out_len = n;
    return s;
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
