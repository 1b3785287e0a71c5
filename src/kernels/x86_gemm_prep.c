/* The x86 matrix kernels' shared parts (x86_amx.c, x86_avx512_gemm.c): the activations in the
 * tile layout, and the weights of one row unpacked to int8 values with a scale and a min per
 * sub-block. Compiled with the AVX2 flags: the AVX2 tables use it too. */
#include <immintrin.h>
#include <stdbool.h>
#include <string.h>

#include "quant/fp16.h"
#include "x86_gemm.h"

/* ---- activations: the tile layout ---------------------------------------------------------------
 * per panel of 16 tokens (nc = n/16 chunks of 16 elements, nb = n/32 blocks):
 *   int8  qh[nc][4][64], ql[nc][4][64]   B tiles: row k/4, byte 4t + k%4 holds element k of token t
 *   float d[nb][16]                      activation scale per block and token
 *   float s[nc][16]                      sum of q over each 16 elements, per token */
size_t hai_x86_panel_bytes(int64_t n) { return (size_t)(n / 16) * 512 + (size_t)(n / 32) * 64 + (size_t)(n / 16) * 64; }

size_t hai_x86_gemm_prep_bytes(int64_t n, int64_t nt) { return hai_x86_panel_bytes(n) * (size_t)((nt + 15) / 16); }

void hai_x86_gemm_prep(int64_t n, const void *act, size_t act_stride, int64_t t0, int64_t t1, void *out) {
    int64_t nc = n / 16, nb = n / 32;
    size_t pb = hai_x86_panel_bytes(n);
    for (int64_t p0 = t0; p0 < t1; p0 += 16) {
        uint8_t *P = (uint8_t *)out + (size_t)(p0 / 16) * pb;
        int8_t *qh = (int8_t *)P, *ql = qh + nc * 256;
        float *dT = (float *)(P + nc * 512), *sT = dT + nb * 16;
        memset(P, 0, pb); /* tokens past the end stay zero */
        for (int64_t t = p0; t < t1 && t < p0 + 16; t++) {
            const uint8_t *row = (const uint8_t *)act + (size_t)t * act_stride;
            const int16_t *q = hai_act_q(row);
            const float *d = hai_act_d(row, n);
            const int32_t *s = hai_act_s(row, n);
            int tt = (int)(t - p0);
            for (int64_t b = 0; b < nb; b++) dT[b * 16 + tt] = d[b];
            for (int64_t c = 0; c < nc; c++) sT[c * 16 + tt] = (float)s[c];
            for (int64_t c = 0; c < nc; c++) {
                __m256i v = _mm256_loadu_si256((const __m256i *)(q + 16 * c));
                /* h = (q + 128) >> 8, l = q - 256 h: both in [-128, 127], so the packs are exact */
                __m256i h = _mm256_srai_epi16(_mm256_add_epi16(v, _mm256_set1_epi16(128)), 8);
                __m256i l = _mm256_sub_epi16(v, _mm256_slli_epi16(h, 8));
                __m128i h8 = _mm_packs_epi16(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
                __m128i l8 = _mm_packs_epi16(_mm256_castsi256_si128(l), _mm256_extracti128_si256(l, 1));
                uint32_t hb[4], lb[4];
                _mm_storeu_si128((__m128i *)hb, h8);
                _mm_storeu_si128((__m128i *)lb, l8);
                for (int r = 0; r < 4; r++) { /* elements 4r..4r+3 of this token: row r, bytes 4tt.. */
                    memcpy(qh + c * 256 + r * 64 + 4 * tt, &hb[r], 4);
                    memcpy(ql + c * 256 + r * 64 + 4 * tt, &lb[r], 4);
                }
            }
        }
    }
}

/* ---- weights: one row to int8 values, a scale and a min per sub-block (value = s * q + m) ------ */

static inline float f16(uint16_t h) { return _cvtsh_ss(h); } /* F16C: the same value as hai_f16_to_f32 */

static void un_q4_0(const uint8_t *row, int64_t n, int8_t *q, float *s, float *m) {
    (void)m;
    const hai_block_q4_0 *x = (const hai_block_q4_0 *)row;
    for (int64_t b = 0; b < n / 32; b++, q += 32) {
        for (int k = 0; k < 16; k++) q[k] = (int8_t)((x[b].qs[k] & 0xF) - 8), q[k + 16] = (int8_t)((x[b].qs[k] >> 4) - 8);
        s[b] = f16(x[b].d);
    }
}

static void un_q4_0x2(const uint8_t *row, int64_t n, int8_t *q, float *s, float *m) {
    (void)m;
    int64_t nb = n / 32, np = (nb + 1) / 2;
    for (int64_t g = 0; 8 * g < np; g++) { /* a group: its scales, then its pairs */
        int64_t gp = hai_q4x2_group_pairs(np, g), b0 = 16 * g;
        const uint8_t *gr = row + HAI_Q4X2_GROUP_BYTES * g;
        for (int64_t p = 0; p < gp; p++) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(gr + 4 * gp + 32 * p));
            __m256i lo = _mm256_sub_epi8(_mm256_and_si256(v, _mm256_set1_epi8(0x0F)), _mm256_set1_epi8(8));
            __m256i hi = _mm256_sub_epi8(_mm256_and_si256(_mm256_srli_epi16(v, 4), _mm256_set1_epi8(0x0F)), _mm256_set1_epi8(8));
            _mm256_storeu_si256((__m256i *)(q + 32 * (b0 + 2 * p)), lo);
            if (b0 + 2 * p + 1 < nb) _mm256_storeu_si256((__m256i *)(q + 32 * (b0 + 2 * p + 1)), hi);
        }
        const uint16_t *d = (const uint16_t *)gr;
        for (int64_t b = b0; b < nb && b < b0 + 16; b++) s[b] = f16(d[b - b0]);
    }
}

