/* Error values: status names and message formatting. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *hai_status_name(hai_status status) {
    switch (status) {
    case HAI_OK: return "OK";
    case HAI_ERR_INVALID: return "INVALID";
    case HAI_ERR_IO: return "IO";
    case HAI_ERR_FORMAT: return "FORMAT";
    case HAI_ERR_UNSUPPORTED: return "UNSUPPORTED";
    case HAI_ERR_NOMEM: return "NOMEM";
    case HAI_ERR_NOT_FOUND: return "NOT_FOUND";
    case HAI_ERR_LIMIT: return "LIMIT";
    case HAI_ERR_CANCELLED: return "CANCELLED";
    case HAI_ERR_INTERNAL: return "INTERNAL";
    }
    return "UNKNOWN";
}

hai_status hai_fail(hai_error *err, hai_status status, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->status = status;
    }
    return status;
}

void hai_error_prefix(hai_error *err, const char *fmt, ...) {
    if (!err) return;
    char prefix[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(prefix, sizeof prefix - 2, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    size_t pl = strlen(prefix);
    memcpy(prefix + pl, ": ", 3);
    pl += 2;
    /* shift the old message right (truncating its tail) and put the prefix in front */
    size_t ml = strnlen(err->msg, sizeof err->msg - 1);
    if (pl + ml > sizeof err->msg - 1) ml = sizeof err->msg - 1 - pl;
    memmove(err->msg + pl, err->msg, ml);
    memcpy(err->msg, prefix, pl);
    err->msg[pl + ml] = '\0';
}
