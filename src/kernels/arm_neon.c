/* ARM NEON (AArch64) kernels: every weight type's dot product with the int16 activations (weights
 * widened to int16, multiplied and accumulated by smlal into int32 lanes; the bodies are in
 * arm_dots.inc), the activation quantizer and the float helpers. Each computes what its twin in ref.c computes (integer sums
 * exactly; float sums within rounding), checked by tests/test_kernels.c - in CI under
 * qemu-aarch64. */
#include <arm_neon.h>
#include <float.h>
#include <math.h>
#include <string.h>

#include "quant/fp16.h"
#include "kernels.h"

static inline float f16s(uint16_t h) { return hai_f16_to_f32(h); }

/* 32 weights (two int8x16: elements 0..15 and 16..31) with 32 int16 activations: the sums of the
 * two halves (formats with a scale per 16 weights scale them apart). */
static inline void dot32(int8x16_t w0, int8x16_t w1, const int16_t *q, int32_t *s0, int32_t *s1) {
    int32x4_t a = vmull_s16(vget_low_s16(vmovl_s8(vget_low_s8(w0))), vld1_s16(q));
    a = vmlal_high_s16(a, vmovl_s8(vget_low_s8(w0)), vld1q_s16(q));
    a = vmlal_s16(a, vget_low_s16(vmovl_high_s8(w0)), vld1_s16(q + 8));
    a = vmlal_high_s16(a, vmovl_high_s8(w0), vld1q_s16(q + 8));
    int32x4_t b = vmull_s16(vget_low_s16(vmovl_s8(vget_low_s8(w1))), vld1_s16(q + 16));
    b = vmlal_high_s16(b, vmovl_s8(vget_low_s8(w1)), vld1q_s16(q + 16));
    b = vmlal_s16(b, vget_low_s16(vmovl_high_s8(w1)), vld1_s16(q + 24));
    b = vmlal_high_s16(b, vmovl_high_s8(w1), vld1q_s16(q + 24));
    *s0 = vaddvq_s32(a);
    *s1 = vaddvq_s32(b);
}

static inline int32_t dot32s(int8x16_t w0, int8x16_t w1, const int16_t *q) {
    int32_t a, b;
    dot32(w0, w1, q, &a, &b);
    return a + b;
}

/* ---- activation quantizer ------------------------------------------------------------------- */

static void quantize_act(const float *x, void *y, int64_t n) {
    int64_t nb = n / 32;
    int16_t *q = y;
    float *dd = (float *)(q + 32 * nb);
    int32_t *ss = (int32_t *)(dd + nb);
    for (int64_t b = 0; b < nb; b++, x += 32) {
        float32x4_t v[8];
        float32x4_t mx = vdupq_n_f32(0);
        for (int k = 0; k < 8; k++) v[k] = vld1q_f32(x + 4 * k), mx = vmaxq_f32(mx, vabsq_f32(v[k]));
        float amax = vmaxvq_f32(mx);
        float32x4_t id = vdupq_n_f32(amax > 0 ? (float)HAI_Q16_MAX / amax : 0.0f);
        int32x4_t s0 = vdupq_n_s32(0), s1 = vdupq_n_s32(0);
        for (int k = 0; k < 8; k++) {
            int32x4_t iv = vcvtnq_s32_f32(vmulq_f32(v[k], id)); /* round to nearest, ties to even: as rintf */
            vst1_s16(q + 32 * b + 4 * k, vmovn_s32(iv));
            if (k < 4) s0 = vaddq_s32(s0, iv);
            else s1 = vaddq_s32(s1, iv);
        }
        dd[b] = amax / (float)HAI_Q16_MAX;
        ss[2 * b] = vaddvq_s32(s0);
        ss[2 * b + 1] = vaddvq_s32(s1);
    }
}

#include "arm_dots.inc"

/* ---- float rows ------------------------------------------------------------------------------------ */

