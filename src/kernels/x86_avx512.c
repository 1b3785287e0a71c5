/* AVX-512 (F, BW, VL) + VNNI kernels: the x86_kern.inc code with a block's 32 int16 products
 * in one vpdpwssd, and prefill on vpdpbusd (x86_avx512_gemm.c). Used only when the CPU reports
 * all of these. */
#include <pthread.h>

#define KERN_NAME "avx512"
#define KERN_AVX512 1
#include "x86_kern.inc"

void hai_avx512_add_gemm(hai_kernels *t);
void hai_avx512_add_few(hai_kernels *t);

static hai_kernels full;
static const hai_kernels *full_ok;
static pthread_once_t full_once = PTHREAD_ONCE_INIT;

static void full_build(void) {
    hai_cpu_x86 f = hai_cpu_x86_features();
    if (!(f.avx2 && f.fma && f.f16c && f.avx512f && f.avx512vl && f.avx512bw && f.avx512vnni)) return;
    full = table;
    hai_avx512_add_gemm(&full);
    hai_avx512_add_few(&full);
    /* 16 tokens go faster on the few-token kernels than on one matrix panel (0.5B Q8_0, AMD EPYC
     * Zen 4, 2 threads: 268 tok/s at 15 tokens, 210 at 16 on the panel); the amx table keeps 16 */
    full.gemm_min_tokens = HAI_FEW_TOKENS + 1;
    full_ok = &full;
}

const hai_kernels *hai_kernels_avx512(void) {
    pthread_once(&full_once, full_build);
    return full_ok;
}
