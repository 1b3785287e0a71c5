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
 * Every quantized type: row_block() unpacks them as arm_dots.inc does. Built only with +i8mm,
 * chosen at run time when the CPU reports it (HWCAP2_I8MM). */
#include <arm_neon.h>
#include <pthread.h>
#include <string.h>
#include <sys/auxv.h>

#include "quant/fp16.h"
#include "arm_bits.h"
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

/* What a type's 32-weight block needs besides its int8 weights: one scale or one per 16 weights,
 * and a minimum (times the token's sum of the block, or of each 16) or none. */
enum { K_Q4_0, K_Q4_1, K_Q5_0, K_Q5_1, K_Q8_0, K_IQ4_NL, K_IQ4_XS, K_Q2_K, K_Q3_K, K_Q4_K, K_Q5_K, K_Q6_K };
static inline bool scale16(int kind) { return kind == K_Q2_K || kind == K_Q3_K || kind == K_Q6_K; }
static inline bool min32(int kind) { return kind == K_Q4_1 || kind == K_Q5_1 || kind == K_Q4_K || kind == K_Q5_K; }

/* Block b of one row as int8 weights (*w0: 0..15, *w1: 16..31), the scales of weights 0..15 and
 * 16..31 (d[0], d[1]) and the minimum terms, sign included (m[0], m[1]): the block's value is
 * sum(d * w * a) + m * sum(a) per half. The same unpacking as arm_dots.inc's dots. */
