/* Memory the forward pass streams through once per token (the weights, the KV cache): asked for
 * in 2 MiB pages (transparent huge pages, madvise). On the benchmark machine a read loop streams
 * 35.2 GB/s from them and 28.7 from 4 KiB pages, which cost a TLB miss and a stop of the hardware
 * prefetchers every 4 KiB. Without THP the memory simply takes small pages. */
#ifndef HAI_MEMORY_H
#define HAI_MEMORY_H
#include <stddef.h>

/* n bytes (rounded up to whole 2 MiB pages), 2 MiB aligned, uninitialised; NULL on failure.
 * Freed with free(). */
void *hai_alloc_huge(size_t n);
/* What hai_alloc_huge(n) takes: n rounded up to whole 2 MiB pages (a touched huge page is resident
 * whole); 0 when that overflows. */
size_t hai_huge_bytes(size_t n);

#endif