static void un_q4_1(const uint8_t *row, int64_t n, int8_t *q, float *s, float *m) {
    const hai_block_q4_1 *x = (const hai_block_q4_1 *)row;
    for (int64_t b = 0; b < n / 32; b++, q += 32) {
        for (int k = 0; k < 16; k++) q[k] = (int8_t)(x[b].qs[k] & 0xF), q[k + 16] = (int8_t)(x[b].qs[k] >> 4);
        s[b] = f16(x[b].d), m[b] = f16(x[b].m);
    }
}

static void un_q5(const uint8_t *qs, const uint8_t *qhb, int8_t *q, int off) {
    uint32_t qh;
    memcpy(&qh, qhb, 4);
    for (int k = 0; k < 16; k++) {
        q[k] = (int8_t)(((qs[k] & 0xF) | (int)(((qh >> k) & 1) << 4)) - off);
        q[k + 16] = (int8_t)(((qs[k] >> 4) | (int)(((qh >> (k + 16)) & 1) << 4)) - off);
    }
}

static void un_q5_0(const uint8_t *row, int64_t n, int8_t *q, float *s, float *m) {
    (void)m;
    const hai_block_q5_0 *x = (const hai_block_q5_0 *)row;
    for (int64_t b = 0; b < n / 32; b++, q += 32) un_q5(x[b].qs, x[b].qh, q, 16), s[b] = f16(x[b].d);
}

static void un_q5_1(const uint8_t *row, int64_t n, int8_t *q, float *s, float *m) {
    const hai_block_q5_1 *x = (const hai_block_q5_1 *)row;
    for (int64_t b = 0; b < n / 32; b++, q += 32) un_q5(x[b].qs, x[b].qh, q, 0), s[b] = f16(x[b].d), m[b] = f16(x[b].m);
}

static void un_q8_0(const uint8_t *row, int64_t n, int8_t *q, float *s, float *m) {
    (void)m;
    const hai_block_q8_0 *x = (const hai_block_q8_0 *)row;
    for (int64_t b = 0; b < n / 32; b++, q += 32) memcpy(q, x[b].qs, 32), s[b] = f16(x[b].d);
}