static inline __attribute__((always_inline)) void row_block(const int kind, const uint8_t *row, int64_t b, int8x16_t *w0, int8x16_t *w1,
                                                            float *d, float *m) {
    const uint8x16_t lo4 = vdupq_n_u8(0x0F);
    int64_t i = b / 8;
    int j = (int)(b % 8);
    m[0] = m[1] = 0;
    if (kind == K_Q4_0 || kind == K_Q4_1 || kind == K_IQ4_NL) {
        const uint8_t *qs = kind == K_Q4_0 ? ((const hai_block_q4_0 *)row + b)->qs
                          : kind == K_Q4_1 ? ((const hai_block_q4_1 *)row + b)->qs : ((const hai_block_iq4_nl *)row + b)->qs;
        uint8x16_t u = vld1q_u8(qs), l = vandq_u8(u, lo4), h = vshrq_n_u8(u, 4);
        if (kind == K_IQ4_NL) {
            const int8x16_t lut = vld1q_s8(hai_iq4nl_values);
            *w0 = vqtbl1q_s8(lut, l), *w1 = vqtbl1q_s8(lut, h);
            d[0] = f16(((const hai_block_iq4_nl *)row + b)->d);
        } else if (kind == K_Q4_0) {
            *w0 = vsubq_s8(vreinterpretq_s8_u8(l), vdupq_n_s8(8)), *w1 = vsubq_s8(vreinterpretq_s8_u8(h), vdupq_n_s8(8));
            d[0] = f16(((const hai_block_q4_0 *)row + b)->d);
        } else {
            const hai_block_q4_1 *x = (const hai_block_q4_1 *)row + b;
            *w0 = vreinterpretq_s8_u8(l), *w1 = vreinterpretq_s8_u8(h);
            d[0] = f16(x->d), m[0] = m[1] = f16(x->m);
        }
    } else if (kind == K_Q5_0) {
        const hai_block_q5_0 *x = (const hai_block_q5_0 *)row + b;
        q5_unpack(x->qs, x->qh, w0, w1, 16);
        d[0] = f16(x->d);
    } else if (kind == K_Q5_1) {
        const hai_block_q5_1 *x = (const hai_block_q5_1 *)row + b;
        q5_unpack(x->qs, x->qh, w0, w1, 0);
        d[0] = f16(x->d), m[0] = m[1] = f16(x->m);
    } else if (kind == K_Q8_0) {
        const hai_block_q8_0 *x = (const hai_block_q8_0 *)row + b;
        *w0 = vld1q_s8(x->qs), *w1 = vld1q_s8(x->qs + 16);
        d[0] = f16(x->d);
    } else if (kind == K_IQ4_XS) {
        const hai_block_iq4_xs *x = (const hai_block_iq4_xs *)row + i;
        int ls = ((x->scales_l[j / 2] >> (4 * (j % 2))) & 0xF) | (((x->scales_h >> (2 * j)) & 3) << 4);
        const int8x16_t lut = vld1q_s8(hai_iq4nl_values);
        uint8x16_t u = vld1q_u8(x->qs + 16 * j);
        *w0 = vqtbl1q_s8(lut, vandq_u8(u, lo4)), *w1 = vqtbl1q_s8(lut, vshrq_n_u8(u, 4));
        d[0] = f16(x->d) * (float)(ls - 32);
    } else if (kind == K_Q2_K) {
        const hai_block_q2_K *x = (const hai_block_q2_K *)row + i;
        int h = j / 4, sb = 2 * j;
        const int8x16_t sh = vdupq_n_s8((int8_t)(-2 * (j % 4)));
        *w0 = vreinterpretq_s8_u8(vandq_u8(vshlq_u8(vld1q_u8(x->qs + 32 * h), sh), vdupq_n_u8(3)));
        *w1 = vreinterpretq_s8_u8(vandq_u8(vshlq_u8(vld1q_u8(x->qs + 32 * h + 16), sh), vdupq_n_u8(3)));
        float dd = f16(x->d), dm = f16(x->dmin);
        d[0] = dd * (float)(x->scales[sb] & 0xF), d[1] = dd * (float)(x->scales[sb + 1] & 0xF);
        m[0] = -dm * (float)(x->scales[sb] >> 4), m[1] = -dm * (float)(x->scales[sb + 1] >> 4);
    } else if (kind == K_Q3_K) {
        const hai_block_q3_K *x = (const hai_block_q3_K *)row + i;
        int h = j / 4;
        const int8x16_t s2 = vdupq_n_s8((int8_t)(-2 * (j % 4))), sc = vdupq_n_s8((int8_t)-j);
        uint8x16_t q0 = vandq_u8(vshlq_u8(vld1q_u8(x->qs + 32 * h), s2), vdupq_n_u8(3));
        uint8x16_t q1 = vandq_u8(vshlq_u8(vld1q_u8(x->qs + 32 * h + 16), s2), vdupq_n_u8(3));
        uint8x16_t b0 = vandq_u8(vshlq_u8(vld1q_u8(x->hmask), sc), vdupq_n_u8(1)), b1 = vandq_u8(vshlq_u8(vld1q_u8(x->hmask + 16), sc), vdupq_n_u8(1));
        *w0 = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(q0, vshlq_n_u8(b0, 2))), vdupq_n_s8(4));
        *w1 = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(q1, vshlq_n_u8(b1, 2))), vdupq_n_s8(4));
        float dd = f16(x->d);
        d[0] = dd * (float)(hai_q3k_scale(2 * j, x->scales) - 32), d[1] = dd * (float)(hai_q3k_scale(2 * j + 1, x->scales) - 32);
    } else if (kind == K_Q4_K || kind == K_Q5_K) {
        const uint8_t *scales = kind == K_Q4_K ? ((const hai_block_q4_K *)row + i)->scales : ((const hai_block_q5_K *)row + i)->scales;
        const uint8_t *qs = kind == K_Q4_K ? ((const hai_block_q4_K *)row + i)->qs : ((const hai_block_q5_K *)row + i)->qs;
        uint16_t dh = kind == K_Q4_K ? ((const hai_block_q4_K *)row + i)->d : ((const hai_block_q5_K *)row + i)->d;
        uint16_t mh = kind == K_Q4_K ? ((const hai_block_q4_K *)row + i)->dmin : ((const hai_block_q5_K *)row + i)->dmin;
        uint8_t sc, mn;
        hai_q4k_scale_min(j, scales, &sc, &mn);
        uint8x16_t u0 = vld1q_u8(qs + 32 * (j / 2)), u1 = vld1q_u8(qs + 32 * (j / 2) + 16);
        if (j % 2) u0 = vshrq_n_u8(u0, 4), u1 = vshrq_n_u8(u1, 4);
        u0 = vandq_u8(u0, lo4), u1 = vandq_u8(u1, lo4);
        if (kind == K_Q5_K) { /* bit j of qh[l]: the 5th bit of weight l of sub-block j */
            const hai_block_q5_K *x = (const hai_block_q5_K *)row + i;
            const int8x16_t sh = vdupq_n_s8((int8_t)-j);
            u0 = vorrq_u8(u0, vshlq_n_u8(vandq_u8(vshlq_u8(vld1q_u8(x->qh), sh), vdupq_n_u8(1)), 4));
            u1 = vorrq_u8(u1, vshlq_n_u8(vandq_u8(vshlq_u8(vld1q_u8(x->qh + 16), sh), vdupq_n_u8(1)), 4));
        }
        *w0 = vreinterpretq_s8_u8(u0), *w1 = vreinterpretq_s8_u8(u1);
        d[0] = f16(dh) * (float)sc, m[0] = m[1] = -f16(mh) * (float)mn;
    } else { /* K_Q6_K: (low 4 bits | high 2 bits << 4) - 32, a scale per 16 */
        const hai_block_q6_K *x = (const hai_block_q6_K *)row + i;
        int h = j / 4, k = j % 4;
        const uint8_t *ql = x->ql + 64 * h + 32 * (k & 1), *qh = x->qh + 32 * h;
        const int8x16_t sh = vdupq_n_s8((int8_t)(-2 * k));
        uint8x16_t l0 = vld1q_u8(ql), l1 = vld1q_u8(ql + 16);
        if (k >= 2) l0 = vshrq_n_u8(l0, 4), l1 = vshrq_n_u8(l1, 4);
        uint8x16_t h0 = vandq_u8(vshlq_u8(vld1q_u8(qh), sh), vdupq_n_u8(3)), h1 = vandq_u8(vshlq_u8(vld1q_u8(qh + 16), sh), vdupq_n_u8(3));
        *w0 = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vandq_u8(l0, lo4), vshlq_n_u8(h0, 4))), vdupq_n_s8(32));
        *w1 = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vandq_u8(l1, lo4), vshlq_n_u8(h1, 4))), vdupq_n_s8(32));
        float dd = f16(x->d);
        d[0] = dd * (float)x->scales[2 * j], d[1] = dd * (float)x->scales[2 * j + 1];
    }
    if (!scale16(kind)) d[1] = d[0];
}

