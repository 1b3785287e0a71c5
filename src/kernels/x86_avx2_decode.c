/* Decode (a token or a few) on AVX2 without VNNI: the CPUs of most laptops and desktops. The
 * int16 activation rows are split as on AVX-512 (q = 256 * hi + lo; the layout: hai_split_hi in
 * kernels.h), so the unsigned 4- and 6-bit weights go into vpmaddubsw as they are: a weight
 * (<= 63) times an int8, summed in pairs, stays under 2 * 63 * 128 < 2^15, so nothing saturates
 * and every sum is exact; vpmaddwd then widens the hi sums times 256 and the lo sums times 1. The
 * loops prefetch the weights (the hardware prefetcher alone left these kernels waiting on memory:
 * 2.7 GB/s for Q4_0 before) and fold the two blocks of a pair into one register so one
 * conversion and one FMA serve both. */
#include <immintrin.h>
#include <stdbool.h>
#include <string.h>

#include "kernels.h"
#include "x86_simd.h"

#define PF_AHEAD 2048 /* bytes of weights ahead of the loads, as in the AVX-512 kernels */

void hai_avx2_decode_prep(int64_t n, const void *act, void *out) {
    int64_t nb = n / 32;
    const int16_t *q = act;
    int8_t *o = out;
    const __m256i bias = _mm256_set1_epi16(128), low = _mm256_set1_epi16(0xFF);
    for (int64_t b = 0; b < nb; b++) {
        __m256i v0 = _mm256_loadu_si256((const __m256i *)(q + 32 * b)), v1 = _mm256_loadu_si256((const __m256i *)(q + 32 * b + 16));
        /* packs works within 128-bit lanes: the permute puts the 32 bytes back in element order */
        __m256i hi = _mm256_packs_epi16(_mm256_srai_epi16(_mm256_add_epi16(v0, bias), 8), _mm256_srai_epi16(_mm256_add_epi16(v1, bias), 8));
        __m256i lo = _mm256_packus_epi16(_mm256_and_si256(v0, low), _mm256_and_si256(v1, low)); /* the low bytes, as unsigned */
        hi = _mm256_permute4x64_epi64(hi, 0xD8), lo = _mm256_permute4x64_epi64(lo, 0xD8);
        int lo_off;
        int8_t *base = o + hai_split_hi(b, nb, &lo_off);
        _mm256_storeu_si256((__m256i *)base, hi);
        _mm256_storeu_si256((__m256i *)(base + lo_off), lo);
    }
    memcpy(o + 64 * nb, (const uint8_t *)act + 64 * nb, 12 * (size_t)nb); /* scales and sums */
}

/* 32 unsigned weights (bytes <= 63) . one block's split activations: 8 int32 lanes, lanes 0-3 the
 * first 16 elements, 4-7 the last 16 */
static inline __m256i block_dot(__m256i u, const int8_t *hi, int lo_off) {
    __m256i h = _mm256_maddubs_epi16(u, _mm256_loadu_si256((const __m256i *)hi));
    __m256i l = _mm256_maddubs_epi16(u, _mm256_loadu_si256((const __m256i *)(hi + lo_off)));
    return _mm256_add_epi32(_mm256_madd_epi16(h, _mm256_set1_epi16(256)), _mm256_madd_epi16(l, _mm256_set1_epi16(1)));
}

/* two blocks' products in one register: even lanes sum block x, odd lanes block y */
static inline __m256i fold(__m256i x, __m256i y) { return _mm256_add_epi32(_mm256_unpacklo_epi32(x, y), _mm256_unpackhi_epi32(x, y)); }

/* the scales of blocks 2p and 2p+1 of an 8-scale vector in fold's lane order */
static inline __m256 pair_scales(__m256 sc8, int p) {
    return _mm256_permutevar8x32_ps(sc8, _mm256_add_epi32(_mm256_setr_epi32(0, 1, 0, 1, 0, 1, 0, 1), _mm256_set1_epi32(2 * p)));
}

/* the sums of activations of 8 blocks, as floats (from their [8][2] half sums) */
static inline __m256 block_sums8(const int32_t *s) {
    __m256i a = _mm256_loadu_si256((const __m256i *)s), b = _mm256_loadu_si256((const __m256i *)(s + 8));
    __m256i h = _mm256_permute4x64_epi64(_mm256_hadd_epi32(a, b), 0xD8); /* hadd pairs within lanes */
    return _mm256_cvtepi32_ps(h);
}