static void un_iq4_nl(const uint8_t *row, int64_t n, int8_t *q, float *s, float *m) {
    (void)m;
    const hai_block_iq4_nl *x = (const hai_block_iq4_nl *)row;
    for (int64_t b = 0; b < n / 32; b++, q += 32) {
        for (int k = 0; k < 16; k++) q[k] = hai_iq4nl_values[x[b].qs[k] & 0xF], q[k + 16] = hai_iq4nl_values[x[b].qs[k] >> 4];
        s[b] = f16(x[b].d);
    }
}

static void un_iq4_xs(const uint8_t *row, int64_t n, int8_t *q, float *s, float *m) {
    (void)m;
    const hai_block_iq4_xs *x = (const hai_block_iq4_xs *)row;
    for (int64_t i = 0; i < n / 256; i++) {
        float d = f16(x[i].d);
        for (int j = 0; j < 8; j++, q += 32) {
            int ls = ((x[i].scales_l[j / 2] >> (4 * (j % 2))) & 0xF) | (((x[i].scales_h >> (2 * j)) & 3) << 4);
            const uint8_t *qs = x[i].qs + 16 * j;
            for (int k = 0; k < 16; k++) q[k] = hai_iq4nl_values[qs[k] & 0xF], q[k + 16] = hai_iq4nl_values[qs[k] >> 4];
            s[8 * i + j] = d * (float)(ls - 32);
        }
    }
}

static void un_q4_K(const uint8_t *row, int64_t n, int8_t *q, float *s, float *m) {
    const hai_block_q4_K *x = (const hai_block_q4_K *)row;
    for (int64_t i = 0; i < n / 256; i++) {
        float d = f16(x[i].d), dmin = f16(x[i].dmin);
        for (int p = 0; p < 4; p++) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(x[i].qs + 32 * p));
            _mm256_storeu_si256((__m256i *)(q + 256 * i + 64 * p), _mm256_and_si256(v, _mm256_set1_epi8(0x0F)));
            _mm256_storeu_si256((__m256i *)(q + 256 * i + 64 * p + 32), _mm256_and_si256(_mm256_srli_epi16(v, 4), _mm256_set1_epi8(0x0F)));
        }
        for (int j = 0; j < 8; j++) {
            uint8_t sc, mn;
            hai_q4k_scale_min(j, x[i].scales, &sc, &mn);
            s[8 * i + j] = d * (float)sc, m[8 * i + j] = -dmin * (float)mn;
        }
    }
}

static void un_q5_K(const uint8_t *row, int64_t n, int8_t *q, float *s, float *m) {
    const hai_block_q5_K *x = (const hai_block_q5_K *)row;
    for (int64_t i = 0; i < n / 256; i++) {
        float d = f16(x[i].d), dmin = f16(x[i].dmin);
        for (int j = 0; j < 8; j++) {
            const uint8_t *qs = x[i].qs + 32 * (j / 2);
            for (int l = 0; l < 32; l++) q[256 * i + 32 * j + l] = (int8_t)(((qs[l] >> (4 * (j % 2))) & 0xF) | (((x[i].qh[l] >> j) & 1) << 4));
            uint8_t sc, mn;
            hai_q4k_scale_min(j, x[i].scales, &sc, &mn);
            s[8 * i + j] = d * (float)sc, m[8 * i + j] = -dmin * (float)mn;
        }
    }
}

/* 16-element sub-blocks. Per half (128 weights) the 64 bytes of ql hold the low nibbles of
 * elements l and 64 + l (bytes l < 32: elements 0-31 and 64-95; bytes 32-63: 32-63 and 96-127), and
 * qh byte l the two high bits of elements l, 32 + l, 64 + l, 96 + l in bit pairs 0-1 .. 6-7. */
