/* AArch64 matrix path for CPUs with the int8 matrix multiply (Armv8.6 i8mm, also in many v8.2
 * cores: Cortex-A510/A710/X2 on): smmla multiplies a 2x8 int8 matrix by an 8x2 one into a 2x2
 * int32 tile, 32 multiply-adds an instruction against sdot's 16, and every lane of the result is
 * one (weight row, token) sum, so a block needs no horizontal sums (the sdot path reduces each
 * (row, token) dot across lanes for every block, and unpacks the block's weights again for every
 * token).
 * Tiles are 2 weight rows x up to 8 tokens: a block's weights are unpacked once for the tile's four
 * token pairs. Operands are made by zipping 64-bit halves: the rows' weights [r0 k0..7 | r1 k0..7]
 * and the tokens' split activations (gemm_prep of the dotprod table: hi[32] then lo[32] per block,
 * q = 256 * hi + lo) the same way; a block's 2x2 tile is 256 * (hi products) + (lo products), exact.
 * Decode (one token) keeps the dotprod table's per-row path: a tile would be half empty.
 * Built only with +i8mm, chosen at run time when the CPU reports it (HWCAP2_I8MM). */
#include <arm_neon.h>
#include <pthread.h>
#include <string.h>
#include <sys/auxv.h>

#include "../fp16.h"
#include "kernels.h"

#ifndef HWCAP2_I8MM
#define HWCAP2_I8MM (1 << 13)
#endif

static const hai_kernels *dotprod; /* the table this one extends, and its gemm for single tokens */

static inline float f16(uint16_t h) { /* one instruction (fcvt), where fp16.h's portable one branches */
    __fp16 x;
    memcpy(&x, &h, 2);
    return (float)x;
}

static inline int8x16_t zip_lo(int8x16_t a, int8x16_t b) {
    return vreinterpretq_s8_s64(vzip1q_s64(vreinterpretq_s64_s8(a), vreinterpretq_s64_s8(b)));
}
static inline int8x16_t zip_hi(int8x16_t a, int8x16_t b) {
    return vreinterpretq_s8_s64(vzip2q_s64(vreinterpretq_s64_s8(a), vreinterpretq_s64_s8(b)));
}

/* One 32-weight block of two rows as smmla operands: w[0] = [r0 k0..7 | r1 k0..7], ..., w[3] = k24..31
 * (a0, a1: row 0's weights 0..15 and 16..31; b0, b1: row 1's). */
static inline void rows_of(int8x16_t a0, int8x16_t a1, int8x16_t b0, int8x16_t b1, int8x16_t *w) {
    w[0] = zip_lo(a0, b0), w[1] = zip_hi(a0, b0), w[2] = zip_lo(a1, b1), w[3] = zip_hi(a1, b1);
}

/* The 2x2 sums [r0 t0, r0 t1, r1 t0, r1 t1] of a block's weights 0..15 (*s0) and 16..31 (*s1) with
 * two tokens' split blocks p, q (64 bytes each: hi[32], lo[32]). */
static inline void mm_block(const int8x16_t *w, const int8_t *p, const int8_t *q, int32x4_t *s0, int32x4_t *s1) {
    const int32x4_t z = vdupq_n_s32(0);
    int8x16_t ph0 = vld1q_s8(p), ph1 = vld1q_s8(p + 16), qh0 = vld1q_s8(q), qh1 = vld1q_s8(q + 16);
    int8x16_t pl0 = vld1q_s8(p + 32), pl1 = vld1q_s8(p + 48), ql0 = vld1q_s8(q + 32), ql1 = vld1q_s8(q + 48);
    int32x4_t h0 = vmmlaq_s32(vmmlaq_s32(z, w[0], zip_lo(ph0, qh0)), w[1], zip_hi(ph0, qh0));
    int32x4_t h1 = vmmlaq_s32(vmmlaq_s32(z, w[2], zip_lo(ph1, qh1)), w[3], zip_hi(ph1, qh1));
    *s0 = vmmlaq_s32(vmmlaq_s32(vshlq_n_s32(h0, 8), w[0], zip_lo(pl0, ql0)), w[1], zip_hi(pl0, ql0));
    *s1 = vmmlaq_s32(vmmlaq_s32(vshlq_n_s32(h1, 8), w[2], zip_lo(pl1, ql1)), w[3], zip_hi(pl1, ql1));
}

