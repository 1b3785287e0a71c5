#include "memory.h"

#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hai.h"

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

uint64_t hai_rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size = 0, res = 0;
    if (!f) return 0;
    int k = fscanf(f, "%llu %llu", &size, &res);
    fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    return k == 2 && page > 0 ? (uint64_t)res * (uint64_t)page : 0;
}