float hai_avx2_decode_q4_0x2(int64_t n, const void *w, const void *ar) {
    int64_t nb = n / 32, np = (nb + 1) / 2, b = 0;
    const int8_t *a = ar;
    const float *ad = hai_act_d(ar, n);
    const int32_t *as = hai_act_s(ar, n);
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps(), off = _mm256_setzero_ps();
    for (; b + 8 <= nb; b += 8) { /* 8 blocks (half a group or a short last one): scales at once, then 4 pairs */
        const uint8_t *q = hai_q4x2_pair(w, np, b / 2);
        __m256 sc = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)hai_q4x2_scales(w, b))), _mm256_loadu_ps(ad + b));
        off = _mm256_fmadd_ps(block_sums8(as + 2 * b), sc, off); /* the weights are nibbles - 8 */
        _mm_prefetch((const char *)q + PF_AHEAD, _MM_HINT_T0);
        _mm_prefetch((const char *)q + PF_AHEAD + 64, _MM_HINT_T0);
        _mm_prefetch((const char *)q + PF_AHEAD + 128, _MM_HINT_T0); /* 144 bytes a step, with the scales */
        for (int p = 0; p < 4; p += 2) {
            const uint8_t *qp = q + 32 * p;
            const int8_t *ap = a + 64 * (b + 2 * p);
            __m256i v0 = _mm256_loadu_si256((const __m256i *)qp), v1 = _mm256_loadu_si256((const __m256i *)(qp + 32));
            __m256i t0 = fold(block_dot(_mm256_and_si256(v0, m4), ap, 64), block_dot(_mm256_and_si256(_mm256_srli_epi16(v0, 4), m4), ap + 32, 64));
            __m256i t1 = fold(block_dot(_mm256_and_si256(v1, m4), ap + 128, 64), block_dot(_mm256_and_si256(_mm256_srli_epi16(v1, 4), m4), ap + 160, 64));
            acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(t0), pair_scales(sc, p), acc0);
            acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(t1), pair_scales(sc, p + 1), acc1);
        }
    }
    float s = hai_hsum256(_mm256_add_ps(acc0, acc1)) - 8.0f * hai_hsum256(off);
    for (; b < nb; b++) { /* what is left, a block at a time */
        __m256i v = _mm256_loadu_si256((const __m256i *)hai_q4x2_pair(w, np, b / 2));
        __m256i u = _mm256_and_si256(b % 2 ? _mm256_srli_epi16(v, 4) : v, m4);
        int lo_off;
        const int8_t *hi = a + hai_split_hi(b, nb, &lo_off);
        __m256i t = block_dot(u, hi, lo_off);
        __m128i t4 = _mm_add_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
        t4 = _mm_add_epi32(t4, _mm_shuffle_epi32(t4, 0x4E));
        t4 = _mm_add_epi32(t4, _mm_shuffle_epi32(t4, 0xB1));
        int32_t isum = _mm_cvtsi128_si32(t4) - 8 * (as[2 * b] + as[2 * b + 1]);
        s += _cvtsh_ss(*hai_q4x2_scales(w, b)) * ad[b] * (float)isum;
    }
    return s;
}

