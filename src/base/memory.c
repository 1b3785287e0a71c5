#include "memory.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

void *hai_alloc_huge(size_t n) {
    const size_t huge = (size_t)2 << 20;
    if (n > SIZE_MAX - huge) return NULL;
    size_t len = n ? (n + huge - 1) / huge * huge : huge;
    void *p = aligned_alloc(huge, len);
    if (p) madvise(p, len, MADV_HUGEPAGE); /* a request: refused, the pages are just small */
    return p;
}