static void un_q6_K(const uint8_t *row, int64_t n, int8_t *q, float *s, float *m) {
    (void)m;
    const hai_block_q6_K *x = (const hai_block_q6_K *)row;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30), o32 = _mm256_set1_epi8(32);
    for (int64_t i = 0; i < n / 256; i++) {
        float d = f16(x[i].d);
        for (int h = 0; h < 2; h++) {
            __m256i l0 = _mm256_loadu_si256((const __m256i *)(x[i].ql + 64 * h)), l1 = _mm256_loadu_si256((const __m256i *)(x[i].ql + 64 * h + 32));
            __m256i qh = _mm256_loadu_si256((const __m256i *)(x[i].qh + 32 * h));
            __m256i v[4] = {
                _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30)),
                _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(qh, m30)),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30)),
            };
            for (int k = 0; k < 4; k++) _mm256_storeu_si256((__m256i *)(q + 256 * i + 128 * h + 32 * k), _mm256_sub_epi8(v[k], o32));
        }
        for (int j = 0; j < 16; j++) s[16 * i + j] = d * (float)x[i].scales[j];
    }
}

static void un_q3_K(const uint8_t *row, int64_t n, int8_t *q, float *s, float *m) {
    (void)m;
    const hai_block_q3_K *x = (const hai_block_q3_K *)row;
    for (int64_t i = 0; i < n / 256; i++) {
        float d = f16(x[i].d);
        for (int w = 0; w < 256; w++) {
            int h = w / 128, sh = (w / 32) % 4, l = w % 32, k = w / 32;
            int v = (x[i].qs[32 * h + l] >> (2 * sh)) & 3;
            q[256 * i + w] = (int8_t)(v - (((x[i].hmask[l] >> k) & 1) ? 0 : 4));
        }
        for (int j = 0; j < 16; j++) s[16 * i + j] = d * (float)(hai_q3k_scale(j, x[i].scales) - 32);
    }
}

static void un_q2_K(const uint8_t *row, int64_t n, int8_t *q, float *s, float *m) {
    const hai_block_q2_K *x = (const hai_block_q2_K *)row;
    for (int64_t i = 0; i < n / 256; i++) {
        float d = f16(x[i].d), dmin = f16(x[i].dmin);
        for (int w = 0; w < 256; w++) q[256 * i + w] = (int8_t)((x[i].qs[32 * (w / 128) + w % 32] >> (2 * ((w / 32) % 4))) & 3);
        for (int j = 0; j < 16; j++) s[16 * i + j] = d * (float)(x[i].scales[j] & 0xF), m[16 * i + j] = -dmin * (float)(x[i].scales[j] >> 4);
    }
}

/* ---- the panel layouts (kernels.h): runs of [16 rows][4 bytes] back to rows -------------------
 * nruns runs of 64 bytes from `runs` to 16 rows of out (row l at out + l * stride, 4 bytes a
 * run): 8 runs at a time by two 8x8 transposes of dwords (rows 0-7 and 8-15). Per-byte copies
 * instead made pp512 of a 0.5B model 10-30% slower: the matrix path unpacks every weight once a
 * pass. */
static void runs_to_rows(const uint8_t *runs, int nruns, uint8_t *out, size_t stride) {
    int g0 = 0;
    for (; g0 + 8 <= nruns; g0 += 8)
        for (int h = 0; h < 2; h++) {
            __m256i r[8], t[8], u[8];
            for (int g = 0; g < 8; g++) r[g] = _mm256_loadu_si256((const __m256i *)(runs + 64 * (g0 + g) + 32 * h));
            for (int g = 0; g < 8; g += 2) t[g] = _mm256_unpacklo_epi32(r[g], r[g + 1]), t[g + 1] = _mm256_unpackhi_epi32(r[g], r[g + 1]);
            for (int g = 0; g < 8; g += 4) {
                u[g] = _mm256_unpacklo_epi64(t[g], t[g + 2]), u[g + 1] = _mm256_unpackhi_epi64(t[g], t[g + 2]);
                u[g + 2] = _mm256_unpacklo_epi64(t[g + 1], t[g + 3]), u[g + 3] = _mm256_unpackhi_epi64(t[g + 1], t[g + 3]);
            }
            for (int l = 0; l < 4; l++) { /* rows 8h + l and 8h + l + 4 */
                _mm256_storeu_si256((__m256i *)(out + (size_t)(8 * h + l) * stride + 4 * g0), _mm256_permute2x128_si256(u[l], u[l + 4], 0x20));
                _mm256_storeu_si256((__m256i *)(out + (size_t)(8 * h + l + 4) * stride + 4 * g0), _mm256_permute2x128_si256(u[l], u[l + 4], 0x31));
            }
        }
    for (; g0 < nruns; g0++)
        for (int l = 0; l < 16; l++) memcpy(out + (size_t)l * stride + 4 * g0, runs + 64 * g0 + 4 * l, 4);
}

