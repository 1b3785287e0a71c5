/* ARM NEON (AArch64) kernels: every weight type's dot product with the int16 activations (weights
 * widened to int16, multiplied and accumulated by smlal into int32 lanes), the activation
 * quantizer and the float helpers. Each computes what its twin in ref.c computes (integer sums
 * exactly; float sums within rounding), checked by tests/test_kernels.c - in CI under
 * qemu-aarch64. */
#include <arm_neon.h>
#include <math.h>
#include <string.h>

#include "../fp16.h"
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

typedef struct act_row {
    const int16_t *q;
    const float *d;
    const int32_t *s;
} act_row;

static inline act_row act_of(const void *row, int64_t n) { return (act_row){hai_act_q(row), hai_act_d(row, n), hai_act_s(row, n)}; }

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

/* ---- unpacking helpers ---------------------------------------------------------------------------- */

/* 32 one-bit flags (bit j of bits = element j) -> bytes of `val` where set */
static inline void bits_to_bytes(uint32_t bits, uint8_t val, uint8x16_t *lo, uint8x16_t *hi) {
    const uint8x16_t sel = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    uint8x16_t b01 = vcombine_u8(vdup_n_u8((uint8_t)bits), vdup_n_u8((uint8_t)(bits >> 8)));
    uint8x16_t b23 = vcombine_u8(vdup_n_u8((uint8_t)(bits >> 16)), vdup_n_u8((uint8_t)(bits >> 24)));
    *lo = vandq_u8(vtstq_u8(b01, sel), vdupq_n_u8(val));
    *hi = vandq_u8(vtstq_u8(b23, sel), vdupq_n_u8(val));
}

static inline uint32_t le32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* ---- 32-element blocks ------------------------------------------------------------------------------ */

static float dot_q4_0(int64_t n, const void *w, const void *ar) {
    const hai_block_q4_0 *x = w;
    act_row a = act_of(ar, n);
    float s = 0;
    const int8x16_t eight = vdupq_n_s8(8);
    for (int64_t i = 0; i < n / 32; i++) {
        uint8x16_t b = vld1q_u8(x[i].qs);
        int8x16_t w0 = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(b, vdupq_n_u8(0x0F))), eight), w1 = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(b, 4)), eight);
        s += f16s(x[i].d) * a.d[i] * (float)dot32s(w0, w1, a.q + 32 * i);
    }
    return s;
}

static float dot_q4_0x2(int64_t n, const void *w, const void *ar) {
    int64_t nb = n / 32, np = (nb + 1) / 2;
    const uint8_t *q = w;
    const uint16_t *dw = (const uint16_t *)(q + 32 * np);
    act_row a = act_of(ar, n);
    float s = 0;
    const int8x16_t eight = vdupq_n_s8(8);
    for (int64_t b = 0; b < nb; b++) {
        uint8x16_t v0 = vld1q_u8(q + 32 * (b / 2)), v1 = vld1q_u8(q + 32 * (b / 2) + 16);
        if (b % 2) v0 = vshrq_n_u8(v0, 4), v1 = vshrq_n_u8(v1, 4);
        int8x16_t w0 = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(v0, vdupq_n_u8(0x0F))), eight);
        int8x16_t w1 = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(v1, vdupq_n_u8(0x0F))), eight);
        s += f16s(dw[b]) * a.d[b] * (float)dot32s(w0, w1, a.q + 32 * b);
    }
    return s;
}

static float dot_q4_1(int64_t n, const void *w, const void *ar) {
    const hai_block_q4_1 *x = w;
    act_row a = act_of(ar, n);
    float s = 0;
    for (int64_t i = 0; i < n / 32; i++) {
        uint8x16_t b = vld1q_u8(x[i].qs);
        int8x16_t w0 = vreinterpretq_s8_u8(vandq_u8(b, vdupq_n_u8(0x0F))), w1 = vreinterpretq_s8_u8(vshrq_n_u8(b, 4));
        s += f16s(x[i].d) * a.d[i] * (float)dot32s(w0, w1, a.q + 32 * i) + f16s(x[i].m) * a.d[i] * (float)(a.s[2 * i] + a.s[2 * i + 1]);
    }
    return s;
}

