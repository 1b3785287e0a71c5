/* libFuzzer target for the router's outside inputs. First byte even: the bytes as a policy file
 * (accepted only with every value in its range). Odd: the bytes as request text - personal data
 * spans in order, inside the text, not overlapping; redacting every class and restoring gives the
 * text back exactly; no placeholder is left that the map does not know. */
#include <stdlib.h>
#include <string.h>

#include "router/config.h"
#include "router/privacy.h"

static pii_scanner *scanner;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    hai_error err = {0};
    if (!(data[0] & 1)) {
        hybrid_config c;
        if (hybrid_config_parse((const char *)data + 1, size - 1, &c, &err) == HAI_OK) {
            const router_policy *p = &c.policy;
            for (int k = 0; k < PII_COUNT; k++)
                if (p->privacy[k] < PII_KEEP_LOCAL || p->privacy[k] > PII_ALLOW) abort();
            if (p->cascade_tokens < 1 || p->cascade_tokens > 256 || p->entropy_threshold < 0 || p->daily_tokens < 0) abort();
            if (c.has_cloud && (!c.cloud.base_url[0] || !c.cloud.model[0])) abort();
            hybrid_config_free(&c);
        } else if (!err.msg[0]) {
            abort(); /* a refusal always says why */
        }
        return 0;
    }
    if (!scanner) {
        const char *pat[] = {"EMP-[0-9]{6}"}, *kw[] = {"project falcon"};
        if (pii_scanner_create(pat, 1, kw, 1, &scanner, &err) != HAI_OK) abort();
    }
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    if (memchr(text, 0, len)) return 0; /* request texts are C strings */
    pii_scan_result sr;
    pii_scan(scanner, text, len, &sr);
    if (sr.incomplete) abort(); /* the built-in detectors finish on any text, and this one is short */
    const pii_span *sp = sr.spans;
    size_t n = sr.n, total = 0;
    for (size_t i = 0; i < n; i++) {
        if (sp[i].start >= sp[i].end || sp[i].end > len || sp[i].cls >= PII_COUNT || !(sp[i].classes >> sp[i].cls & 1u)) abort();
        if (i && sp[i].start < sp[i - 1].end) abort();
    }
    for (int k = 0; k < PII_COUNT; k++) total += sr.count[k];
    if (total < n) abort();
    pii_action act[PII_COUNT];
    for (int k = 0; k < PII_COUNT; k++) act[k] = PII_REDACT;
    pii_map map = {0};
    char *red = pii_redact(text, len, sp, n, act, &map);
    if (!red) abort();
    size_t out_len = 0;
    char *back = pii_restore(red, strlen(red), &map, &out_len);
    if (!back || out_len != len || memcmp(back, text, len)) abort();
    free(back);
    free(red);
    pii_map_free(&map);
    pii_scan_result_free(&sr);
    return 0;
}
