/* AMX (Intel Sapphire Rapids and later): prefill matrix products on the tile unit, 16 weight rows
 * x 16 tokens x one weight sub-block (32 or 16 elements) per pair of tile multiplies.
 *
 * The tile unit multiplies int8 by int8. Weights are unpacked per 16-row panel into int8 values
 * with a float scale (and min) per sub-block; activations (int16, see kernels.h) split exactly
 * into two int8 levels, q = 256 * qh + ql, each a tile: C_h = W x Qh and C_l = W x Ql, combined as
 * 256 * C_h + C_l - the same integers the other kernels compute. Every sub-block's result is
 * scaled in float (weight scale x activation scale) into 16 accumulators of 16 tokens each.
 * Decode (one token) and everything else comes from the AVX-512 table. */
#include <immintrin.h>
#include <stdbool.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../fp16.h"
#include "kernels.h"

#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

/* ---- activations: the tile layout ---------------------------------------------------------------
 * per panel of 16 tokens (nc = n/16 chunks of 16 elements, nb = n/32 blocks):
 *   int8  qh[nc][4][64], ql[nc][4][64]   B tiles: row k/4, byte 4t + k%4 holds element k of token t
 *   float d[nb][16]                      activation scale per block and token
 *   float s[nc][16]                      sum of q over each 16 elements, per token */
static size_t panel_bytes(int64_t n) { return (size_t)(n / 16) * 512 + (size_t)(n / 32) * 64 + (size_t)(n / 16) * 64; }

static size_t prep_bytes(int64_t n, int64_t nt) { return panel_bytes(n) * (size_t)((nt + 15) / 16); }

static void prep(int64_t n, const void *act, size_t act_stride, int64_t t0, int64_t t1, void *out) {
    int64_t nc = n / 16, nb = n / 32;
    size_t pb = panel_bytes(n);
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
                __m512i v = _mm512_cvtepi16_epi32(_mm256_loadu_si256((const __m256i *)(q + 16 * c)));
                /* h = (q + 128) >> 8, l = q - 256 h: both in [-128, 127] */
                __m512i h = _mm512_srai_epi32(_mm512_add_epi32(v, _mm512_set1_epi32(128)), 8);
                __m512i l = _mm512_sub_epi32(v, _mm512_slli_epi32(h, 8));
                uint32_t hb[4], lb[4];
                _mm_storeu_si128((__m128i *)hb, _mm512_cvtepi32_epi8(h));
                _mm_storeu_si128((__m128i *)lb, _mm512_cvtepi32_epi8(l));
                for (int r = 0; r < 4; r++) { /* elements 4r..4r+3 of this token: row r, bytes 4tt.. */
                    memcpy(qh + c * 256 + r * 64 + 4 * tt, &hb[r], 4);
                    memcpy(ql + c * 256 + r * 64 + 4 * tt, &lb[r], 4);
                }
            }
        }
    }
}

/* ---- weights: one row to int8 values, a scale and a min per sub-block (value = s * q + m) ------ */

typedef void (*unpack_fn)(const uint8_t *row, int64_t n, int8_t *q, float *s, float *m);

static inline float f16(uint16_t h) { return hai_f16_to_f32(h); }

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

