/* AVX2 decode kernels with vpmaddubsw (x86_avx2_decode.inc). Compiled with -mavx2 -mfma -mf16c. */
#define DECODE_VNNI 0
#include "x86_avx2_decode.inc"
