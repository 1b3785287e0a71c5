/* AArch64 kernels for CPUs with the dot-product instructions (Armv8.2 dotprod: sdot, four int8
 * products summed into each int32 lane - 16 multiply-adds an instruction against smlal's 4).
 * sdot multiplies int8 by int8, and the activations are int16, so the matrix path first splits
 * every activation exactly into two int8 levels, q = 256 * hi + lo (hi = (q + 128) >> 8, lo the
 * low byte, both in [-128, 127]), stored in the 64 bytes the block's int16 values took: hi[32]
 * then lo[32]; a block's dot is then 256 * sdot(w, hi) + sdot(w, lo), exactly the int16 sum.
 * The split is made once per activation row (gemm_prep) and used by every weight row, so this
 * table runs all integer matmuls - decode (one token) too - through gemm. Everything else (the
 * per-row dots, float helpers, the quantizer) is the plain NEON table's.
 * Built only with -march=armv8.2-a+dotprod and chosen at run time when the CPU reports it. */
#include <arm_neon.h>
#include <pthread.h>
#include <string.h>
#include <sys/auxv.h>

#include "quant/fp16.h"
#include "kernels.h"

#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif

static inline float f16s(uint16_t h) { return hai_f16_to_f32(h); }

/* 32 weights with a split block (q points at its 64 bytes: hi[32], lo[32]) */
static inline void dot32(int8x16_t w0, int8x16_t w1, const int16_t *q, int32_t *s0, int32_t *s1) {
    const int8_t *p = (const int8_t *)q;
    const int32x4_t z = vdupq_n_s32(0);
    int32x4_t h0 = vdotq_s32(z, w0, vld1q_s8(p)), h1 = vdotq_s32(z, w1, vld1q_s8(p + 16));
    int32x4_t l0 = vdotq_s32(z, w0, vld1q_s8(p + 32)), l1 = vdotq_s32(z, w1, vld1q_s8(p + 48));
    *s0 = vaddvq_s32(vaddq_s32(vshlq_n_s32(h0, 8), l0));
    *s1 = vaddvq_s32(vaddq_s32(vshlq_n_s32(h1, 8), l1));
}

static inline int32_t dot32s(int8x16_t w0, int8x16_t w1, const int16_t *q) {
    const int8_t *p = (const int8_t *)q;
    int32x4_t h = vdotq_s32(vdotq_s32(vdupq_n_s32(0), w0, vld1q_s8(p)), w1, vld1q_s8(p + 16));
    int32x4_t l = vdotq_s32(vdotq_s32(vdupq_n_s32(0), w0, vld1q_s8(p + 32)), w1, vld1q_s8(p + 48));
    return vaddvq_s32(vaddq_s32(vshlq_n_s32(h, 8), l));
}

#include "arm_dots.inc"

/* ---- the matrix path -------------------------------------------------------------------------- */

static size_t prep_bytes(int64_t n, int64_t nt) { return (size_t)nt * hai_act_row_bytes(HAI_ACT_Q16, n); }

static size_t scratch_bytes(int64_t n) {
    (void)n;
    return 0;
}

static void prep(int64_t n, const void *act, size_t act_stride, int64_t t0, int64_t t1, void *out) {
    size_t arb = hai_act_row_bytes(HAI_ACT_Q16, n);
    int64_t nb = n / 32;
    const int16x8_t bias = vdupq_n_s16(128);
    for (int64_t t = t0; t < t1; t++) {
        const uint8_t *src = (const uint8_t *)act + (size_t)t * act_stride;
        int8_t *dst = (int8_t *)out + (size_t)t * arb;
        const int16_t *q = (const int16_t *)src;
        for (int64_t b = 0; b < nb; b++, q += 32, dst += 64) {
            for (int k = 0; k < 4; k++) {
                int16x8_t v = vld1q_s16(q + 8 * k);
                int8x8_t hi = vshrn_n_s16(vaddq_s16(v, bias), 8);
                int8x8_t lo = vmovn_s16(vsubq_s16(v, vshlq_n_s16(vmovl_s8(hi), 8)));
                vst1_s8(dst + 8 * k, hi);
                vst1_s8(dst + 32 + 8 * k, lo);
            }
        }
        memcpy(dst, src + 64 * nb, arb - 64 * (size_t)nb); /* the scales and sums as they are */
    }
}