/* Block b of two rows, unpacked: the operands, and per row (lanes [r0, r0, r1, r1]) the scales and
 * minimum terms of weights 0..15 and 16..31. */
typedef struct wblock {
    int8x16_t w[4];
    float32x4_t d0, d1, m0, m1;
} wblock;

static inline float32x4_t per_row(float a, float b) { return vcombine_f32(vdup_n_f32(a), vdup_n_f32(b)); }

static inline __attribute__((always_inline)) void unpack(const int kind, const uint8_t *ra, const uint8_t *rb, int64_t b, wblock *o) {
    int8x16_t a0, a1, b0, b1;
    float da[2], ma[2], db[2], mb[2];
    row_block(kind, ra, b, &a0, &a1, da, ma);
    row_block(kind, rb, b, &b0, &b1, db, mb);
    rows_of(a0, a1, b0, b1, o->w);
    o->d0 = per_row(da[0], db[0]), o->d1 = per_row(da[1], db[1]);
    o->m0 = per_row(ma[0], mb[0]), o->m1 = per_row(ma[1], mb[1]);
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
            if (scale16(kind)) {
                acc[j] = vfmaq_f32(acc[j], vcvtq_f32_s32(s0), vmulq_f32(wb.d0, dt));
                acc[j] = vfmaq_f32(acc[j], vcvtq_f32_s32(s1), vmulq_f32(wb.d1, dt));
            } else {
                acc[j] = vfmaq_f32(acc[j], vcvtq_f32_s32(vaddq_s32(s0, s1)), vmulq_f32(wb.d0, dt));
            }
            if (min32(kind) || kind == K_Q2_K) { /* + m * (the token's sum over each half of the block) */
                const int32_t *sp = hai_act_s(p[j], n) + 2 * b, *sq = hai_act_s(q[j], n) + 2 * b;
                if (min32(kind)) {
                    float32x2_t s2 = vset_lane_f32((float)(sq[0] + sq[1]), vdup_n_f32((float)(sp[0] + sp[1])), 1);
                    acc[j] = vfmaq_f32(acc[j], wb.m0, vmulq_f32(dt, vcombine_f32(s2, s2)));
                } else {
                    float32x2_t h0 = vset_lane_f32((float)sq[0], vdup_n_f32((float)sp[0]), 1);
                    float32x2_t h1 = vset_lane_f32((float)sq[1], vdup_n_f32((float)sp[1]), 1);
                    acc[j] = vfmaq_f32(acc[j], wb.m0, vmulq_f32(dt, vcombine_f32(h0, h0)));
                    acc[j] = vfmaq_f32(acc[j], wb.m1, vmulq_f32(dt, vcombine_f32(h1, h1)));
                }
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

#define I8MM_TYPES(X)                                                                                                   \
    X(gemm_q4_0, K_Q4_0, HAI_TYPE_Q4_0) X(gemm_q4_1, K_Q4_1, HAI_TYPE_Q4_1) X(gemm_q5_0, K_Q5_0, HAI_TYPE_Q5_0)            \
    X(gemm_q5_1, K_Q5_1, HAI_TYPE_Q5_1) X(gemm_q8_0, K_Q8_0, HAI_TYPE_Q8_0) X(gemm_iq4_nl, K_IQ4_NL, HAI_TYPE_IQ4_NL)       \
    X(gemm_iq4_xs, K_IQ4_XS, HAI_TYPE_IQ4_XS) X(gemm_q2_K, K_Q2_K, HAI_TYPE_Q2_K) X(gemm_q3_K, K_Q3_K, HAI_TYPE_Q3_K)     \
    X(gemm_q4_K, K_Q4_K, HAI_TYPE_Q4_K) X(gemm_q5_K, K_Q5_K, HAI_TYPE_Q5_K) X(gemm_q6_K, K_Q6_K, HAI_TYPE_Q6_K)
I8MM_TYPES(GEMM_OF)

static hai_kernels table;
static const hai_kernels *chosen;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void build(void) {
    dotprod = hai_kernels_neon_dotprod();
    if (!dotprod || !(getauxval(AT_HWCAP2) & HWCAP2_I8MM)) return;
    table = *dotprod; /* its prep (the split activations), its per-row gemm for the other types */
    table.name = "neon-i8mm";
#define SET(name, kind, type) table.gemm[type] = name;
    I8MM_TYPES(SET)
#undef SET
    chosen = &table;
}

const hai_kernels *hai_kernels_neon_i8mm(void) {
    pthread_once(&once, build);
    return chosen;
}