static inline void q5_unpack(const uint8_t *qs, const uint8_t *qh, int8x16_t *w0, int8x16_t *w1, int off) {
    uint8x16_t b = vld1q_u8(qs), h0, h1;
    bits_to_bytes(le32(qh), 0x10, &h0, &h1);
    *w0 = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vandq_u8(b, vdupq_n_u8(0x0F)), h0)), vdupq_n_s8((int8_t)off));
    *w1 = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(b, 4), h1)), vdupq_n_s8((int8_t)off));
}

static float dot_q5_0(int64_t n, const void *w, const void *ar) {
    const hai_block_q5_0 *x = w;
    act_row a = act_of(ar, n);
    float s = 0;
    for (int64_t i = 0; i < n / 32; i++) {
        int8x16_t w0, w1;
        q5_unpack(x[i].qs, x[i].qh, &w0, &w1, 16);
        s += f16s(x[i].d) * a.d[i] * (float)dot32s(w0, w1, a.q + 32 * i);
    }
    return s;
}

static float dot_q5_1(int64_t n, const void *w, const void *ar) {
    const hai_block_q5_1 *x = w;
    act_row a = act_of(ar, n);
    float s = 0;
    for (int64_t i = 0; i < n / 32; i++) {
        int8x16_t w0, w1;
        q5_unpack(x[i].qs, x[i].qh, &w0, &w1, 0);
        s += f16s(x[i].d) * a.d[i] * (float)dot32s(w0, w1, a.q + 32 * i) + f16s(x[i].m) * a.d[i] * (float)(a.s[2 * i] + a.s[2 * i + 1]);
    }
    return s;
}

static float dot_q8_0(int64_t n, const void *w, const void *ar) {
    const hai_block_q8_0 *x = w;
    act_row a = act_of(ar, n);
    float s = 0;
    for (int64_t i = 0; i < n / 32; i++)
        s += f16s(x[i].d) * a.d[i] * (float)dot32s(vld1q_s8(x[i].qs), vld1q_s8(x[i].qs + 16), a.q + 32 * i);
    return s;
}

static float dot_iq4_nl(int64_t n, const void *w, const void *ar) {
    const hai_block_iq4_nl *x = w;
    act_row a = act_of(ar, n);
    const int8x16_t lut = vld1q_s8(hai_iq4nl_values);
    float s = 0;
    for (int64_t i = 0; i < n / 32; i++) {
        uint8x16_t b = vld1q_u8(x[i].qs);
        int8x16_t w0 = vqtbl1q_s8(lut, vandq_u8(b, vdupq_n_u8(0x0F))), w1 = vqtbl1q_s8(lut, vshrq_n_u8(b, 4));
        s += f16s(x[i].d) * a.d[i] * (float)dot32s(w0, w1, a.q + 32 * i);
    }
    return s;
}

/* ---- 256-element super-blocks ---------------------------------------------------------------------- */

static float dot_q4_K(int64_t n, const void *w, const void *ar) {
    const hai_block_q4_K *x = w;
    act_row a = act_of(ar, n);
    float s = 0;
    for (int64_t i = 0; i < n / 256; i++) {
        float d = f16s(x[i].d), dmin = f16s(x[i].dmin);
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            hai_q4k_scale_min(j, x[i].scales, &sc, &m);
            uint8x16_t b0 = vld1q_u8(x[i].qs + 32 * (j / 2)), b1 = vld1q_u8(x[i].qs + 32 * (j / 2) + 16);
            if (j % 2) b0 = vshrq_n_u8(b0, 4), b1 = vshrq_n_u8(b1, 4);
            int8x16_t w0 = vreinterpretq_s8_u8(vandq_u8(b0, vdupq_n_u8(0x0F))), w1 = vreinterpretq_s8_u8(vandq_u8(b1, vdupq_n_u8(0x0F)));
            int64_t blk = 8 * i + j;
            s += d * sc * a.d[blk] * (float)dot32s(w0, w1, a.q + 32 * blk) - dmin * m * a.d[blk] * (float)(a.s[2 * blk] + a.s[2 * blk + 1]);
        }
    }
    return s;
}