/* Rows in groups of 16 (their weights stay in L1) against tokens in groups of 32 (their split
 * activations stay in L2). */
#define GEMM_OF(name, dot)                                                                                                          \
    static void name(int64_t n, const void *w, size_t ws, int64_t r0, int64_t r1, const void *pr, int64_t nt, float *out, size_t ldo, \
                     bool add, void *scratch) {                                                                                     \
        (void)scratch;                                                                                                              \
        size_t arb = hai_act_row_bytes(HAI_ACT_Q16, n);                                                                             \
        for (int64_t rb = r0; rb < r1; rb += 16)                                                                                    \
            for (int64_t tb = 0; tb < nt; tb += 32)                                                                                 \
                for (int64_t r = rb; r < r1 && r < rb + 16; r++) {                                                                  \
                    const uint8_t *wr = (const uint8_t *)w + (size_t)r * ws;                                                        \
                    for (int64_t t = tb; t < nt && t < tb + 32; t++) {                                                              \
                        float v = dot(n, wr, (const uint8_t *)pr + (size_t)t * arb), *o = out + (size_t)t * ldo + r;               \
                        *o = add ? *o + v : v;                                                                                      \
                    }                                                                                                               \
                }                                                                                                                   \
    }

GEMM_OF(gemm_q4_0, dot_q4_0)
GEMM_OF(gemm_q4_0x2, dot_q4_0x2)
GEMM_OF(gemm_q4_1, dot_q4_1)
GEMM_OF(gemm_q5_0, dot_q5_0)
GEMM_OF(gemm_q5_1, dot_q5_1)
GEMM_OF(gemm_q8_0, dot_q8_0)
GEMM_OF(gemm_iq4_nl, dot_iq4_nl)
GEMM_OF(gemm_q2_K, dot_q2_K)
GEMM_OF(gemm_q3_K, dot_q3_K)
GEMM_OF(gemm_q4_K, dot_q4_K)
GEMM_OF(gemm_q5_K, dot_q5_K)
GEMM_OF(gemm_q6_K, dot_q6_K)
GEMM_OF(gemm_iq4_xs, dot_iq4_xs)

static hai_kernels table;
static const hai_kernels *chosen;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void build(void) {
    const hai_kernels *neon = hai_kernels_neon();
    if (!neon || !(getauxval(AT_HWCAP) & HWCAP_ASIMDDP)) return;
    table = *neon;
    table.name = "neon-dotprod";
    table.gemm_min_tokens = 1;
    table.gemm_prep_bytes = prep_bytes;
    table.gemm_prep = prep;
    table.gemm_scratch_bytes = scratch_bytes;
    table.gemm[HAI_TYPE_Q4_0] = gemm_q4_0, table.gemm[HAI_WTYPE_Q4_0X2] = gemm_q4_0x2;
    table.gemm[HAI_TYPE_Q4_1] = gemm_q4_1, table.gemm[HAI_TYPE_Q5_0] = gemm_q5_0;
    table.gemm[HAI_TYPE_Q5_1] = gemm_q5_1, table.gemm[HAI_TYPE_Q8_0] = gemm_q8_0;
    table.gemm[HAI_TYPE_IQ4_NL] = gemm_iq4_nl, table.gemm[HAI_TYPE_Q2_K] = gemm_q2_K;
    table.gemm[HAI_TYPE_Q3_K] = gemm_q3_K, table.gemm[HAI_TYPE_Q4_K] = gemm_q4_K;
    table.gemm[HAI_TYPE_Q5_K] = gemm_q5_K, table.gemm[HAI_TYPE_Q6_K] = gemm_q6_K;
    table.gemm[HAI_TYPE_IQ4_XS] = gemm_iq4_xs;
    chosen = &table;
}

const hai_kernels *hai_kernels_neon_dotprod(void) {
    pthread_once(&once, build);
    return chosen;
}
