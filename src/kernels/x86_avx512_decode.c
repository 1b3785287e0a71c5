/* Decode (a token or a few) on AVX-512 VNNI with int8 products: the activation rows' layout. The
 * int16 activations would cost two vpdpwssd per pair of 4-bit blocks plus widening every weight
 * to 16 bits. Here each activation row is first split exactly into two int8 levels, q = 256 * hi
 * + lo (hi = (q + 128) >> 8, lo the low byte, both in [-128, 127]; the layout: hai_split_hi in
 * kernels.h), so the weights go into vpdpbusd as unsigned bytes:
 *   dot = 256 * (w . hi) + (w . lo)   - the offset or minimum through the block sums.
 * The few-token kernels (x86_avx512_few.c) read it, for one token too: the avx512 and amx tables
 * hold Q4_0, Q8_0, Q4_K and Q6_K in panels of 16 rows (kernels.h), which no per-row dot reads (the
 * per-row decode dots that were here streamed Q4_K at 17 GB/s a core, the panels at 27). */
#include <immintrin.h>
#include <string.h>

#include "kernels.h"
#include "x86_simd.h"

void hai_x86_decode_prep(int64_t n, const void *act, void *out) {
    int64_t nb = n / 32;
    const int16_t *q = act;
    int8_t *o = out;
    const __m512i bias = _mm512_set1_epi16(128);
    for (int64_t b = 0; b < nb; b++) {
        __m512i v = _mm512_loadu_si512(q + 32 * b);
        __m256i hi = _mm512_cvtepi16_epi8(_mm512_srai_epi16(_mm512_add_epi16(v, bias), 8));
        __m256i lo = _mm512_cvtepi16_epi8(v); /* the low byte: q - 256 * hi */
        int lo_off;
        int8_t *base = o + hai_split_hi(b, nb, &lo_off);
        _mm256_storeu_si256((__m256i *)base, hi);
        _mm256_storeu_si256((__m256i *)(base + lo_off), lo);
    }
    memcpy(o + 64 * nb, (const uint8_t *)act + 64 * nb, 12 * (size_t)nb); /* scales and sums */
    const float *d = hai_act_d(act, n);
    const int32_t *s = hai_act_s(act, n);
    float *ds = (float *)(o + 76 * nb);
    for (int64_t b = 0; b < nb; b++) ds[b] = d[b] * (float)(s[2 * b] + s[2 * b + 1]);
}
