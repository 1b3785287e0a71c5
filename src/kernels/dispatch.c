/* Picks the kernel table once, by what the CPU supports (or $HAI_KERNELS). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

static const hai_kernels *best;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void choose(void) {
    const char *force = getenv("HAI_KERNELS");
    const hai_kernels *avx512 = hai_kernels_avx512(), *avx2 = hai_kernels_avx2(), *neon = hai_kernels_neon();
    if (force && !strcmp(force, "ref")) best = hai_kernels_ref();
    else if (force && !strcmp(force, "avx2") && avx2) best = avx2;
    else best = avx512 ? avx512 : avx2 ? avx2 : neon ? neon : hai_kernels_ref();
}

const hai_kernels *hai_kernels_best(void) {
    pthread_once(&once, choose);
    return best;
}

/* Tables of instruction sets this build does not compile in. */
#if !defined(HAI_HAVE_AVX2)
const hai_kernels *hai_kernels_avx2(void) { return NULL; }
#endif
#if !defined(HAI_HAVE_AVX512)
const hai_kernels *hai_kernels_avx512(void) { return NULL; }
#endif
#if !defined(HAI_HAVE_NEON)
const hai_kernels *hai_kernels_neon(void) { return NULL; }
#endif
