/* AVX-512 (VL, BW) + VNNI kernels: the x86_kern.inc code with u8 x s8 products accumulated by
 * vpdpbusd (no int16 intermediate). Used only when the CPU reports all of these. */
#define KERN_NAME "avx512"
#define KERN_VNNI 1
#include "x86_kern.inc"

const hai_kernels *hai_kernels_avx512(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c") &&
        __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vnni"))
        return &table;
    return NULL;
}