static float dot_f32(int64_t n, const float *a, const float *b) {
    float32x4_t s0 = vdupq_n_f32(0), s1 = vdupq_n_f32(0);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
        s1 = vfmaq_f32(s1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
    }
    float s = vaddvq_f32(vaddq_f32(s0, s1));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

static float dot_f32_w(int64_t n, const void *w, const void *act) { return dot_f32(n, w, act); }

static inline float32x4_t load_f16x4(const uint16_t *p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }

static float dot_f16_f32(int64_t n, const uint16_t *a, const float *b) {
    float32x4_t s0 = vdupq_n_f32(0), s1 = vdupq_n_f32(0);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        s0 = vfmaq_f32(s0, load_f16x4(a + i), vld1q_f32(b + i));
        s1 = vfmaq_f32(s1, load_f16x4(a + i + 4), vld1q_f32(b + i + 4));
    }
    float s = vaddvq_f32(vaddq_f32(s0, s1));
    for (; i < n; i++) s += f16s(a[i]) * b[i];
    return s;
}

static float dot_f16_w(int64_t n, const void *w, const void *act) { return dot_f16_f32(n, w, act); }

static float dot_bf16_w(int64_t n, const void *w, const void *act) {
    const uint16_t *x = w;
    const float *y = act;
    float32x4_t s = vdupq_n_f32(0);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) s = vfmaq_f32(s, vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(x + i), 16)), vld1q_f32(y + i));
    float r = vaddvq_f32(s);
    for (; i < n; i++) r += hai_bf16_to_f32(x[i]) * y[i];
    return r;
}

static void axpy_f32(int64_t n, float a, const float *x, float *y) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), vld1q_f32(x + i), a));
    for (; i < n; i++) y[i] += a * x[i];
}

static void scale_axpy_f16(int64_t n, float s, float a, const uint16_t *x, float *y) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vfmaq_n_f32(vmulq_n_f32(vld1q_f32(y + i), s), load_f16x4(x + i), a));
    for (; i < n; i++) y[i] = y[i] * s + a * f16s(x[i]);
}

static void f32_to_f16(int64_t n, const float *x, uint16_t *y) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1_u16(y + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(x + i))));
    for (; i < n; i++) y[i] = hai_f32_to_f16(x[i]);
}

/* ---- the sampler's passes (kernels.h), 4 lanes ------------------------------------------------- */

static inline float32x4_t sane4(float32x4_t v) {
    uint32x4_t ord = vceqq_f32(v, v);
    return vbslq_f32(ord, vminq_f32(v, vdupq_n_f32(FLT_MAX)), vdupq_n_f32(-INFINITY));
}

static inline float32x4_t tail4(const float *x, int64_t n) {
    float t[4];
    for (int i = 0; i < 4; i++) t[i] = i < n ? x[i] : -INFINITY;
    return vld1q_f32(t);
}

/* exp(x) for x >= -87.3 (the caller zeroes below): 2^n e^r with |r| <= ln2/2, the polynomial of
 * the x86 kernels */
static inline float32x4_t exp4(float32x4_t x) {
    x = vmaxq_f32(x, vdupq_n_f32(-87.3f));
    float32x4_t n = vrndnq_f32(vmulq_n_f32(x, 1.44269504088896341f));
    float32x4_t r = vfmsq_n_f32(x, n, 0.693359375f);
    r = vfmaq_n_f32(r, n, 2.12194440e-4f);
    float32x4_t p = vdupq_n_f32(1.0f / 720);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 120), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 24), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 6), p, r);
    p = vfmaq_f32(vdupq_n_f32(0.5f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
    int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
    return vmulq_f32(p, vreinterpretq_f32_s32(e));
}

static float logits_max(int64_t n, const float *x) {
    float32x4_t m0 = vdupq_n_f32(-INFINITY), m1 = m0;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        m0 = vmaxq_f32(m0, sane4(vld1q_f32(x + i)));
        m1 = vmaxq_f32(m1, sane4(vld1q_f32(x + i + 4)));
    }
    for (; i + 4 <= n; i += 4) m0 = vmaxq_f32(m0, sane4(vld1q_f32(x + i)));
    if (i < n) m0 = vmaxq_f32(m0, sane4(tail4(x + i, n - i)));
    return vmaxvq_f32(vmaxq_f32(m0, m1));
}

