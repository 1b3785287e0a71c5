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
    else if (force && !strcmp(force, "avx2-vnni") && hai_kernels_avx2_vnni()) best = hai_kernels_avx2_vnni();
    else if (force && !strcmp(force, "avx512") && avx512) best = avx512;
    else if (force && !strcmp(force, "neon") && neon) best = neon;
    else if (force && !strcmp(force, "neon-dotprod") && hai_kernels_neon_dotprod()) best = hai_kernels_neon_dotprod();
    else {
        const hai_kernels *amx = hai_kernels_amx(); /* asks the kernel for the tile state: only if chosen */
        const hai_kernels *dotprod = hai_kernels_neon_dotprod(), *i8mm = hai_kernels_neon_i8mm();
        const hai_kernels *avx2_vnni = hai_kernels_avx2_vnni();
        best = amx ? amx : avx512 ? avx512 : avx2_vnni ? avx2_vnni : avx2 ? avx2 : i8mm ? i8mm : dotprod ? dotprod : neon ? neon : hai_kernels_ref();
    }
}

const hai_kernels *hai_kernels_best(void) {
    pthread_once(&once, choose);
    return best;
}

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

hai_cpu_x86 hai_cpu_x86_features(void) {
    hai_cpu_x86 f = {0};
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
    bool osxsave = c & (1u << 27), avx = c & (1u << 28);
    f.fma = c & (1u << 12);
    f.f16c = c & (1u << 29);
    unsigned long long xcr0 = 0;
    if (osxsave) {
        unsigned lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        xcr0 = ((unsigned long long)hi << 32) | lo;
    }
    bool ymm = avx && (xcr0 & 0x6) == 0x6, zmm = ymm && (xcr0 & 0xE0) == 0xE0;
    if (!ymm) return (hai_cpu_x86){0};
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
        f.avx2 = b & (1u << 5);
        f.avx512f = zmm && (b & (1u << 16));
        f.avx512dq = zmm && (b & (1u << 17));
        f.avx512bw = zmm && (b & (1u << 30));
        f.avx512vl = zmm && (b & (1u << 31));
        f.avx512vnni = zmm && (c & (1u << 11));
        f.amx_int8 = (d & (1u << 24)) && (d & (1u << 25)); /* AMX-TILE, AMX-INT8 (the OS grants the state on request) */
    }
    if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) f.avx_vnni = a & (1u << 4);
    return f;
}
#else
hai_cpu_x86 hai_cpu_x86_features(void) { return (hai_cpu_x86){0}; }
#endif

/* Tables of instruction sets this build does not compile in. */
#if !defined(HAI_HAVE_AVX2)
const hai_kernels *hai_kernels_avx2(void) { return NULL; }
#endif
#if !defined(HAI_HAVE_AVX2) || !defined(HAI_HAVE_AVXVNNI)
const hai_kernels *hai_kernels_avx2_vnni(void) { return NULL; }
#endif
#if !defined(HAI_HAVE_AVX512)
const hai_kernels *hai_kernels_avx512(void) { return NULL; }
#endif
#if !defined(HAI_HAVE_AMX)
const hai_kernels *hai_kernels_amx(void) { return NULL; }
#endif
#if !defined(HAI_HAVE_NEON)
const hai_kernels *hai_kernels_neon(void) { return NULL; }
#endif
#if !defined(HAI_HAVE_NEON_DOTPROD)
const hai_kernels *hai_kernels_neon_dotprod(void) { return NULL; }
#endif
#if !defined(HAI_HAVE_NEON_I8MM)
const hai_kernels *hai_kernels_neon_i8mm(void) { return NULL; }
#endif
