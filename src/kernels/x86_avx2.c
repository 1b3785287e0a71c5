/* AVX2 + FMA + F16C kernels (see x86_kern.inc). Compiled with -mavx2 -mfma -mf16c; used only
 * when the CPU reports all three. */
#define KERN_NAME "avx2"
#define KERN_AVX512 0
#include "x86_kern.inc"

const hai_kernels *hai_kernels_avx2(void) {
    hai_cpu_x86 f = hai_cpu_x86_features();
    return f.avx2 && f.fma && f.f16c ? &table : NULL;
}
