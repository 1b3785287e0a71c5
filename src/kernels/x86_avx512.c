/* AVX-512 (VL, BW) + VNNI kernels: the x86_kern.inc code with u8 x s8 products accumulated by
 * vpdpbusd (no int16 intermediate). Used only when the CPU reports all of these. */
#define KERN_NAME "avx512"
#define KERN_VNNI 1
#include "x86_kern.inc"

const hai_kernels *hai_kernels_avx512(void) {
    hai_cpu_x86 f = hai_cpu_x86_features();
    return f.avx2 && f.fma && f.f16c && f.avx512f && f.avx512vl && f.avx512bw && f.avx512vnni ? &table : NULL;
}
