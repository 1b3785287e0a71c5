/* AVX-512 (F, BW, VL) + VNNI kernels: the x86_kern.inc code with a block's 32 int16 products
 * in one vpdpwssd. Used only when the CPU reports all of these. */
#define KERN_NAME "avx512"
#define KERN_AVX512 1
#include "x86_kern.inc"

const hai_kernels *hai_kernels_avx512(void) {
    hai_cpu_x86 f = hai_cpu_x86_features();
    return f.avx2 && f.fma && f.f16c && f.avx512f && f.avx512vl && f.avx512bw && f.avx512vnni ? &table : NULL;
}
