/* AVX2 + FMA + F16C kernels (see x86_kern.inc). Compiled with -mavx2 -mfma -mf16c; used only
 * when the CPU reports all three. */
#define KERN_NAME "avx2"
#define KERN_VNNI 0
#include "x86_kern.inc"

const hai_kernels *hai_kernels_avx2(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")) return &table;
    return NULL;
}