/* 16-element sub-blocks */
static void un_q6_K(const uint8_t *row, int64_t n, int8_t *q, float *s, float *m) {
    (void)m;
    const hai_block_q6_K *x = (const hai_block_q6_K *)row;
    for (int64_t i = 0; i < n / 256; i++) {
        float d = f16(x[i].d);
        for (int w = 0; w < 256; w++) {
            int h = w / 128, k = (w / 32) % 4, l = w % 32;
            uint8_t lo = x[i].ql[64 * h + l + 32 * (k & 1)];
            q[256 * i + w] = (int8_t)(((k < 2 ? lo & 0xF : lo >> 4) | (((x[i].qh[32 * h + l] >> (2 * k)) & 3) << 4)) - 32);
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

/* ---- the product ----------------------------------------------------------------------------- */

typedef struct tilecfg {
    uint8_t palette, start;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tilecfg;

static __thread bool tiles_ready;

static void tiles_init(void) {
    if (tiles_ready) return;
    tilecfg c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    /* 0: W 16x32   1,2: Qh,Ql 8x64   3,4: Ch,Cl 16x64   5: W 16x16   6,7: Qh,Ql 4x64 */
    const uint8_t rows[8] = {16, 8, 8, 16, 16, 16, 4, 4};
    const uint16_t cols[8] = {32, 64, 64, 64, 64, 16, 64, 64};
    for (int i = 0; i < 8; i++) c.rows[i] = rows[i], c.colsb[i] = cols[i];
    __asm__ volatile("" : : "m"(c) : "memory"); /* GCC does not see that ldtilecfg reads c: keep the stores */
    _tile_loadconfig(&c);
    tiles_ready = true;
}

static size_t scratch_bytes(int64_t n) { return (size_t)16 * (size_t)n + 2 * 16 * (size_t)(n / 16) * sizeof(float) + 2 * 1024 + 64; }

static void gemm_any(int64_t n, const void *w, size_t w_stride, int64_t r0, int64_t r1, const void *prepd, int64_t nt, float *out,
                     size_t ldo, bool add, void *scratch, unpack_fn unpack, int S, bool has_min) {
    tiles_init();
    int64_t nsub = n / S, nc = n / 16, nb = n / 32;
    size_t pb = panel_bytes(n);
    int32_t *ch = (int32_t *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63), *cl = ch + 256;
    int8_t *wq = (int8_t *)(cl + 256);
    float *ws = (float *)(wq + 16 * n), *wm = ws + 16 * nsub;
    for (int64_t rp = r0; rp < r1; rp += 16) {
        int rows = r1 - rp < 16 ? (int)(r1 - rp) : 16;
        for (int r = 0; r < 16; r++) {
            if (r < rows) {
                unpack((const uint8_t *)w + (size_t)(rp + r) * w_stride, n, wq + (size_t)r * n, ws + r * nsub, wm + r * nsub);
                if (!has_min) memset(wm + r * nsub, 0, (size_t)nsub * sizeof *wm);
            } else { /* past the last row: zeros */
                memset(wq + (size_t)r * n, 0, (size_t)n);
                memset(ws + r * nsub, 0, (size_t)nsub * sizeof *ws);
                memset(wm + r * nsub, 0, (size_t)nsub * sizeof *wm);
            }
        }
        for (int64_t tp = 0; tp < nt; tp += 16) {
            const uint8_t *P = (const uint8_t *)prepd + (size_t)(tp / 16) * pb;
            const int8_t *qh = (const int8_t *)P, *ql = qh + nc * 256;
            const float *dT = (const float *)(P + nc * 512), *sT = dT + nb * 16;
            __m512 acc[16];
            for (int r = 0; r < 16; r++) acc[r] = _mm512_setzero_ps();
            for (int64_t j = 0; j < nsub; j++) {
                _tile_zero(3);
                _tile_zero(4);
                if (S == 32) {
                    _tile_loadd(0, wq + 32 * j, n);
                    _tile_loadd(1, qh + 512 * j, 64);
                    _tile_loadd(2, ql + 512 * j, 64);
                    _tile_dpbssd(3, 0, 1);
                    _tile_dpbssd(4, 0, 2);
                } else {
                    _tile_loadd(5, wq + 16 * j, n);
                    _tile_loadd(6, qh + 256 * j, 64);
                    _tile_loadd(7, ql + 256 * j, 64);
                    _tile_dpbssd(3, 5, 6);
                    _tile_dpbssd(4, 5, 7);
                }
                _tile_stored(3, ch, 64);
                _tile_stored(4, cl, 64);
                __m512 dv = _mm512_loadu_ps(dT + 16 * (S == 32 ? j : j / 2));
                __m512 sv = _mm512_setzero_ps();
                if (has_min) sv = _mm512_mul_ps(dv, S == 32 ? _mm512_add_ps(_mm512_loadu_ps(sT + 32 * j), _mm512_loadu_ps(sT + 32 * j + 16))
                                                          : _mm512_loadu_ps(sT + 16 * j));
#pragma GCC unroll 16
                for (int r = 0; r < 16; r++) {
                    __m512i h = _mm512_load_si512(ch + 16 * r), l = _mm512_load_si512(cl + 16 * r);
                    __m512i v = _mm512_add_epi32(_mm512_slli_epi32(h, 8), l); /* 256h + l */
                    acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(v), _mm512_mul_ps(_mm512_set1_ps(ws[r * nsub + j]), dv), acc[r]);
                    if (has_min) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(wm[r * nsub + j]), sv, acc[r]);
                }
            }
            int toks = nt - tp < 16 ? (int)(nt - tp) : 16;
            for (int r = 0; r < rows; r++) {
                float v[16];
                _mm512_storeu_ps(v, acc[r]);
                for (int t = 0; t < toks; t++) {
                    float *o = out + (size_t)(tp + t) * ldo + (size_t)(rp + r);
                    *o = add ? *o + v[t] : v[t];
                }
            }
        }
    }
}

#define GEMM(name, un, S, MIN)                                                                                                  \
    static void name(int64_t n, const void *w, size_t w_stride, int64_t r0, int64_t r1, const void *prepd, int64_t nt, float *out, \
                     size_t ldo, bool add, void *scratch) {                                                                     \
        gemm_any(n, w, w_stride, r0, r1, prepd, nt, out, ldo, add, scratch, un, S, MIN);                                        \
    }
GEMM(g_q4_0, un_q4_0, 32, false)
GEMM(g_q4_0x2, un_q4_0x2, 32, false)
GEMM(g_q4_1, un_q4_1, 32, true)
GEMM(g_q5_0, un_q5_0, 32, false)
GEMM(g_q5_1, un_q5_1, 32, true)
GEMM(g_q8_0, un_q8_0, 32, false)
GEMM(g_iq4_nl, un_iq4_nl, 32, false)
GEMM(g_iq4_xs, un_iq4_xs, 32, false)
GEMM(g_q4_K, un_q4_K, 32, true)
GEMM(g_q5_K, un_q5_K, 32, true)
GEMM(g_q6_K, un_q6_K, 16, false)
GEMM(g_q3_K, un_q3_K, 16, false)
GEMM(g_q2_K, un_q2_K, 16, true)

static hai_kernels table;

const hai_kernels *hai_kernels_amx(void) {
    static int state; /* 0 unknown, 1 usable, -1 not */
    if (state) return state > 0 ? &table : NULL;
    state = -1;
    const hai_kernels *base = hai_kernels_avx512();
    if (!base || !hai_cpu_x86_features().amx_int8) return NULL;
    if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0) return NULL; /* the OS says no */
    table = *base;
    table.name = "amx";
    table.gemm[HAI_TYPE_Q4_0] = g_q4_0, table.gemm[HAI_WTYPE_Q4_0X2] = g_q4_0x2, table.gemm[HAI_TYPE_Q4_1] = g_q4_1;
    table.gemm[HAI_TYPE_Q5_0] = g_q5_0, table.gemm[HAI_TYPE_Q5_1] = g_q5_1, table.gemm[HAI_TYPE_Q8_0] = g_q8_0;
    table.gemm[HAI_TYPE_IQ4_NL] = g_iq4_nl, table.gemm[HAI_TYPE_IQ4_XS] = g_iq4_xs, table.gemm[HAI_TYPE_Q4_K] = g_q4_K;
    table.gemm[HAI_TYPE_Q5_K] = g_q5_K, table.gemm[HAI_TYPE_Q6_K] = g_q6_K, table.gemm[HAI_TYPE_Q3_K] = g_q3_K;
    table.gemm[HAI_TYPE_Q2_K] = g_q2_K;
    table.gemm_prep_bytes = prep_bytes;
    table.gemm_prep = prep;
    table.gemm_scratch_bytes = scratch_bytes;
    state = 1;
    return &table;
}
