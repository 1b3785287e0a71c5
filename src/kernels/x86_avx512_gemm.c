/* Prefill on AVX-512 VNNI without AMX (Ice Lake, Zen 4 and 5, ...): the AMX path's data (its
 * activation panels and unpacked weights, x86_gemm.h) multiplied with vpdpbusd instead of tiles.
 *
 * A zmm row of an activation panel holds 4 consecutive elements of each of 16 tokens, so one
 * vpdpbusd with a weight row's 4 elements broadcast adds 4 products to each token's sum: a weight
 * row's sub-block against 16 tokens is S/4 instructions per activation level, with no horizontal
 * sums. vpdpbusd multiplies unsigned by signed bytes: the activation levels go in as unsigned
 * (x + 128, a xor of the sign bit) and the weights' sums take the 128s back out exactly:
 *   256 * sum(w * (h + 128)) + sum(w * (l + 128)) = sum(w * q) + 32896 * sum(w)
 * (each term under 2^31 for S <= 32). Rows go 8 at a time, so the panel's activation levels of a
 * sub-block (16 registers) and the 8 rows' float sums stay in registers. */
#include <immintrin.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "x86_gemm.h"

static size_t scratch_bytes(int64_t n) { return (size_t)16 * (size_t)n + 3 * 16 * (size_t)(n / 16) * sizeof(float) + 64; }

static inline __attribute__((always_inline)) void gemm_s(const int S, int64_t n, const void *w, size_t w_stride, int64_t r0, int64_t r1,
                                                         const void *prepd, int64_t nt, float *out, size_t ldo, bool add, void *scratch,
                                                         const hai_x86_unpack *u) {
    const bool has_min = u->has_min;
    int64_t nsub = n / S, nc = n / 16, nb = n / 32;
    size_t pb = hai_x86_panel_bytes(n);
    int8_t *wq = (int8_t *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    float *ws = (float *)(wq + 16 * n), *wm = ws + 16 * nsub;
    int32_t *wsum = (int32_t *)(wm + 16 * nsub); /* 32896 * the sum of each sub-block's weights */
    const __m512i sign = _mm512_set1_epi8((char)0x80);
    for (int64_t rp = r0; rp < r1; rp += 16) {
        int rows = r1 - rp < 16 ? (int)(r1 - rp) : 16;
        hai_x86_unpack_panel(u, n, w, w_stride, rp, r1, wq, ws, wm);
        hai_x86_panel_bias_sums(wq, n, S, wsum);
        for (int64_t tp = 0; tp < nt; tp += 16) {
            const uint8_t *P = (const uint8_t *)prepd + (size_t)(tp / 16) * pb;
            const int8_t *qh = (const int8_t *)P, *ql = qh + nc * 256;
            const float *dT = (const float *)(P + nc * 512), *sT = dT + nb * 16;
            int toks = nt - tp < 16 ? (int)(nt - tp) : 16;
            for (int r0h = 0; r0h < rows; r0h += 8) {
                __m512 acc[8];
                for (int r = 0; r < 8; r++) acc[r] = _mm512_setzero_ps();
                for (int64_t j = 0; j < nsub; j++) {
                    __m512i ah[S / 4], al[S / 4]; /* rows g of the sub-block's chunks: elements 4g..4g+3 of 16 tokens */
                    for (int g = 0; g < S / 4; g++) {
                        ah[g] = _mm512_xor_si512(_mm512_loadu_si512(qh + (size_t)S * 16 * j + 64 * g), sign);
                        al[g] = _mm512_xor_si512(_mm512_loadu_si512(ql + (size_t)S * 16 * j + 64 * g), sign);
                    }
                    __m512 dv = _mm512_loadu_ps(dT + 16 * (S == 32 ? j : j / 2)), sv = _mm512_setzero_ps();
                    if (has_min) sv = _mm512_mul_ps(dv, S == 32 ? _mm512_add_ps(_mm512_loadu_ps(sT + 32 * j), _mm512_loadu_ps(sT + 32 * j + 16))
                                                              : _mm512_loadu_ps(sT + 16 * j));
                    for (int r = 0; r < 8; r++) {
                        int row = r0h + r;
                        const int32_t *w4 = (const int32_t *)(wq + (size_t)row * n + (size_t)S * j);
                        __m512i h = _mm512_setzero_si512(), l = _mm512_setzero_si512();
                        for (int g = 0; g < S / 4; g++) {
                            __m512i wb = _mm512_set1_epi32(w4[g]);
                            h = _mm512_dpbusd_epi32(h, ah[g], wb);
                            l = _mm512_dpbusd_epi32(l, al[g], wb);
                        }
                        __m512i v = _mm512_sub_epi32(_mm512_add_epi32(_mm512_slli_epi32(h, 8), l), _mm512_set1_epi32(wsum[row * nsub + j]));
                        acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(v), _mm512_mul_ps(_mm512_set1_ps(ws[row * nsub + j]), dv), acc[r]);
                        if (has_min) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(wm[row * nsub + j]), sv, acc[r]);
                    }
                }
                for (int r = 0; r < 8 && r0h + r < rows; r++) {
                    float v[16];
                    _mm512_storeu_ps(v, acc[r]);
                    for (int t = 0; t < toks; t++) {
                        float *o = out + (size_t)(tp + t) * ldo + (size_t)(rp + r0h + r);
                        *o = add ? *o + v[t] : v[t];
                    }
                }
            }
        }
    }
}

#define GEMM(name, type)                                                                                                        \
    static void name(int64_t n, const void *w, size_t w_stride, int64_t r0, int64_t r1, const void *prepd, int64_t nt, float *out, \
                     size_t ldo, bool add, void *scratch) {                                                                     \
        const hai_x86_unpack *u = &hai_x86_unpackers[type];                                                                     \
        if (u->S == 32) gemm_s(32, n, w, w_stride, r0, r1, prepd, nt, out, ldo, add, scratch, u);                                 \
        else gemm_s(16, n, w, w_stride, r0, r1, prepd, nt, out, ldo, add, scratch, u);                                            \
    }
HAI_X86_GEMM_TYPES(GEMM)

/* Puts the matrix path into an AVX-512 table (x86_avx512.c). */
void hai_avx512_add_gemm(hai_kernels *t) {
#define SET(name, type) t->gemm[type] = name;
    HAI_X86_GEMM_TYPES(SET)
#undef SET
    t->gemm_prep_bytes = hai_x86_gemm_prep_bytes;
    t->gemm_prep = hai_x86_gemm_prep;
    t->gemm_scratch_bytes = scratch_bytes;
}
