/* libFuzzer target for a model catalog (hai pull NAME, hai serve -m auto): any bytes either parse
 * into entries that keep the rules - a name that can name a file in the store (letters, digits,
 * '-', '_', '.', not starting with '.'), a URL the download takes (http, https, file), a SHA-256 of
 * 64 hex digits or none - or are refused
 * with a message; the pick by budget returns an entry that fits, or none. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hai_pull.h"

static bool hex64(const char *s) {
    if (strlen(s) != 64) return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') || (*s >= 'A' && *s <= 'F'))) return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    hai_error err = {0};
    hai_catalog_entry *e = NULL;
    size_t n = 0;
    if (hai_catalog_parse((const char *)data, size, &e, &n, &err) != HAI_OK) {
        if (!err.msg[0] || e || n) abort(); /* a refusal says why, and hands back nothing */
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (!e[i].name[0] || e[i].name[0] == '.' || (strncasecmp(e[i].url, "http://", 7) && strncasecmp(e[i].url, "https://", 8) &&
                                                     strncasecmp(e[i].url, "file://", 7)))
            abort();
        for (const char *c = e[i].name; *c; c++)
            if (!hai_model_name_char(*c)) abort();
        if (e[i].sha256[0] && !hex64(e[i].sha256)) abort();
    }
    uint64_t budget = size ? (uint64_t)data[0] << 20 : 0;
    int k = hai_catalog_pick(e, n, budget);
    if (k >= (int)n || (k >= 0 && (e[k].memory ? e[k].memory : e[k].size) > budget)) abort();
    hai_free(e);
    return 0;
}