enum { K_Q4_0, K_Q8_0, K_Q4_K, K_Q6_K };

/* Block b of two rows, unpacked: the operands, and per row (lanes [r0, r0, r1, r1]) the scale of
 * weights 0..15 (*d0) and 16..31 (*d1) and the block's minimum times its scale (*mn, Q4_K). */
typedef struct wblock {
    int8x16_t w[4];
    float32x4_t d0, d1, mn;
} wblock;

static inline float32x4_t per_row(float a, float b) { return vcombine_f32(vdup_n_f32(a), vdup_n_f32(b)); }

static inline __attribute__((always_inline)) void unpack(const int kind, const uint8_t *ra, const uint8_t *rb, int64_t b, wblock *o) {
    int8x16_t a0, a1, b0, b1;
    if (kind == K_Q4_0 || kind == K_Q8_0) {
        float da, db;
        if (kind == K_Q4_0) {
            const hai_block_q4_0 *x = (const hai_block_q4_0 *)ra + b, *y = (const hai_block_q4_0 *)rb + b;
            const uint8x16_t m = vdupq_n_u8(0x0F);
            const int8x16_t eight = vdupq_n_s8(8);
            uint8x16_t u = vld1q_u8(x->qs), v = vld1q_u8(y->qs);
            a0 = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(u, m)), eight), a1 = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(u, 4)), eight);
            b0 = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(v, m)), eight), b1 = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(v, 4)), eight);
            da = f16(x->d), db = f16(y->d);
        } else {
            const hai_block_q8_0 *x = (const hai_block_q8_0 *)ra + b, *y = (const hai_block_q8_0 *)rb + b;
            a0 = vld1q_s8(x->qs), a1 = vld1q_s8(x->qs + 16), b0 = vld1q_s8(y->qs), b1 = vld1q_s8(y->qs + 16);
            da = f16(x->d), db = f16(y->d);
        }
        o->d0 = o->d1 = per_row(da, db);
    } else if (kind == K_Q4_K) {
        int64_t i = b / 8;
        int j = (int)(b % 8);
        const hai_block_q4_K *x = (const hai_block_q4_K *)ra + i, *y = (const hai_block_q4_K *)rb + i;
        uint8_t sa, ma, sb, mb;
        hai_q4k_scale_min(j, x->scales, &sa, &ma);
        hai_q4k_scale_min(j, y->scales, &sb, &mb);
        const uint8x16_t m = vdupq_n_u8(0x0F);
        uint8x16_t u0 = vld1q_u8(x->qs + 32 * (j / 2)), u1 = vld1q_u8(x->qs + 32 * (j / 2) + 16);
        uint8x16_t v0 = vld1q_u8(y->qs + 32 * (j / 2)), v1 = vld1q_u8(y->qs + 32 * (j / 2) + 16);
        if (j % 2) u0 = vshrq_n_u8(u0, 4), u1 = vshrq_n_u8(u1, 4), v0 = vshrq_n_u8(v0, 4), v1 = vshrq_n_u8(v1, 4);
        a0 = vreinterpretq_s8_u8(vandq_u8(u0, m)), a1 = vreinterpretq_s8_u8(vandq_u8(u1, m));
        b0 = vreinterpretq_s8_u8(vandq_u8(v0, m)), b1 = vreinterpretq_s8_u8(vandq_u8(v1, m));
        o->d0 = o->d1 = per_row(f16(x->d) * sa, f16(y->d) * sb);
        o->mn = per_row(f16(x->dmin) * ma, f16(y->dmin) * mb);
    } else { /* K_Q6_K: weights (low 4 bits | high 2 bits << 4) - 32, a scale per 16 */
        int64_t i = b / 8;
        int c = (int)(b % 8), h = c / 4, k = c % 4;
        const hai_block_q6_K *x = (const hai_block_q6_K *)ra + i, *y = (const hai_block_q6_K *)rb + i;
        const int8x16_t sh = vdupq_n_s8((int8_t)(-2 * k)), off = vdupq_n_s8(32);
        const uint8x16_t m = vdupq_n_u8(0x0F), three = vdupq_n_u8(3);
        int8x16_t r[4];
        for (int e = 0; e < 2; e++) {
            const hai_block_q6_K *z = e ? y : x;
            const uint8_t *ql = z->ql + 64 * h + 32 * (k & 1), *qh = z->qh + 32 * h;
            uint8x16_t l0 = vld1q_u8(ql), l1 = vld1q_u8(ql + 16);
            if (k >= 2) l0 = vshrq_n_u8(l0, 4), l1 = vshrq_n_u8(l1, 4);
            uint8x16_t h0 = vandq_u8(vshlq_u8(vld1q_u8(qh), sh), three), h1 = vandq_u8(vshlq_u8(vld1q_u8(qh + 16), sh), three);
            r[2 * e] = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vandq_u8(l0, m), vshlq_n_u8(h0, 4))), off);
            r[2 * e + 1] = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vandq_u8(l1, m), vshlq_n_u8(h1, 4))), off);
        }
        a0 = r[0], a1 = r[1], b0 = r[2], b1 = r[3];
        float da = f16(x->d), db = f16(y->d);
        o->d0 = per_row(da * x->scales[2 * c], db * y->scales[2 * c]);
        o->d1 = per_row(da * x->scales[2 * c + 1], db * y->scales[2 * c + 1]);
    }
    rows_of(a0, a1, b0, b1, o->w);
}

