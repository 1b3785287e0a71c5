/* Block formats of the GGUF tensor types: layouts, sizes and exact dequantization.
 * The layouts are the ggml ones, byte for byte, so files move between runtimes unchanged. */
#ifndef HAI_QUANT_H
#define HAI_QUANT_H

#include <string.h>

#include "hai.h"

#define HAI_QK 32   /* elements per block of the legacy types (Q4_0 .. Q8_1, IQ4_NL) */
#define HAI_QK_K 256 /* elements per super-block of the K-quants and IQ4_XS */

/* Q4_0: 18 bytes per 32 weights.
 *   [0..2)   d   f16 scale
 *   [2..18)  qs  16 bytes: weight j (j < 16) in the low nibble of qs[j], weight j+16 in its high
 *                nibble; value = (nibble - 8) * d */
typedef struct { uint16_t d; uint8_t qs[HAI_QK / 2]; } hai_block_q4_0;

/* Q4_1: 20 bytes. d, m (f16), qs as Q4_0; value = nibble * d + m */
typedef struct { uint16_t d, m; uint8_t qs[HAI_QK / 2]; } hai_block_q4_1;

/* Q5_0: 22 bytes. d (f16); qh: 32 high bits, bit j = 5th bit of weight j (little-endian u32);
 * qs as Q4_0; value = ((nibble | high << 4) - 16) * d */
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[HAI_QK / 2]; } hai_block_q5_0;

/* Q5_1: 24 bytes. d, m, qh, qs; value = (nibble | high << 4) * d + m */
typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[HAI_QK / 2]; } hai_block_q5_1;

/* Q8_0: 34 bytes. d (f16), 32 int8; value = q * d */
typedef struct { uint16_t d; int8_t qs[HAI_QK]; } hai_block_q8_0;

/* Q8_1: 36 bytes. d (f16), s = d * sum(qs) (f16), 32 int8 (an activation format) */
typedef struct { uint16_t d, s; int8_t qs[HAI_QK]; } hai_block_q8_1;

/* Q2_K: 84 bytes per 256 weights, 16 sub-blocks of 16.
 *   [0..16)  scales  sub-block j: scale in the low nibble, min in the high nibble
 *   [16..80) qs      2-bit quants: weight 128*h + 32*s + l (h<2, s<4, l<32) is bits 2s..2s+1
 *                    of qs[32*h + l]
 *   [80..82) d, [82..84) dmin (f16); value = d*scale*q - dmin*min */
typedef struct { uint8_t scales[HAI_QK_K / 16]; uint8_t qs[HAI_QK_K / 4]; uint16_t d, dmin; } hai_block_q2_K;

/* Q3_K: 110 bytes. hmask[32] (3rd bit: weight 32*k + l has its high bit at bit k of hmask[l]),
 * qs[64] (low 2 bits, arranged as Q2_K), scales[12] (16 6-bit signed scales, offset 32: low
 * 4 bits of scale j<8 in the low nibble of scales[j], of j>=8 in the high nibble of scales[j-8];
 * top 2 bits of scale j at bits 2*(j/4)..+1 of scales[8 + j%4]), d (f16).
 * value = d * (scale - 32) * (q2 - (high bit ? 0 : 4)) */
typedef struct { uint8_t hmask[HAI_QK_K / 8]; uint8_t qs[HAI_QK_K / 4]; uint8_t scales[12]; uint16_t d; } hai_block_q3_K;

/* Q4_K: 144 bytes. d, dmin (f16); scales[12]: 8 6-bit scales and 8 6-bit mins (see
 * hai_q4k_scale_min); qs[128]: sub-block pair p (64 weights) uses qs[32p..32p+32), the first
 * 32 weights in low nibbles, the next 32 in high nibbles. value = d*sc*q - dmin*m */
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[HAI_QK_K / 2]; } hai_block_q4_K;

/* Q5_K: 176 bytes. As Q4_K plus qh[32]: the 5th bit of weight 32*k + l is bit k of qh[l]. */
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qh[HAI_QK_K / 8]; uint8_t qs[HAI_QK_K / 2]; } hai_block_q5_K;