static inline float32x4_t weights4(float32x4_t v, float m, float s, float32x4_t *ea) {
    float32x4_t a = vmulq_n_f32(vsubq_f32(sane4(v), vdupq_n_f32(m)), s);
    uint32x4_t live = vcgeq_f32(a, vdupq_n_f32(-87.3f));
    float32x4_t w = vreinterpretq_f32_u32(vandq_u32(live, vreinterpretq_u32_f32(exp4(a))));
    *ea = vaddq_f32(*ea, vreinterpretq_f32_u32(vandq_u32(live, vreinterpretq_u32_f32(vmulq_f32(w, a)))));
    return w;
}

static double logits_exp(int64_t n, const float *x, float m, float s, float *w, double *wa) {
    float32x4_t sum = vdupq_n_f32(0), ea = sum;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t e = weights4(vld1q_f32(x + i), m, s, &ea);
        if (w) vst1q_f32(w + i, e);
        sum = vaddq_f32(sum, e);
    }
    if (i < n) {
        float t[4];
        float32x4_t e = weights4(tail4(x + i, n - i), m, s, &ea);
        vst1q_f32(t, e);
        for (int64_t k = 0; w && k < n - i; k++) w[i + k] = t[k];
        sum = vaddq_f32(sum, e);
    }
    float ts[4], te[4];
    vst1q_f32(ts, sum);
    vst1q_f32(te, ea);
    if (wa) *wa = (double)te[0] + te[1] + te[2] + te[3];
    return (double)ts[0] + ts[1] + ts[2] + ts[3];
}

static int64_t logits_collect(int64_t n, const float *x, float t, int32_t *idx, int64_t cap) {
    int64_t c = 0;
    for (int64_t i = 0; i < n; i += 4) {
        float32x4_t v = i + 4 <= n ? vld1q_f32(x + i) : tail4(x + i, n - i);
        uint32_t b[4];
        vst1q_u32(b, vcgeq_f32(sane4(v), vdupq_n_f32(t)));
        if (!(b[0] | b[1] | b[2] | b[3])) continue;
        for (int k = 0; k < 4 && i + k < n; k++)
            if (b[k]) {
                if (c < cap) idx[c] = (int32_t)(i + k);
                if (++c > cap) return c;
            }
    }
    return c;
}

static const hai_kernels table = {
    .name = "neon",
    .vec_dot = {
        [HAI_TYPE_F32] = dot_f32_w,   [HAI_TYPE_F16] = dot_f16_w,   [HAI_TYPE_BF16] = dot_bf16_w,
        [HAI_TYPE_Q4_0] = dot_q4_0,   [HAI_TYPE_Q4_1] = dot_q4_1,   [HAI_TYPE_Q5_0] = dot_q5_0,
        [HAI_TYPE_Q5_1] = dot_q5_1,   [HAI_TYPE_Q8_0] = dot_q8_0,   [HAI_TYPE_IQ4_NL] = dot_iq4_nl,
        [HAI_TYPE_Q2_K] = dot_q2_K,   [HAI_TYPE_Q3_K] = dot_q3_K,   [HAI_TYPE_Q4_K] = dot_q4_K,
        [HAI_TYPE_Q5_K] = dot_q5_K,   [HAI_TYPE_Q6_K] = dot_q6_K,   [HAI_TYPE_IQ4_XS] = dot_iq4_xs,
        [HAI_WTYPE_Q4_0X2] = dot_q4_0x2,
    },
    .quantize_act = quantize_act,
    .dot_f32 = dot_f32,
    .axpy_f32 = axpy_f32,
    .dot_f16_f32 = dot_f16_f32,
    .scale_axpy_f16 = scale_axpy_f16,
    .f32_to_f16 = f32_to_f16,
    .logits_max = logits_max,
    .logits_exp = logits_exp,
    .logits_collect = logits_collect,
};

const hai_kernels *hai_kernels_neon(void) { return &table; }