#define TILE_PAIRS 4 /* token pairs per tile: 8 tokens share a block's unpacked weights */

/* Rows ra, rb (rb == ra: an odd last row, `two` false) against np token pairs from token t0 (an odd
 * last token is paired with itself); np and kind constant, so the accumulators stay in registers. */
static inline __attribute__((always_inline)) void tile(const int kind, const int np, int64_t n, const uint8_t *ra, const uint8_t *rb, bool two,
                                                       int64_t row, const uint8_t *pr, size_t arb, int64_t t0, int64_t nt, float *out,
                                                       size_t ldo, bool add) {
    const uint8_t *p[TILE_PAIRS], *q[TILE_PAIRS];
    float32x4_t acc[TILE_PAIRS];
    for (int j = 0; j < np; j++) {
        int64_t ta = t0 + 2 * j, tb = ta + 1 < nt ? ta + 1 : ta;
        p[j] = pr + (size_t)ta * arb, q[j] = pr + (size_t)tb * arb;
        acc[j] = vdupq_n_f32(0);
    }
    for (int64_t b = 0; b < n / 32; b++) {
        wblock wb;
        unpack(kind, ra, rb, b, &wb);
        for (int j = 0; j < np; j++) {
            float32x2_t d2 = vset_lane_f32(hai_act_d(q[j], n)[b], vdup_n_f32(hai_act_d(p[j], n)[b]), 1);
            float32x4_t dt = vcombine_f32(d2, d2); /* token scales, lanes [t0, t1, t0, t1] */
            int32x4_t s0, s1;
            mm_block(wb.w, (const int8_t *)p[j] + 64 * b, (const int8_t *)q[j] + 64 * b, &s0, &s1);
            if (kind == K_Q6_K) {
                acc[j] = vfmaq_f32(acc[j], vcvtq_f32_s32(s0), vmulq_f32(wb.d0, dt));
                acc[j] = vfmaq_f32(acc[j], vcvtq_f32_s32(s1), vmulq_f32(wb.d1, dt));
            } else {
                acc[j] = vfmaq_f32(acc[j], vcvtq_f32_s32(vaddq_s32(s0, s1)), vmulq_f32(wb.d0, dt));
            }
            if (kind == K_Q4_K) { /* - dmin * m * (the token's sum over the block) */
                const int32_t *sp = hai_act_s(p[j], n) + 2 * b, *sq = hai_act_s(q[j], n) + 2 * b;
                float32x2_t s2 = vset_lane_f32((float)(sq[0] + sq[1]), vdup_n_f32((float)(sp[0] + sp[1])), 1);
                acc[j] = vfmsq_f32(acc[j], wb.mn, vmulq_f32(dt, vcombine_f32(s2, s2)));
            }
        }
    }
    for (int j = 0; j < np; j++) {
        float v[4];
        vst1q_f32(v, acc[j]);
        for (int e = 0; e < 4; e++) {
            int64_t t = t0 + 2 * j + (e & 1);
            if (t >= nt || (e >> 1 && !two)) continue;
            float *o = out + (size_t)t * ldo + row + (e >> 1);
            *o = add ? *o + v[e] : v[e];
        }
    }
}

