/* On-device detection of personal data in text, and its redaction: e-mail addresses, phone
 * numbers (international, North American, Chinese mobile), Chinese resident ID numbers (checksum
 * verified), bank card numbers (Luhn verified), IP addresses, API keys and secrets, and
 * user-defined patterns and keywords. Pure: no I/O; the patterns are compiled once. */
#ifndef HAI_ROUTER_PRIVACY_H
#define HAI_ROUTER_PRIVACY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hai.h"

typedef enum pii_class {
    PII_EMAIL, PII_PHONE, PII_CN_ID, PII_BANK_CARD, PII_IP, PII_SECRET, PII_CUSTOM, PII_COUNT
} pii_class;

typedef enum pii_action { PII_KEEP_LOCAL = 0, PII_REDACT, PII_ALLOW } pii_action;

const char *pii_class_name(pii_class c);            /* "email", "phone", ... */
int pii_class_from_name(const char *name);          /* -1 when unknown */
const char *pii_action_name(pii_action a);          /* "keep_local", "redact", "allow" */
int pii_action_from_name(const char *name);

typedef struct pii_span {
    pii_class cls;     /* the class that names its placeholder (the detection that starts first) */
    uint32_t classes;  /* every class detected inside it (bit 1 << class): overlapping detections merge */
    size_t start, end; /* bytes [start, end) */
} pii_span;

typedef struct pii_scanner pii_scanner;

/* patterns / keywords: user-defined (class CUSTOM); may be NULL. A bad pattern is an error
 * naming it. */
hai_status pii_scanner_create(const char *const *patterns, size_t n_patterns, const char *const *keywords,
                              size_t n_keywords, pii_scanner **out, hai_error *err);
void pii_scanner_free(pii_scanner *s);

/* What a scan found. A detector that cannot finish (PCRE2's match or stack limit on hostile
 * text, a custom pattern that backtracks, memory) makes the scan incomplete, and an incomplete
 * scan must be read as "personal data of any class may be here": the gate fails closed. */
typedef struct pii_scan_result {
    pii_span *spans;          /* non-overlapping, in order; malloc'd (pii_scan_result_free) */
    size_t n;
    size_t count[PII_COUNT];  /* detections by class: merged spans holding the class */
    bool incomplete;
    char why[192];            /* which detector stopped and why, when incomplete */
} pii_scan_result;

/* Finds personal data in text[0..len). Every detector runs in time linear in len: bounded
 * repetition, possessive quantifiers, anchored scans, and a match limit for the custom patterns
 * (tests/test_router.c measures the worst cases). Safe to call from several threads at once. */
void pii_scan(const pii_scanner *s, const char *text, size_t len, pii_scan_result *out);
void pii_scan_result_free(pii_scan_result *r);

/* Redaction with a mapping shared by all the texts of one request: each distinct value gets a
 * placeholder such as "[EMAIL_1]" (the same value, the same placeholder). */
typedef struct pii_map {
    struct {
        char *placeholder, *value;
    } *e;
    size_t n, cap;
    int counter[PII_COUNT];
} pii_map;

/* The text with every span replaced whose classes include one not ALLOWed (REDACT; KEEP_LOCAL
 * too, failing closed, though such a request is not sent at all); malloc'd, NULL when out of
 * memory. */
char *pii_redact(const char *text, size_t len, const pii_span *spans, size_t n, const pii_action *actions, pii_map *map);
/* The text with every placeholder of map put back; malloc'd. */
char *pii_restore(const char *text, size_t len, const pii_map *map, size_t *out_len);
/* Length of the longest tail of text that could be the start of a placeholder (for streaming:
 * hold it back until the next piece shows whether it is one). */
size_t pii_restore_holdback(const char *text, size_t len, const pii_map *map);
void pii_map_free(pii_map *m);

/* Checksums, exposed for tests. */
bool pii_luhn_ok(const char *digits, size_t n);
bool pii_cn_id_ok(const char *id18);

#endif