float hai_avx2_decode_q4_K(int64_t n, const void *w, const void *ar) {
    const hai_block_q4_K *x = w;
    const int8_t *a = ar;
    const float *ad = hai_act_d(ar, n);
    const int32_t *as = hai_act_s(ar, n);
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps(), mins = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 256; i++) {
        for (int l = 0; l < 144; l += 64) _mm_prefetch((const char *)(x + i) + PF_AHEAD + l, _MM_HINT_T0);
        uint8_t s8[8], m8[8];
        hai_q4k_scales_mins(x[i].scales, s8, m8);
        int64_t b0 = 8 * i;
        __m256 adv = _mm256_loadu_ps(ad + b0);
        uint64_t sv, mv;
        memcpy(&sv, s8, 8), memcpy(&mv, m8, 8);
        __m256 scf = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)sv)));
        __m256 mnf = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)mv)));
        __m256 sc = _mm256_mul_ps(_mm256_mul_ps(scf, _mm256_set1_ps(_cvtsh_ss(x[i].d))), adv);
        /* the minima: dmin * m_j * d_j * (block j's sum of activations) */
        mins = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_mul_ps(mnf, _mm256_set1_ps(_cvtsh_ss(x[i].dmin))), adv), block_sums8(as + 2 * b0), mins);
        for (int p = 0; p < 4; p += 2) {
            const int8_t *ap = a + 64 * (b0 + 2 * p);
            __m256i v0 = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * p)), v1 = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * p + 32));
            __m256i t0 = fold(block_dot(_mm256_and_si256(v0, m4), ap, 64), block_dot(_mm256_and_si256(_mm256_srli_epi16(v0, 4), m4), ap + 32, 64));
            __m256i t1 = fold(block_dot(_mm256_and_si256(v1, m4), ap + 128, 64), block_dot(_mm256_and_si256(_mm256_srli_epi16(v1, 4), m4), ap + 160, 64));
            acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(t0), pair_scales(sc, p), acc0);
            acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(t1), pair_scales(sc, p + 1), acc1);
        }
    }
    return hai_hsum256(_mm256_add_ps(acc0, acc1)) - hai_hsum256(mins);
}

/* Q6_K: values 0..63 (low nibbles in ql, two high bits in qh) with the -32 through the activation
 * sums of each 16-element sub-block; a block's product has the first sub-block in lanes 0-3 and
 * the second in 4-7, scaled apart. Per half super-block: blocks 0,1 take ql & 15 with qh bits 0-1
 * and 2-3, blocks 2,3 take ql >> 4 with qh bits 4-5 and 6-7. */
float hai_avx2_decode_q6_K(int64_t n, const void *w, const void *ar) {
    const hai_block_q6_K *x = w;
    const int8_t *a = ar;
    const float *ad = hai_act_d(ar, n);
    const int32_t *as = hai_act_s(ar, n);
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    const __m256i half = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps(), off = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 256; i++) {
        for (int l = 0; l < 210; l += 64) _mm_prefetch((const char *)(x + i) + PF_AHEAD + l, _MM_HINT_T0);
        int64_t b0 = 8 * i;
        float d = _cvtsh_ss(x[i].d);
        /* the 16 sub-block scales x d x the activation scale of their block, as two vectors of 8 */
        __m256 s16[2];
        for (int k = 0; k < 2; k++) {
            __m256 s = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(x[i].scales + 8 * k))));
            __m256 adx = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(ad + b0 + 4 * k)), _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3));
            s16[k] = _mm256_mul_ps(_mm256_mul_ps(s, _mm256_set1_ps(d)), adx);
            off = _mm256_fmadd_ps(s16[k], _mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)(as + 2 * b0 + 8 * k))), off);
        }
        for (int h = 0; h < 2; h++) {
            __m256i l0 = _mm256_loadu_si256((const __m256i *)(x[i].ql + 64 * h)), l1 = _mm256_loadu_si256((const __m256i *)(x[i].ql + 64 * h + 32));
            __m256i qh = _mm256_loadu_si256((const __m256i *)(x[i].qh + 32 * h));
            for (int kk = 0; kk < 4; kk++) {
                __m256i lo = _mm256_and_si256(kk >= 2 ? _mm256_srli_epi16(kk & 1 ? l1 : l0, 4) : (kk & 1 ? l1 : l0), m4);
                /* qh bits 2kk, 2kk+1 to bits 4-5 */
                __m256i hb = _mm256_and_si256(kk < 2 ? _mm256_slli_epi16(qh, 4 - 2 * kk) : _mm256_srli_epi16(qh, 2 * kk - 4), m30);
                int c = 4 * h + kk; /* the block within the super-block */
                const int8_t *ap = a + 64 * ((b0 + c) & ~(int64_t)1) + 32 * (c & 1);
                __m256i t = block_dot(_mm256_or_si256(lo, hb), ap, 64);
                /* sub-blocks 2c and 2c+1: lanes 0-3 and 4-7 */
                __m256 sc = _mm256_permutevar8x32_ps(s16[c / 4], _mm256_add_epi32(half, _mm256_set1_epi32(2 * (c % 4))));
                if (kk & 1) acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(t), sc, acc1);
                else acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(t), sc, acc0);
            }
        }
    }
    return hai_hsum256(_mm256_add_ps(acc0, acc1)) - 32.0f * hai_hsum256(off);
}