static inline __attribute__((always_inline)) void gemm_kind(const int kind, int64_t n, const void *w, size_t ws, int64_t r0, int64_t r1,
                                                            const void *pr, int64_t nt, float *out, size_t ldo, bool add) {
    size_t arb = hai_act_row_bytes(HAI_ACT_Q16, n);
    for (int64_t r = r0; r < r1; r += 2) {
        bool two = r + 1 < r1;
        const uint8_t *ra = (const uint8_t *)w + (size_t)r * ws, *rb = two ? ra + ws : ra;
        for (int64_t t0 = 0; t0 < nt; t0 += 2 * TILE_PAIRS) {
            switch ((nt - t0 + 1) / 2 < TILE_PAIRS ? (int)((nt - t0 + 1) / 2) : TILE_PAIRS) {
            case 1: tile(kind, 1, n, ra, rb, two, r, pr, arb, t0, nt, out, ldo, add); break;
            case 2: tile(kind, 2, n, ra, rb, two, r, pr, arb, t0, nt, out, ldo, add); break;
            case 3: tile(kind, 3, n, ra, rb, two, r, pr, arb, t0, nt, out, ldo, add); break;
            default: tile(kind, TILE_PAIRS, n, ra, rb, two, r, pr, arb, t0, nt, out, ldo, add); break;
            }
        }
    }
}

#define GEMM_OF(name, kind, type)                                                                                                    \
    static void name(int64_t n, const void *w, size_t ws, int64_t r0, int64_t r1, const void *pr, int64_t nt, float *out, size_t ldo, \
                     bool add, void *scratch) {                                                                                     \
        if (nt < 2) {                                                                                                               \
            dotprod->gemm[type](n, w, ws, r0, r1, pr, nt, out, ldo, add, scratch);                                                  \
            return;                                                                                                                 \
        }                                                                                                                           \
        gemm_kind(kind, n, w, ws, r0, r1, pr, nt, out, ldo, add);                                                                   \
    }

GEMM_OF(gemm_q4_0, K_Q4_0, HAI_TYPE_Q4_0)
GEMM_OF(gemm_q8_0, K_Q8_0, HAI_TYPE_Q8_0)
GEMM_OF(gemm_q4_K, K_Q4_K, HAI_TYPE_Q4_K)
GEMM_OF(gemm_q6_K, K_Q6_K, HAI_TYPE_Q6_K)

static hai_kernels table;
static const hai_kernels *chosen;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void build(void) {
    dotprod = hai_kernels_neon_dotprod();
    if (!dotprod || !(getauxval(AT_HWCAP2) & HWCAP2_I8MM)) return;
    table = *dotprod; /* its prep (the split activations), its per-row gemm for the other types */
    table.name = "neon-i8mm";
    table.gemm[HAI_TYPE_Q4_0] = gemm_q4_0, table.gemm[HAI_TYPE_Q8_0] = gemm_q8_0;
    table.gemm[HAI_TYPE_Q4_K] = gemm_q4_K, table.gemm[HAI_TYPE_Q6_K] = gemm_q6_K;
    chosen = &table;
}

const hai_kernels *hai_kernels_neon_i8mm(void) {
    pthread_once(&once, build);
    return chosen;
}
