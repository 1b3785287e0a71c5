/* AVX-512 (F, BW, VL) + VNNI kernels: the x86_kern.inc code with a block's 32 int16 products
 * in one vpdpwssd, and prefill on vpdpbusd (x86_avx512_gemm.c). Used only when the CPU reports
 * all of these. */
#include <pthread.h>

#define KERN_NAME "avx512"
#define KERN_AVX512 1
#include "x86_kern.inc"

void hai_avx512_add_gemm(hai_kernels *t);

static hai_kernels full;
static const hai_kernels *full_ok;
static pthread_once_t full_once = PTHREAD_ONCE_INIT;

static void full_build(void) {
    hai_cpu_x86 f = hai_cpu_x86_features();
    if (!(f.avx2 && f.fma && f.f16c && f.avx512f && f.avx512vl && f.avx512bw && f.avx512vnni)) return;
    full = table;
    hai_avx512_add_gemm(&full);
    full_ok = &full;
}

const hai_kernels *hai_kernels_avx512(void) {
    pthread_once(&full_once, full_build);
    return full_ok;
}
