/* Error helpers shared by every module: fill a hai_error and return its status in one step,
 * plus overflow-checked size arithmetic for sizes that come from untrusted input. */
#ifndef HAI_ERROR_H
#define HAI_ERROR_H

#include "hai.h"

#if defined(__GNUC__) || defined(__clang__)
#define HAI_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define HAI_PRINTF(a, b)
#endif

/* Sets err (when not NULL) to status and the formatted message; returns status. */
hai_status hai_fail(hai_error *err, hai_status status, const char *fmt, ...) HAI_PRINTF(3, 4);

/* Prefixes an already-set message with "what: " (for adding context as an error travels up). */
void hai_error_prefix(hai_error *err, const char *fmt, ...) HAI_PRINTF(2, 3);

/* a*b and a+b on uint64_t; return false on overflow. */
static inline bool hai_mul_u64(uint64_t a, uint64_t b, uint64_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool hai_add_u64(uint64_t a, uint64_t b, uint64_t *out) {
    return !__builtin_add_overflow(a, b, out);
}
/* Rounds x up to a multiple of align (a power of two); false on overflow. */
static inline bool hai_align_up_u64(uint64_t x, uint64_t align, uint64_t *out) {
    uint64_t t;
    if (!hai_add_u64(x, align - 1, &t)) return false;
    *out = t & ~(align - 1);
    return true;
}

#endif
