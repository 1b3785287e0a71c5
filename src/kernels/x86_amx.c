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

#include "quant/fp16.h"
#include "kernels.h"
#include "x86_gemm.h"

#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

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
                     size_t ldo, bool add, void *scratch, const hai_x86_unpack *u) {
    tiles_init();
    const int S = u->S;
    const bool has_min = u->has_min;
    int64_t nsub = n / S, nc = n / 16, nb = n / 32;
    size_t pb = hai_x86_panel_bytes(n);
    int32_t *ch = (int32_t *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63), *cl = ch + 256;
    int8_t *wq = (int8_t *)(cl + 256);
    float *ws = (float *)(wq + 16 * n), *wm = ws + 16 * nsub;
    for (int64_t rp = r0; rp < r1; rp += 16) {
        int rows = r1 - rp < 16 ? (int)(r1 - rp) : 16;
        hai_x86_unpack_panel(u, n, w, w_stride, rp, r1, wq, ws, wm);
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

#define GEMM(name, type)                                                                                                        \
    static void name(int64_t n, const void *w, size_t w_stride, int64_t r0, int64_t r1, const void *prepd, int64_t nt, float *out, \
                     size_t ldo, bool add, void *scratch) {                                                                     \
        gemm_any(n, w, w_stride, r0, r1, prepd, nt, out, ldo, add, scratch, &hai_x86_unpackers[type]);                         \
    }
HAI_X86_GEMM_TYPES(GEMM)

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
    table.gemm_min_tokens = 0; /* 16 tokens: one tile panel */
#define SET(name, type) table.gemm[type] = name;
    HAI_X86_GEMM_TYPES(SET)
#undef SET
    table.gemm_prep_bytes = hai_x86_gemm_prep_bytes;
    table.gemm_prep = hai_x86_gemm_prep;
    table.gemm_scratch_bytes = scratch_bytes;
    state = 1;
    return &table;
}