static float dot_q5_K(int64_t n, const void *w, const void *ar) {
    const hai_block_q5_K *x = w;
    act_row a = act_of(ar, n);
    float s = 0;
    uint8x16_t qh0, qh1;
    for (int64_t i = 0; i < n / 256; i++) {
        float d = f16s(x[i].d), dmin = f16s(x[i].dmin);
        qh0 = vld1q_u8(x[i].qh), qh1 = vld1q_u8(x[i].qh + 16);
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            hai_q4k_scale_min(j, x[i].scales, &sc, &m);
            uint8x16_t b0 = vld1q_u8(x[i].qs + 32 * (j / 2)), b1 = vld1q_u8(x[i].qs + 32 * (j / 2) + 16);
            if (j % 2) b0 = vshrq_n_u8(b0, 4), b1 = vshrq_n_u8(b1, 4);
            const int8x16_t sh = vdupq_n_s8((int8_t)-j); /* bit j of qh[l] to bit 0, then to bit 4 */
            uint8x16_t h0 = vshlq_n_u8(vandq_u8(vshlq_u8(qh0, sh), vdupq_n_u8(1)), 4), h1 = vshlq_n_u8(vandq_u8(vshlq_u8(qh1, sh), vdupq_n_u8(1)), 4);
            int8x16_t w0 = vreinterpretq_s8_u8(vorrq_u8(vandq_u8(b0, vdupq_n_u8(0x0F)), h0));
            int8x16_t w1 = vreinterpretq_s8_u8(vorrq_u8(vandq_u8(b1, vdupq_n_u8(0x0F)), h1));
            int64_t blk = 8 * i + j;
            s += d * sc * a.d[blk] * (float)dot32s(w0, w1, a.q + 32 * blk) - dmin * m * a.d[blk] * (float)(a.s[2 * blk] + a.s[2 * blk + 1]);
        }
    }
    return s;
}

static float dot_q6_K(int64_t n, const void *w, const void *ar) {
    const hai_block_q6_K *x = w;
    act_row a = act_of(ar, n);
    float s = 0;
    for (int64_t i = 0; i < n / 256; i++) {
        float d = f16s(x[i].d);
        for (int c = 0; c < 8; c++) {
            int h = c / 4, k = c % 4;
            const uint8_t *ql = x[i].ql + 64 * h + 32 * (k & 1), *qh = x[i].qh + 32 * h;
            uint8x16_t l0 = vld1q_u8(ql), l1 = vld1q_u8(ql + 16);
            if (k >= 2) l0 = vshrq_n_u8(l0, 4), l1 = vshrq_n_u8(l1, 4);
            const int8x16_t sh = vdupq_n_s8((int8_t)(-2 * k));
            uint8x16_t h0 = vandq_u8(vshlq_u8(vld1q_u8(qh), sh), vdupq_n_u8(3)), h1 = vandq_u8(vshlq_u8(vld1q_u8(qh + 16), sh), vdupq_n_u8(3));
            int8x16_t w0 = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vandq_u8(l0, vdupq_n_u8(0x0F)), vshlq_n_u8(h0, 4))), vdupq_n_s8(32));
            int8x16_t w1 = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(vandq_u8(l1, vdupq_n_u8(0x0F)), vshlq_n_u8(h1, 4))), vdupq_n_s8(32));
            int64_t blk = 8 * i + c;
            int32_t s0, s1;
            dot32(w0, w1, a.q + 32 * blk, &s0, &s1);
            s += d * a.d[blk] * ((float)x[i].scales[2 * c] * (float)s0 + (float)x[i].scales[2 * c + 1] * (float)s1);
        }
    }
    return s;
}

