/* Decode (a token or a few) on AVX-512 VNNI with int8 products. The int16 activations would cost
 * two vpdpwssd per pair of 4-bit blocks plus widening every weight to 16 bits. Here each
 * activation row is first split exactly into two int8 levels, q = 256 * hi + lo (hi = (q + 128)
 * >> 8, lo the low byte, both in [-128, 127]; the layout: hai_split_hi in kernels.h), so the 4-bit
 * weights go into vpdpbusd as they are (unsigned nibbles, 64 per instruction):
 *   dot = 256 * (nibbles . hi) + (nibbles . lo)   - the offset or minimum through the block sums.
 * Used by the avx512 and amx tables through decode_prep / decode_dot (src/kernels/x86_kern.inc). */
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

/* 64 nibbles of two blocks (low nibbles of v: block b, high: b+1) with their split activations at
 * a (hi of both, then lo of both): lanes 0-7 sum block b, 8-15 block b+1 TIMES 16 (the high
 * nibbles are masked in place, not shifted down: the caller's scale for b+1 carries the 1/16).
 * vpdpbusd, vcvtdq2ps and 512-bit shifts all issue on port 0 only, so the x256 of the hi product
 * is a byte shuffle (port 5) and no shift widens the nibbles (measured: +3% tg128). */
static inline __m512i pair_dot(const uint8_t *q, const int8_t *a) {
    const __m512i mask = _mm512_inserti64x4(_mm512_set1_epi8(0x0F), _mm256_set1_epi8((char)0xF0), 1);
    /* per 32-bit lane: bytes 0,1,2 -> 1,2,3 and a zero byte 0, i.e. << 8 */
    const __m512i shl8 = _mm512_broadcast_i32x4(_mm_setr_epi8(-128, 0, 1, 2, -128, 4, 5, 6, -128, 8, 9, 10, -128, 12, 13, 14));
    __m512i w = _mm512_and_si512(_mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)q)), mask);
    __m512i t = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w, _mm512_loadu_si512(a));
    return _mm512_dpbusd_epi32(_mm512_shuffle_epi8(t, shl8), w, _mm512_loadu_si512(a + 64));
}

/* one block's 32 nibbles (u: 0..15 bytes) */
static inline int32_t block_dot(__m256i u, const int8_t *hi, int lo_off) {
    __m256i t = _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, _mm256_loadu_si256((const __m256i *)hi));
    t = _mm256_dpbusd_epi32(_mm256_slli_epi32(t, 8), u, _mm256_loadu_si256((const __m256i *)(hi + lo_off)));
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

/* Two pairs' products (blocks 0,1 and 2,3 of four) folded into one register: lane 2i of the sum
 * of unpacklo and unpackhi adds two lanes of t01, lane 2i+1 two of t23, and the lanes 0-7 / 8-15
 * of each come from its first / second block. So each block's partial sums sit in 4 lanes and one
 * conversion and one FMA serve 128 weights: the float work per pair was what held the loop under
 * the memory bound (measured: with it halved the kernel streams 31 GB/s instead of 27 on 2 threads,
 * while int8 activations, half the integer work, changed nothing). */
static inline __m512i fold_pairs(__m512i t01, __m512i t23) { return _mm512_add_epi32(_mm512_unpacklo_epi32(t01, t23), _mm512_unpackhi_epi32(t01, t23)); }

/* the scales in fold_pairs' lane order, for the four blocks from 4k on of a 16-scale vector */
static inline __m512 fold_scales(__m512 sc16, int k) {
    const __m512i base = _mm512_setr_epi32(0, 2, 0, 2, 0, 2, 0, 2, 1, 3, 1, 3, 1, 3, 1, 3);
    return _mm512_permutexvar_ps(_mm512_add_epi32(base, _mm512_set1_epi32(4 * k)), sc16);
}

