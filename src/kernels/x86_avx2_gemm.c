/* AVX2 prefill with vpmaddubsw (x86_avx2_gemm.inc). Compiled with -mavx2 -mfma -mf16c. */
#define GEMM_VNNI 0
#include "x86_avx2_gemm.inc"