/* Q6_K: 210 bytes. ql[128] low 4 bits, qh[64] high 2 bits, scales[16] int8, d (f16).
 * In each half h (128 weights): weight 32*k + l (k<4, l<32) has low bits in ql[64h + l + 32*(k&1)]
 * (low nibble for k<2, high for k>=2), high bits at bits 2k..2k+1 of qh[32h + l];
 * value = d * scales[8h + 2k + l/16] * (q - 32) */
typedef struct { uint8_t ql[HAI_QK_K / 2]; uint8_t qh[HAI_QK_K / 4]; int8_t scales[HAI_QK_K / 16]; uint16_t d; } hai_block_q6_K;

/* Q8_K: 292 bytes. d (f32), 256 int8, bsums: sums of each 16 quants (int16). Activations only. */
typedef struct { float d; int8_t qs[HAI_QK_K]; int16_t bsums[HAI_QK_K / 16]; } hai_block_q8_K;

/* IQ4_NL: 18 bytes. d (f16), qs as Q4_0; value = d * hai_iq4nl_values[nibble] */
typedef struct { uint16_t d; uint8_t qs[HAI_QK / 2]; } hai_block_iq4_nl;

/* IQ4_XS: 136 bytes per 256. d (f16); scales_h: 2 high bits of sub-block j's 6-bit scale at
 * bits 2j..2j+1; scales_l[4]: low 4 bits of scale j in nibble j%2 of byte j/2; qs[128]: 8
 * sub-blocks of 32 as IQ4_NL. value = d * (scale - 32) * hai_iq4nl_values[nibble] */
typedef struct { uint16_t d; uint16_t scales_h; uint8_t scales_l[HAI_QK_K / 64]; uint8_t qs[HAI_QK_K / 2]; } hai_block_iq4_xs;

/* The non-linear 4-bit grid of IQ4_NL / IQ4_XS. */
extern const int8_t hai_iq4nl_values[16];

/* All eight 6-bit scales and mins of a Q4_K/Q5_K scales[12] array at once (four bytes at a time). */
static inline void hai_q4k_scales_mins(const uint8_t *s12, uint8_t sc[8], uint8_t mn[8]) {
    uint32_t a, b, c;
    memcpy(&a, s12, 4), memcpy(&b, s12 + 4, 4), memcpy(&c, s12 + 8, 4);
    uint32_t s0 = a & 0x3F3F3F3Fu, m0 = b & 0x3F3F3F3Fu;
    uint32_t s1 = (c & 0x0F0F0F0Fu) | (((a >> 6) & 0x03030303u) << 4), m1 = ((c >> 4) & 0x0F0F0F0Fu) | (((b >> 6) & 0x03030303u) << 4);
    memcpy(sc, &s0, 4), memcpy(sc + 4, &s1, 4), memcpy(mn, &m0, 4), memcpy(mn + 4, &m1, 4);
}

/* 6-bit scale and min j (0..7) of a Q4_K/Q5_K scales[12] array. */
static inline void hai_q4k_scale_min(int j, const uint8_t *q, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* 6-bit scale j (0..15) of a Q3_K scales[12] array, as stored (offset 32 not removed). */
static inline int hai_q3k_scale(int j, const uint8_t *s) {
    int lo = j < 8 ? (s[j] & 0xF) : (s[j - 8] >> 4);
    int hi = (s[8 + (j & 3)] >> (2 * (j >> 2))) & 3;
    return lo | (hi << 4);
}

typedef void (*hai_to_float_fn)(const void *src, float *dst, int64_t n);
typedef void (*hai_from_float_fn)(const float *src, void *dst, int64_t n);

typedef struct hai_type_traits {
    const char *name;
    int64_t block_size;   /* elements per block */
    size_t block_bytes;   /* bytes per block */
    hai_to_float_fn to_float;     /* NULL: hai cannot compute with this type */
    hai_from_float_fn from_float; /* reference quantizer (round to nearest); NULL if none yet */
} hai_type_traits;

/* Traits of a type id, or NULL when hai does not know the id. */
const hai_type_traits *hai_type_traits_get(uint32_t type);

/* Bytes of one row of n elements, 0 when n is not a whole number of blocks. */
size_t hai_row_bytes(uint32_t type, int64_t n);

/* Quantize n floats (a multiple of the block size) with the reference quantizer of `type`. */
hai_status hai_quantize_ref(uint32_t type, const float *src, void *dst, int64_t n, hai_error *err);

#endif
