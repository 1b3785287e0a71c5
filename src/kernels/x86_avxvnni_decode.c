/* AVX2 decode kernels with AVX-VNNI's vpdpbusd (x86_avx2_decode.inc). Compiled with -mavx2 -mfma
 * -mf16c -mavxvnni; used only when the CPU reports AVX-VNNI. */
#define DECODE_VNNI 1
#include "x86_avx2_decode.inc"
