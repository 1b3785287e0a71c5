#include "memory.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#define HUGE ((size_t)2 << 20)

size_t hai_huge_bytes(size_t n) { return n > SIZE_MAX - HUGE ? 0 : n ? (n + HUGE - 1) / HUGE * HUGE : HUGE; }

void *hai_alloc_huge(size_t n) {
    const size_t huge = HUGE;
    size_t len = hai_huge_bytes(n);
    if (!len) return NULL;
    void *p = aligned_alloc(huge, len);
    if (p) madvise(p, len, MADV_HUGEPAGE); /* a request: refused, the pages are just small */
    return p;
}