float hai_x86_decode_q4_0x2(int64_t n, const void *w, const void *ar) {
    int64_t nb = n / 32, np = (nb + 1) / 2, b = 0;
    const int8_t *a = ar;
    const float *ad = hai_act_d(ar, n), *ds = hai_dec_ds(ar, n);
    const int32_t *as = hai_act_s(ar, n);
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps(), off = _mm512_setzero_ps();
    const __m512 odd16 = _mm512_setr_ps(1, 1.0f / 16, 1, 1.0f / 16, 1, 1.0f / 16, 1, 1.0f / 16, 1, 1.0f / 16, 1, 1.0f / 16, 1, 1.0f / 16, 1, 1.0f / 16);
    for (; b + 16 <= nb; b += 16) { /* a whole group of 16 blocks: their scales at once, then 8 pairs */
        const uint8_t *g = (const uint8_t *)w + HAI_Q4X2_GROUP_BYTES * (b / 16);
        __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)g));
        __m512 scp = _mm512_mul_ps(_mm512_mul_ps(dw, _mm512_loadu_ps(ad + b)), odd16); /* pair_dot's odd blocks come x16 */
        off = _mm512_fmadd_ps(dw, _mm512_loadu_ps(ds + b), off); /* the weights are nibbles - 8 */
        for (int l = 0; l < HAI_Q4X2_GROUP_BYTES; l += 64) _mm_prefetch((const char *)g + 2048 + l, _MM_HINT_T0);
        for (int k = 0; k < 4; k += 2) { /* two accumulators (kept in registers: no indexing) */
            const uint8_t *qk = g + 32 + 64 * k;
            const int8_t *ak = a + 64 * (b + 4 * k);
            acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(fold_pairs(pair_dot(qk, ak), pair_dot(qk + 32, ak + 128))), fold_scales(scp, k), acc0);
            acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(fold_pairs(pair_dot(qk + 64, ak + 256), pair_dot(qk + 96, ak + 384))), fold_scales(scp, k + 1), acc1);
        }
    }
    float s = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1)) - 8.0f * _mm512_reduce_add_ps(off);
    for (; b < nb; b++) { /* what is left, a block at a time */
        __m256i v = _mm256_loadu_si256((const __m256i *)hai_q4x2_pair(w, np, b / 2));
        __m256i u = _mm256_and_si256(b % 2 ? _mm256_srli_epi16(v, 4) : v, _mm256_set1_epi8(0x0F));
        int lo_off;
        const int8_t *hi = a + hai_split_hi(b, nb, &lo_off);
        int32_t isum = block_dot(u, hi, lo_off) - 8 * (as[2 * b] + as[2 * b + 1]);
        s += _cvtsh_ss(*hai_q4x2_scales(w, b)) * ad[b] * (float)isum;
    }
    return s;
}

/* The eight 6-bit scales and mins of a Q4_K/Q5_K super-block (hai_q4k_scales_mins) in vector
 * registers: sc in bytes 0-7, mn in 8-15. From dwords a, b, c of the 12 bytes:
 *   sc = [a & 0x3F.., (c & 0x0F..) | ((a >> 6) & 0x03..) << 4],  mn = [b & 0x3F.., ((c >> 4) & 0x0F..) | ((b >> 6) & 0x03..) << 4]
 * (the scalar version with its stores and reloads was a fifth of the Q4_K decode kernel's work). */
static inline __m128i q4k_scales_mins(const uint8_t *s12) {
    __m128i abc = _mm_loadu_si128((const __m128i *)s12); /* a, b, c and 4 bytes of qs (the block goes on) */
    __m128i v = _mm_shuffle_epi32(abc, 0x98);            /* a, c, b, c: sc low, sc high, mn low, mn high */
    __m128i lo = _mm_and_si128(_mm_srlv_epi32(v, _mm_setr_epi32(0, 0, 0, 4)), _mm_setr_epi32(0x3F3F3F3F, 0x0F0F0F0F, 0x3F3F3F3F, 0x0F0F0F0F));
    __m128i hi = _mm_and_si128(_mm_srli_epi32(_mm_shuffle_epi32(abc, 0x40), 2), _mm_setr_epi32(0, 0x30303030, 0, 0x30303030)); /* -, a, -, b */
    return _mm_or_si128(lo, hi);
}

