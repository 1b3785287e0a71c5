/* libFuzzer target: a cloud response as a broken or hostile peer might send it (status, content
 * type, body cut into arbitrary pieces), judged by the same code as a real transfer. It must never
 * crash or grow without bound; text handed on is valid UTF-8 and no longer than the body; a
 * stream counts as a success only with a finish_reason and [DONE]. */
#include <stdlib.h>
#include <string.h>

#include "cloud/cloud.h"
#include "base/unicode.h"

typedef struct sink {
    size_t n;
} sink;

static bool on_text(void *user, const char *text, size_t len) {
    sink *s = user;
    for (size_t i = 0; i < len;) {
        int k = hai_utf8_valid_len((const unsigned char *)text + i, len - i, NULL);
        if (!k) abort(); /* invalid UTF-8 handed to the user */
        i += (size_t)k;
    }
    s->n += len;
    return true;
}

/* A call handed on has a name; name and arguments are valid UTF-8 and count with the text
 * (everything handed on was decoded from the body, so it is no longer than the body). */
static bool on_call(void *user, const char *name, const char *args, size_t len) {
    if (!name[0]) abort();
    on_text(user, name, strlen(name));
    on_text(user, args, len);
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 4) return 0;
    static const int statuses[4] = {200, 429, 500, 200};
    int status = statuses[data[0] % 4];
    const char *ctype = data[1] & 1 ? "text/event-stream" : "application/json";
    size_t cuts[16];
    for (int k = 0; k < 16; k++) cuts[k] = 1 + (size_t)((data[2] * (k + 1) + data[3] * k * k) % 97);
    const uint8_t *body = data + 4;
    size_t len = size - 4;
    sink s = {0};
    cloud_request r = {.on_text = on_text, .on_call = on_call, .user = &s};
    cloud_result res;
    hai_status st = cloud_judge_bytes(status, ctype, body, len, cuts, 16, &r, 1 << 16, &res);
    if (s.n > len) abort();
    if (st == HAI_OK && status != 200) abort();
    if (st == HAI_OK && (data[1] & 1) && (!memmem(body, len, "[DONE]", 6) || !res.finish[0])) abort();
    return 0;
}