/* the f16 scales after the blocks of a Q8_0X16 or Q4_0X16 panel: [nb][16 rows] to s[16][nb] */
static void panel_scales(const uint8_t *d8, int64_t nb, float *s) {
    const uint16_t *d = (const uint16_t *)d8;
    for (int l = 0; l < 16; l++)
        for (int64_t b = 0; b < nb; b++) s[l * nb + b] = f16(d[16 * b + l]);
}

static void unp_q8_0x16(const uint8_t *panel, int64_t n, int8_t *q, float *s, float *m) {
    (void)m;
    int64_t nb = n / 32;
    for (int64_t b = 0; b < nb; b++) runs_to_rows(panel + 512 * b, 8, (uint8_t *)q + 32 * b, (size_t)n);
    for (int l = 0; l < 16; l++) /* the codes were stored + 128 */
        for (int64_t i = 0; i < n; i += 32) {
            __m256i *v = (__m256i *)(q + (size_t)l * n + i);
            _mm256_storeu_si256(v, _mm256_xor_si256(_mm256_loadu_si256(v), _mm256_set1_epi8((char)0x80)));
        }
    panel_scales(panel + 512 * nb, nb, s);
}

/* Q4_0X16: two blocks' nibbles (8 runs) at a time, each row's then split into codes - 8 */
static void unp_q4_0x16(const uint8_t *panel, int64_t n, int8_t *q, float *s, float *m) {
    (void)m;
    int64_t nb = n / 32;
    uint8_t tmp[16 * 32];
    const __m128i m4 = _mm_set1_epi8(0x0F), e8 = _mm_set1_epi8(8);
    for (int64_t b = 0; b < nb; b += 2) {
        int k = nb - b < 2 ? 1 : 2;
        runs_to_rows(panel + 256 * b, 4 * k, tmp, 32);
        for (int l = 0; l < 16; l++)
            for (int j = 0; j < k; j++) {
                __m128i v = _mm_loadu_si128((const __m128i *)(tmp + 32 * l + 16 * j));
                int8_t *o = q + (size_t)l * n + 32 * (b + j);
                _mm_storeu_si128((__m128i *)o, _mm_sub_epi8(_mm_and_si128(v, m4), e8));
                _mm_storeu_si128((__m128i *)(o + 16), _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(v, 4), m4), e8));
            }
    }
    panel_scales(panel + 256 * nb, nb, s);
}

/* Q4_KX16, Q6_KX16: a super-block's 16 blocks rebuilt, then each row's through its type's unpacker */
static void unp_q4_Kx16(const uint8_t *panel, int64_t n, int8_t *q, float *s, float *m) {
    uint8_t tmp[16 * sizeof(hai_block_q4_K)];
    for (int64_t i = 0; i < n / 256; i++) {
        runs_to_rows(panel + sizeof tmp * (size_t)i, (int)sizeof(hai_block_q4_K) / 4, tmp, sizeof(hai_block_q4_K));
        for (int l = 0; l < 16; l++)
            un_q4_K(tmp + sizeof(hai_block_q4_K) * l, 256, q + (size_t)l * n + 256 * i, s + l * (n / 32) + 8 * i, m + l * (n / 32) + 8 * i);
    }
}

