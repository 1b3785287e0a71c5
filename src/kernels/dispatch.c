/* Picks the kernel table once, by what the CPU supports (or $HAI_KERNELS). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "kernels.h"

/* Every table, fastest first: the automatic pick is the first this CPU runs, and HAI_KERNELS
 * names one of them ("ref" is the scalar table's other name). */
static const struct variant {
    const char *name;
    const hai_kernels *(*get)(void); /* NULL when not built in or not supported by this CPU */
} variants[] = {
    {"amx", hai_kernels_amx},                   /* asks the OS for the tile state: only if chosen */
    {"avx512", hai_kernels_avx512},
    {"avx2-vnni", hai_kernels_avx2_vnni},
    {"avx2", hai_kernels_avx2},
    {"neon-i8mm", hai_kernels_neon_i8mm},
    {"neon-dotprod", hai_kernels_neon_dotprod},
    {"neon", hai_kernels_neon},
    {"scalar", hai_kernels_ref},
};
#define N_VARIANTS (sizeof variants / sizeof variants[0])

static const hai_kernels *best;
static char refusal[HAI_ERROR_MSG_SIZE]; /* why HAI_KERNELS cannot be honoured, when it cannot */
static pthread_once_t once = PTHREAD_ONCE_INIT;

const hai_kernels *hai_kernels_named(const char *name, bool *known) {
    if (known) *known = false;
    if (name && !strcmp(name, "ref")) name = "scalar";
    for (size_t i = 0; name && i < N_VARIANTS; i++)
        if (!strcmp(name, variants[i].name)) {
            if (known) *known = true;
            return variants[i].get();
        }
    return NULL;
}

/* The names of the tables this CPU runs, for messages. */
static void runnable(char *buf, size_t cap) {
    size_t w = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < N_VARIANTS && w < cap; i++)
        if (variants[i].get()) {
            int k = snprintf(buf + w, cap - w, "%s%s", w ? ", " : "", variants[i].name);
            if (k > 0) w += (size_t)k;
        }
}

static void choose(void) {
    const char *force = getenv("HAI_KERNELS");
    if (force && *force) { /* a table asked for by name is that table, or an error: never another one tested in its place */
        bool known;
        best = hai_kernels_named(force, &known);
        if (!best) {
            char have[256];
            runnable(have, sizeof have);
            snprintf(refusal, sizeof refusal, "HAI_KERNELS=%.32s: %s (this CPU runs: %s)", force,
                     known ? "this CPU or build cannot run that kernel table" : "no such kernel table", have);
        }
        return;
    }
    for (size_t i = 0; !best && i < N_VARIANTS; i++) best = variants[i].get();
}

hai_status hai_kernels_check(hai_error *err) {
    pthread_once(&once, choose);
    return best ? HAI_OK : hai_fail(err, HAI_ERR_UNSUPPORTED, "%s", refusal);
}

const hai_kernels *hai_kernels_best(void) {
    pthread_once(&once, choose);
    return best ? best : hai_kernels_ref(); /* only reached after hai_kernels_check failed and was ignored */
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