float hai_x86_decode_q4_K(int64_t n, const void *w, const void *ar) {
    const hai_block_q4_K *x = w;
    const int8_t *a = ar;
    const float *ad = hai_act_d(ar, n), *ds = hai_dec_ds(ar, n);
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    __m256 mins = _mm256_setzero_ps();
    const __m256 odd16 = _mm256_setr_ps(1, 1.0f / 16, 1, 1.0f / 16, 1, 1.0f / 16, 1, 1.0f / 16);
    for (int64_t i = 0; i < n / 256; i++) {
        for (int l = 0; l < 144; l += 64) _mm_prefetch((const char *)(x + i) + 2048 + l, _MM_HINT_T0);
        int64_t b0 = 8 * i;
        __m256 adv = _mm256_loadu_ps(ad + b0);
        __m128i smv = q4k_scales_mins(x[i].scales); /* sc in bytes 0-7, mn in 8-15 */
        __m256 scf = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(smv));
        __m256 mnf = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_unpackhi_epi64(smv, smv)));
        __m512 scp = _mm512_castps256_ps512(_mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(scf, odd16), _mm256_set1_ps(_cvtsh_ss(x[i].d))), adv)); /* odd blocks x16 in pair_dot */
        /* the minima: dmin * m_j * d_j * (block j's sum of activations) */
        mins = _mm256_fmadd_ps(_mm256_mul_ps(mnf, _mm256_set1_ps(_cvtsh_ss(x[i].dmin))), _mm256_loadu_ps(ds + b0), mins);
        const uint8_t *qs = x[i].qs;
        const int8_t *ai = a + 64 * b0;
        acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(fold_pairs(pair_dot(qs, ai), pair_dot(qs + 32, ai + 128))), fold_scales(scp, 0), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(fold_pairs(pair_dot(qs + 64, ai + 256), pair_dot(qs + 96, ai + 384))), fold_scales(scp, 1), acc1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1)) - hai_hsum256(mins);
}

/* Q6_K: 6-bit values 0..63 (low nibbles in ql, two high bits in qh) into vpdpbusd as they are;
 * the -32 offset through the activation sums of each 16-element sub-block, whose scales apply to
 * four 32-bit lanes each (the lanes of a product sum 4 elements). Per half super-block (128
 * weights): chunk 01 holds elements 0-63 (ql & 15, qh bits 0-1 and 2-3), chunk 23 elements 64-127
 * (ql >> 4, qh bits 4-5 and 6-7) - each a pair of blocks, as the split row has them. */
float hai_x86_decode_q6_K(int64_t n, const void *w, const void *ar) {
    const hai_block_q6_K *x = w;
    const int8_t *a = ar;
    const float *ad = hai_act_d(ar, n);
    const int32_t *as = hai_act_s(ar, n);
    const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
    const __m512i cnt = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1); /* halves: >> 0, >> 2 */
    const __m512i blk = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    const __m512i lane = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    __m512 acc = _mm512_setzero_ps(), off = _mm512_setzero_ps();
    for (int64_t i = 0; i < n / 256; i++) {
        for (int l = 0; l < 210; l += 64) _mm_prefetch((const char *)(x + i) + 2048 + l, _MM_HINT_T0);
        int64_t b0 = 8 * i;
        /* the 16 sub-block scales x d x the activation scale of the block each is in */
        __m512 s = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)x[i].scales)));
        __m512 s16 = _mm512_mul_ps(_mm512_mul_ps(s, _mm512_set1_ps(_cvtsh_ss(x[i].d))),
                                   _mm512_permutexvar_ps(blk, _mm512_castps256_ps512(_mm256_loadu_ps(ad + b0))));
        off = _mm512_fmadd_ps(s16, _mm512_cvtepi32_ps(_mm512_loadu_si512(as + 2 * b0)), off);
        for (int h = 0; h < 2; h++) {
            __m512i ql = _mm512_loadu_si512(x[i].ql + 64 * h);
            __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(x[i].qh + 32 * h)));
            /* A | (B & C): the nibbles with the two high bits moved to bits 4-5 */
            __m512i w01 = _mm512_ternarylogic_epi32(_mm512_and_si512(ql, m4), _mm512_srlv_epi16(_mm512_slli_epi16(qh, 4), cnt), m30, 0xF8);
            __m512i w23 = _mm512_ternarylogic_epi32(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4), _mm512_srlv_epi16(qh, cnt), m30, 0xF8);
            for (int k = 0; k < 2; k++) {
                __m512i wv = k ? w23 : w01;
                const int8_t *ap = a + 64 * (b0 + 4 * h + 2 * k);
                __m512i t = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wv, _mm512_loadu_si512(ap));
                t = _mm512_dpbusd_epi32(_mm512_slli_epi32(t, 8), wv, _mm512_loadu_si512(ap + 64));
                __m512i idx = _mm512_add_epi32(lane, _mm512_set1_epi32(8 * h + 4 * k));
                acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(t), _mm512_permutexvar_ps(idx, s16), acc);
            }
        }
    }
    return _mm512_reduce_add_ps(acc) - 32.0f * _mm512_reduce_add_ps(off);
}