static void unp_q6_Kx16(const uint8_t *panel, int64_t n, int8_t *q, float *s, float *m) {
    (void)m;
    uint8_t tmp[16 * 212] __attribute__((aligned(4)));
    for (int64_t i = 0; i < n / 256; i++) {
        runs_to_rows(panel + sizeof tmp * (size_t)i, 212 / 4, tmp, 212);
        for (int l = 0; l < 16; l++) un_q6_K(tmp + 212 * l, 256, q + (size_t)l * n + 256 * i, s + l * (n / 16) + 16 * i, NULL);
    }
}

const hai_x86_unpack hai_x86_unpackers[HAI_WTYPE_COUNT] = {
    [HAI_WTYPE_Q8_0X16] = {NULL, 32, false, unp_q8_0x16}, [HAI_WTYPE_Q4_0X16] = {NULL, 32, false, unp_q4_0x16},
    [HAI_WTYPE_Q4_KX16] = {NULL, 32, true, unp_q4_Kx16},  [HAI_WTYPE_Q6_KX16] = {NULL, 16, false, unp_q6_Kx16},
    [HAI_TYPE_Q4_0] = {un_q4_0, 32, false, NULL},     [HAI_WTYPE_Q4_0X2] = {un_q4_0x2, 32, false, NULL}, [HAI_TYPE_Q4_1] = {un_q4_1, 32, true, NULL},
    [HAI_TYPE_Q5_0] = {un_q5_0, 32, false, NULL},     [HAI_TYPE_Q5_1] = {un_q5_1, 32, true, NULL},       [HAI_TYPE_Q8_0] = {un_q8_0, 32, false, NULL},
    [HAI_TYPE_IQ4_NL] = {un_iq4_nl, 32, false, NULL}, [HAI_TYPE_IQ4_XS] = {un_iq4_xs, 32, false, NULL},  [HAI_TYPE_Q4_K] = {un_q4_K, 32, true, NULL},
    [HAI_TYPE_Q5_K] = {un_q5_K, 32, true, NULL},      [HAI_TYPE_Q6_K] = {un_q6_K, 16, false, NULL},      [HAI_TYPE_Q3_K] = {un_q3_K, 16, false, NULL},
    [HAI_TYPE_Q2_K] = {un_q2_K, 16, true, NULL},
};

void hai_x86_unpack_panel(const hai_x86_unpack *u, int64_t n, const void *w, size_t w_stride, int64_t rp, int64_t r1, int8_t *q,
                          float *s, float *m) {
    int64_t nsub = n / u->S;
    if (u->panel) { /* the rows past r1 are the layout's zero padding */
        if (!u->has_min) memset(m, 0, (size_t)16 * nsub * sizeof *m);
        u->panel((const uint8_t *)w + (size_t)rp * w_stride, n, q, s, m);
        return;
    }
    for (int r = 0; r < 16; r++) {
        if (rp + r < r1) {
            u->un((const uint8_t *)w + (size_t)(rp + r) * w_stride, n, q + (size_t)r * n, s + r * nsub, m + r * nsub);
            if (!u->has_min) memset(m + r * nsub, 0, (size_t)nsub * sizeof *m);
        } else { /* past the last row: zeros */
            memset(q + (size_t)r * n, 0, (size_t)n);
            memset(s + r * nsub, 0, (size_t)nsub * sizeof *s);
            memset(m + r * nsub, 0, (size_t)nsub * sizeof *m);
        }
    }
}

void hai_x86_panel_bias_sums(const int8_t *q, int64_t n, int S, int32_t *wsum) {
    int64_t nsub = n / S;
    for (int r = 0; r < 16; r++)
        for (int64_t j = 0; j < nsub; j++) {
            int32_t s = 0;
            for (int k = 0; k < S; k++) s += q[(size_t)r * n + j * S + k];
            wsum[r * nsub + j] = 32896 * s;
        }
}