static float dot_q3_K(int64_t n, const void *w, const void *ar) {
    const hai_block_q3_K *x = w;
    act_row a = act_of(ar, n);
    float s = 0;
    for (int64_t i = 0; i < n / 256; i++) {
        float d = f16s(x[i].d);
        uint8x16_t hm0 = vld1q_u8(x[i].hmask), hm1 = vld1q_u8(x[i].hmask + 16);
        for (int c = 0; c < 8; c++) {
            int h = c / 4, sh = c % 4;
            const int8x16_t s2 = vdupq_n_s8((int8_t)(-2 * sh)), sc_ = vdupq_n_s8((int8_t)-c);
            uint8x16_t q0 = vandq_u8(vshlq_u8(vld1q_u8(x[i].qs + 32 * h), s2), vdupq_n_u8(3));
            uint8x16_t q1 = vandq_u8(vshlq_u8(vld1q_u8(x[i].qs + 32 * h + 16), s2), vdupq_n_u8(3));
            uint8x16_t b0 = vandq_u8(vshlq_u8(hm0, sc_), vdupq_n_u8(1)), b1 = vandq_u8(vshlq_u8(hm1, sc_), vdupq_n_u8(1));
            int8x16_t w0 = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(q0, vshlq_n_u8(b0, 2))), vdupq_n_s8(4));
            int8x16_t w1 = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(q1, vshlq_n_u8(b1, 2))), vdupq_n_s8(4));
            int64_t blk = 8 * i + c;
            int32_t s0, s1;
            dot32(w0, w1, a.q + 32 * blk, &s0, &s1);
            s += d * a.d[blk] * ((float)(hai_q3k_scale(2 * c, x[i].scales) - 32) * (float)s0 + (float)(hai_q3k_scale(2 * c + 1, x[i].scales) - 32) * (float)s1);
        }
    }
    return s;
}

static float dot_q2_K(int64_t n, const void *w, const void *ar) {
    const hai_block_q2_K *x = w;
    act_row a = act_of(ar, n);
    float s = 0;
    for (int64_t i = 0; i < n / 256; i++) {
        float d = f16s(x[i].d), dmin = f16s(x[i].dmin);
        for (int c = 0; c < 8; c++) {
            int h = c / 4, sh = c % 4, sb = 2 * c;
            const int8x16_t s2 = vdupq_n_s8((int8_t)(-2 * sh));
            int8x16_t w0 = vreinterpretq_s8_u8(vandq_u8(vshlq_u8(vld1q_u8(x[i].qs + 32 * h), s2), vdupq_n_u8(3)));
            int8x16_t w1 = vreinterpretq_s8_u8(vandq_u8(vshlq_u8(vld1q_u8(x[i].qs + 32 * h + 16), s2), vdupq_n_u8(3)));
            int64_t blk = 8 * i + c;
            int32_t s0, s1;
            dot32(w0, w1, a.q + 32 * blk, &s0, &s1);
            s += d * a.d[blk] * ((float)(x[i].scales[sb] & 0xF) * (float)s0 + (float)(x[i].scales[sb + 1] & 0xF) * (float)s1) -
                 dmin * a.d[blk] * ((float)(x[i].scales[sb] >> 4) * (float)a.s[2 * blk] + (float)(x[i].scales[sb + 1] >> 4) * (float)a.s[2 * blk + 1]);
        }
    }
    return s;
}

static float dot_iq4_xs(int64_t n, const void *w, const void *ar) {
    const hai_block_iq4_xs *x = w;
    act_row a = act_of(ar, n);
    const int8x16_t lut = vld1q_s8(hai_iq4nl_values);
    float s = 0;
    for (int64_t i = 0; i < n / 256; i++) {
        float d = f16s(x[i].d);
        for (int j = 0; j < 8; j++) {
            int ls = ((x[i].scales_l[j / 2] >> (4 * (j % 2))) & 0xF) | (((x[i].scales_h >> (2 * j)) & 3) << 4);
            uint8x16_t b = vld1q_u8(x[i].qs + 16 * j);
            int8x16_t w0 = vqtbl1q_s8(lut, vandq_u8(b, vdupq_n_u8(0x0F))), w1 = vqtbl1q_s8(lut, vshrq_n_u8(b, 4));
            int64_t blk = 8 * i + j;
            s += d * (float)(ls - 32) * a.d[blk] * (float)dot32s(w0, w1, a.q + 32 * blk);
        }
    }
    return s;
}

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
};

const hai_kernels *hai_kernels_neon(void) { return &table; }
