/* AVX2 prefill with AVX-VNNI's vpdpbusd (x86_avx2_gemm.inc). Compiled with -mavx2 -mfma -mf16c -mavxvnni;
 * used only when the CPU reports AVX-VNNI. */
#define GEMM_VNNI 1
#include "x86_avx2_gemm.inc"
